package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// Prober runs one attempt of a check. ctx carries the attempt's deadline.
type Prober interface {
	Probe(ctx context.Context) state.Result
}

// ProberFunc adapts a function to Prober.
type ProberFunc func(ctx context.Context) state.Result

// Probe calls f.
func (f ProberFunc) Probe(ctx context.Context) state.Result { return f(ctx) }

// NewProber returns the prober for one checker of the real server rs.
// vsDelayLoop is the virtual server's delay_loop (the checker default).
func NewProber(spec Spec, rs netip.AddrPort, vsDelayLoop time.Duration) (Prober, error) {
	r, err := resolve(spec, rs, vsDelayLoop)
	if err != nil {
		return nil, err
	}
	return newProber(r)
}

func newProber(r resolved) (Prober, error) {
	switch r.Type {
	case TCP:
		return &tcpProber{r: r}, nil
	case HTTP, SSL:
		return newHTTPProber(r)
	case Misc:
		return newMiscProber(r)
	case DNS:
		return newDNSProber(r)
	case SMTP:
		return &smtpProber{r: r}, nil
	case UDP:
		return newUDPProber(r)
	case Ping:
		return &pingProber{r: r}, nil
	}
	return nil, fmt.Errorf("unknown checker type %q", r.Type)
}

// timeout returns the time one attempt may take.
func (r resolved) timeout() time.Duration {
	if r.Type == Misc {
		return r.MiscTimeout
	}
	return r.ConnectTimeout
}

func fail(format string, args ...any) state.Result {
	return state.Result{Err: fmt.Errorf(format, args...)}
}

func passed() state.Result { return state.Result{OK: true} }

// localAddr is the bindto/bind_port source for network, or nil.
func (r resolved) localAddr(network string) net.Addr {
	if !r.BindTo.IsValid() && r.BindPort == 0 {
		return nil
	}
	var ip net.IP
	if r.BindTo.IsValid() {
		ip = r.BindTo.AsSlice()
	}
	switch network {
	case "udp":
		return &net.UDPAddr{IP: ip, Port: int(r.BindPort)}
	default:
		return &net.TCPAddr{IP: ip, Port: int(r.BindPort)}
	}
}

// dial connects to the checker's target from its bind address, within
// connect_timeout and ctx.
func (r resolved) dial(ctx context.Context, network string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: r.localAddr(network)}
	// The runner's ctx already ends at connect_timeout; a second timer is
	// only needed when the caller's deadline is later or missing.
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > r.ConnectTimeout {
		d.Timeout = r.ConnectTimeout
	}
	// A fixed source port is reused every delay_loop; without
	// SO_REUSEADDR the previous connection's TIME_WAIT would block it.
	if opts := (socketOptions{reuseAddr: r.BindPort != 0, device: r.BindIf, mark: r.Fwmark}); !opts.none() {
		d.ControlContext = opts.control
	}
	c, err := d.DialContext(ctx, network, r.target.String())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", r.target, unwrapOp(err))
	}
	return c, nil
}

// session dials like dial and bounds the whole exchange: the connection
// closes when ctx ends and its I/O deadline is connect_timeout. The caller
// calls done when finished with it.
func (r resolved) session(ctx context.Context, network string) (c net.Conn, done func(), err error) {
	c, err = r.dial(ctx, network)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	done = func() {
		stop()
		c.Close()
	}
	if err := c.SetDeadline(deadline(ctx, r.ConnectTimeout)); err != nil {
		done()
		return nil, nil, fmt.Errorf("set deadline: %w", err)
	}
	return c, done, nil
}

// unwrapOp drops net.OpError's repetition of the addresses.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		if op.Timeout() {
			return errTimeout
		}
		var sys *os.SyscallError
		if errors.As(op.Err, &sys) {
			return sys.Err
		}
		return op.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	return err
}

var errTimeout = errors.New("timeout")

// deadline is the earlier of ctx's deadline and now+d.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(t) {
		return cd
	}
	return t
}

type tcpProber struct{ r resolved }

func (p *tcpProber) Probe(ctx context.Context) state.Result {
	c, err := p.r.dial(ctx, "tcp")
	if err != nil {
		return state.Result{Err: err}
	}
	c.Close()
	return passed()
}

// errReadBudget is the error of a read past a probe's budget.
var errReadBudget = errors.New("reply too long")

// budgetReader bounds how much a probe reads from a server, so a server
// sending an endless header or reply line cannot make the director buffer
// it all.
type budgetReader struct {
	r io.Reader
	n int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errReadBudget
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}
