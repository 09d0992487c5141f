package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/govs/govs/internal/status"
)

// StatusFunc returns the daemon's current state. It is called once per
// status request, from the request's goroutine, so it must be safe to call
// concurrently with the daemon's own work, and the snapshot it returns must
// not share slices or maps the daemon goes on modifying: it is encoded after
// the call returns.
type StatusFunc func() status.Snapshot

// ConnectionsFunc returns the connection table.
type ConnectionsFunc func() []status.Connection

// ReloadFunc reloads the configuration. The daemon validates the new
// configuration and keeps the old one when it returns an error; the error
// text goes back to the client as it is.
type ReloadFunc func() error

// Config configures a control socket server.
type Config struct {
	// Path of the socket; DefaultSocket when empty.
	Path string
	// Status is required.
	Status StatusFunc
	// Connections, when nil, is served from Status().Connections.
	Connections ConnectionsFunc
	// Reload, when nil, makes reload requests fail with an error.
	Reload ReloadFunc
	// Weight, when nil, makes weight requests fail with an error.
	Weight WeightFunc
	// BGPDrain, when nil, makes bgp-drain requests fail with an error.
	// stopAfter is the drain period after which the daemon stops (0: none).
	BGPDrain func(drain bool, stopAfter time.Duration) error
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// IdleTimeout bounds how long a client may take to send a request (and
	// how long an idle connection stays open); default 10s.
	IdleTimeout time.Duration
	// WriteTimeout bounds how long a response may take to be read by the
	// client; default 10s.
	WriteTimeout time.Duration
	// MaxClients bounds concurrent connections; further clients get a
	// "busy" error and are closed. Default 16.
	MaxClients int
}

// Server is a bound control socket. Create it with Listen, run it with Serve.
type Server struct {
	cfg Config
	// ln is an interface so tests can inject accept failures.
	ln       net.Listener
	lock     *os.File
	reloadMu sync.Mutex

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Listen binds the control socket. The socket's directory is created with
// mode 0700 if it does not exist; the socket itself appears with mode 0600
// (it is bound under a temporary name, restricted, then renamed into place,
// so there is no moment where it is open to others). A lock file next to it
// (PATH.lock, flock) makes a second daemon fail with ErrDaemonRunning; a
// socket left behind by a daemon that died is removed.
func Listen(cfg Config) (*Server, error) {
	if cfg.Status == nil {
		return nil, errors.New("listen control socket: no status function")
	}
	if cfg.Path == "" {
		cfg.Path = DefaultSocket
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 16
	}
	path := cfg.Path

	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
		// MkdirAll's mode passes through the umask; make sure of 0700.
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("restrict socket directory: %w", err)
		}
	}

	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	ln, err := bind(path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &Server{cfg: cfg, ln: ln, lock: lock, conns: map[net.Conn]struct{}{}}, nil
}

// lockFile takes an exclusive, non-blocking flock on path. The lock goes
// away with the process, however it dies, so it cannot go stale. The file is
// never removed: removing it would let two daemons lock two different files.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrDaemonRunning)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// bind creates the listening socket at path, replacing a stale one.
func bind(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("bind control socket: %s exists and is not a socket; not removing it", path)
		}
		// We hold the lock, so no govs daemon owns this socket; but if
		// something still answers on it, leave it alone.
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("bind control socket: something is listening on %s: %w", path, ErrDaemonRunning)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// Temporary sockets of a daemon that died between bind and rename are
	// stale too: we hold the lock.
	if old, _ := filepath.Glob(path + ".tmp*"); len(old) > 0 {
		for _, o := range old {
			if fi, err := os.Lstat(o); err == nil && fi.Mode().Type() == os.ModeSocket {
				_ = os.Remove(o)
			}
		}
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("bind control socket: %w", err)
	}
	// The listener's name is the temporary one, which the rename removes;
	// Serve unlinks the real path itself.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("restrict control socket: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("move control socket into place: %w", err)
	}
	return ln, nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.cfg.Path }

// Serve answers clients until ctx is done, then closes the socket, ends open
// connections, waits for their handlers, removes the socket file and
// releases the lock. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	defer s.lock.Close()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()

	sem := make(chan struct{}, s.cfg.MaxClients)
	var acceptErr error
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				acceptErr = fmt.Errorf("accept control connection: %w", err)
				break
			}
			// Anything else (out of file descriptors, most likely) is
			// transient: back off and keep the socket alive rather than
			// lose control of the daemon.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.cfg.Logger.Warn("control: accept failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		select {
		case sem <- struct{}{}:
		default:
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.refuse(c)
			}()
			continue
		}
		s.track(c, true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-sem }()
			defer s.track(c, false)
			s.serveConn(ctx, c)
		}()
	}
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err := os.Remove(s.cfg.Path); err != nil && !errors.Is(err, os.ErrNotExist) && acceptErr == nil {
		acceptErr = fmt.Errorf("remove control socket: %w", err)
	}
	return acceptErr
}

func (s *Server) track(c net.Conn, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
		c.Close()
	}
}

// refuse tells a client over the connection limit to come back later.
func (s *Server) refuse(c net.Conn) {
	defer c.Close()
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = writeResponse(c, errorResponse("server busy: %d clients connected", s.cfg.MaxClients))
}

// serveConn answers requests on one connection until the client closes it,
// goes idle, or sends something that cannot be framed.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	r := bufio.NewReaderSize(c, 4096)
	awaiting := false // a request's read deadline is set
	for ctx.Err() == nil {
		// The deadline covers a whole request: blank lines do not renew
		// it, or clients trickling newlines would hold every slot.
		if !awaiting {
			_ = c.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			awaiting = true
		}
		line, err := readLine(r, MaxRequestSize)
		if errors.Is(err, errTooLarge) {
			s.cfg.Logger.Warn("control: request too large", "limit", MaxRequestSize)
			_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			_ = writeResponse(c, errorResponse("request larger than %d bytes", MaxRequestSize))
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
				s.cfg.Logger.Debug("control: read request", "err", err)
			}
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		awaiting = false
		resp := s.handle(line)
		_ = c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := writeResponse(c, resp); err != nil {
			s.cfg.Logger.Debug("control: write response", "err", err)
			return
		}
	}
}

var errTooLarge = errors.New("request too large")

// readLine reads up to and including '\n', failing with errTooLarge once
// more than limit bytes arrive without one.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, errTooLarge
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(line)) > 0:
			// A last request without its newline still counts.
			return line, nil
		default:
			return nil, err
		}
	}
}

// handle answers one request line. A panicking callback becomes an error
// response: a bug in the daemon's status code must not take the socket down.
func (s *Server) handle(line []byte) (resp Response) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return errorResponse("malformed request: %v", err)
	}
	if req.Version != 0 && req.Version != ProtocolVersion {
		return errorResponse("unsupported protocol version %d (this daemon speaks %d)", req.Version, ProtocolVersion)
	}
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("control: handler panicked", "op", req.Op, "panic", p)
			resp = errorResponse("internal error serving %q", req.Op)
		}
	}()
	switch req.Op {
	case OpStatus:
		snap := s.cfg.Status()
		snap.Connections = nil
		return Response{Version: ProtocolVersion, OK: true, Status: &snap}
	case OpConnections:
		var conns []status.Connection
		if s.cfg.Connections != nil {
			conns = s.cfg.Connections()
		} else {
			conns = s.cfg.Status().Connections
		}
		if conns == nil {
			conns = []status.Connection{}
		}
		return Response{Version: ProtocolVersion, OK: true, Connections: conns}
	case OpReload:
		if s.cfg.Reload == nil {
			return errorResponse("reload is not supported by this daemon")
		}
		// One reload at a time: two clients reloading at once would race
		// on the configuration they load.
		s.reloadMu.Lock()
		defer s.reloadMu.Unlock()
		s.cfg.Logger.Info("control: reload requested")
		if err := s.cfg.Reload(); err != nil {
			s.cfg.Logger.Warn("control: reload failed", "err", err)
			return errorResponse("%s", err.Error())
		}
		return Response{Version: ProtocolVersion, OK: true}
	case OpWeight:
		if s.cfg.Weight == nil {
			return errorResponse("weight is not supported by this daemon")
		}
		real, port, err := parseReal(req.Real)
		if err != nil {
			return errorResponse("%v", err)
		}
		n, err := s.cfg.Weight(req.VirtualServer, real, port, req.Weight)
		if err != nil {
			return errorResponse("%s", err.Error())
		}
		return Response{Version: ProtocolVersion, OK: true, Changed: n}
	case OpBGPDrain:
		if s.cfg.BGPDrain == nil {
			return errorResponse("bgp-drain is not supported by this daemon")
		}
		if req.StopAfter < 0 || (req.StopAfter > 0 && !req.Drain) {
			return errorResponse("stop_after %s: only a drain has a period, and it is not negative", req.StopAfter)
		}
		s.cfg.Logger.Info("control: BGP drain", "drain", req.Drain, "stop_after", req.StopAfter)
		if err := s.cfg.BGPDrain(req.Drain, req.StopAfter); err != nil {
			return errorResponse("%s", err.Error())
		}
		return Response{Version: ProtocolVersion, OK: true}
	case "":
		return errorResponse("request has no op (want status, connections, reload, weight or bgp-drain)")
	}
	return errorResponse("unknown op %q (want status, connections, reload, weight or bgp-drain)", req.Op)
}

func writeResponse(w io.Writer, resp Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(errorResponse("encode response: %v", err))
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}

// WeightFunc sets a real server's weight at run time (nil: the configured
// weight again) and returns how many real servers it changed.
type WeightFunc func(virtualServer string, real netip.Addr, port uint16, weight *uint32) (int, error)

// parseReal reads "ADDR" or "ADDR:PORT" ("[V6]:PORT").
func parseReal(s string) (netip.Addr, uint16, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Port(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("real server %q: want ADDR or ADDR:PORT", s)
	}
	return a.Unmap(), 0, nil
}
