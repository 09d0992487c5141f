package check

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/govs/govs/internal/check/state"
)

type udpProber struct {
	r             resolved
	want, mask    []byte
	randomPayload bool
}

func newUDPProber(r resolved) (*udpProber, error) {
	p := &udpProber{r: r, randomPayload: len(r.Payload) == 0}
	if r.ReplyPattern != "" {
		v, m, err := parseHexPattern(r.ReplyPattern)
		if err != nil {
			return nil, err
		}
		p.want, p.mask = v, m
	}
	return p, nil
}

// Probe sends the payload (random if none) on a connected socket, so an ICMP
// port unreachable comes back as ECONNREFUSED and fails the check. With
// require_reply a reply of the right length (and pattern) is needed;
// without, silence until the timeout passes.
func (p *udpProber) Probe(ctx context.Context) state.Result {
	payload := p.r.Payload
	if p.randomPayload {
		payload = make([]byte, 16)
		if _, err := rand.Read(payload); err != nil {
			return fail("UDP payload: %v", err)
		}
	}
	c, done, err := p.r.session(ctx, "udp")
	if err != nil {
		return state.Result{Err: err}
	}
	defer done()
	if _, err := c.Write(payload); err != nil {
		return fail("UDP send: %v", unwrapOp(err))
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fail("UDP %s: port unreachable", p.r.target)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil && !p.r.RequireReply {
			return passed()
		}
		if !p.r.RequireReply && ctx.Err() != nil {
			return passed()
		}
		return fail("UDP %s: no reply: %v", p.r.target, unwrapOp(err))
	}
	if !p.r.RequireReply {
		return passed()
	}
	if n < p.r.MinReplyLength || n > p.r.MaxReplyLength {
		return fail("UDP reply length %d outside [%d, %d]", n, p.r.MinReplyLength, p.r.MaxReplyLength)
	}
	for i := 0; i < len(p.want) && i < n; i++ {
		if buf[i]&p.mask[i] != p.want[i]&p.mask[i] {
			return state.Result{Err: fmt.Errorf("UDP reply byte %d is %#02x, want %#02x", i, buf[i], p.want[i])}
		}
	}
	return passed()
}
