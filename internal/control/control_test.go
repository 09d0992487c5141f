package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/status"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fakeSnapshot() status.Snapshot {
	return status.Snapshot{
		Time:          time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC),
		Version:       "test",
		ConnTableSize: 1024,
		Services: []status.Service{{
			Protocol: status.TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Scheduler: "rr",
			Persistent: 50 * time.Second,
			Reals: []status.Real{{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Weight: 1, Healthy: true,
				Stats: status.Counters{Conns: 3, InPkts: 30, InBytes: 3000}}},
		}},
		VRRP: []status.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, State: status.StateMaster,
			Priority: 100, EffectivePriority: 100, VIPs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}},
		Connections: []status.Connection{{Protocol: status.TCP,
			Client:  netip.MustParseAddrPort("203.0.113.7:40000"),
			Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
			Real:    netip.MustParseAddrPort("198.18.0.11:80"),
			State:   "ESTABLISHED", Expires: 900 * time.Second}},
	}
}

// sockPath returns a short socket path in a fresh temp dir: unix socket
// paths are limited to 107 bytes.
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "govs-ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "govs.sock")
}

// startServer listens on cfg.Path and serves until the test ends; the
// cleanup checks that Serve returned nil and removed the socket.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		if _, err := os.Lstat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s still there after shutdown: %v", cfg.Path, err)
		}
	})
	return srv
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawExchange sends raw bytes on a fresh connection and returns the first
// response line decoded.
func rawExchange(t *testing.T, path, send string) Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// The server may answer and hang up before reading everything (busy,
	// oversized), so a failed write is not yet a failure.
	_, _ = io.WriteString(c, send)
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		t.Fatalf("decode response to %q: %v", send, err)
	}
	return resp
}

func TestRoundTrip(t *testing.T) {
	path := sockPath(t)
	var reloads int
	reloadErr := error(nil)
	startServer(t, Config{
		Path:   path,
		Status: fakeSnapshot,
		Reload: func() error { reloads++; return reloadErr },
	})
	c := dial(t, path)
	ctx := context.Background()

	got, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want := fakeSnapshot()
	want.Connections = nil
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("status:\n got %s\nwant %s", gotJSON, wantJSON)
	}

	conns, err := c.Connections(ctx)
	if err != nil {
		t.Fatalf("Connections: %v", err)
	}
	if len(conns) != 1 || conns[0] != fakeSnapshot().Connections[0] {
		t.Errorf("connections = %+v", conns)
	}

	if err := c.Reload(ctx); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	reloadErr = errors.New("keepalived.conf:12:3: unknown scheduler \"xx\"; keeping the running configuration")
	err = c.Reload(ctx)
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != reloadErr.Error() || re.Op != OpReload {
		t.Errorf("Reload error = %#v, want RemoteError with %q", err, reloadErr)
	}
	if reloads != 2 {
		t.Errorf("reload callback ran %d times, want 2", reloads)
	}
}

func TestConnectionsFuncAndNoReload(t *testing.T) {
	path := sockPath(t)
	calls := 0
	startServer(t, Config{
		Path:        path,
		Status:      func() status.Snapshot { calls++; return status.Snapshot{} },
		Connections: func() []status.Connection { return nil },
	})
	c := dial(t, path)
	conns, err := c.Connections(context.Background())
	if err != nil || len(conns) != 0 {
		t.Fatalf("Connections = %v, %v; want empty", conns, err)
	}
	if calls != 0 {
		t.Errorf("status called %d times for a connections request", calls)
	}
	if err := c.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("Reload without callback = %v, want not supported", err)
	}
}

func TestPermissions(t *testing.T) {
	base := sockPath(t)
	// A directory that does not exist yet, like /run/govs on first start.
	path := filepath.Join(filepath.Dir(base), "run", "govs", "govs.sock")
	startServer(t, Config{Path: path, Status: fakeSnapshot})

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s is %v, want a socket", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %o, want 600", perm)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Geteuid() {
		t.Errorf("socket owner = %d, want %d (the daemon's user)", uid, os.Geteuid())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("socket directory mode = %o, want 700", perm)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "govs.sock govs.sock.lock" {
		t.Errorf("socket directory holds %v, want the socket and its lock only", names)
	}
}

func TestStaleSocketRemoved(t *testing.T) {
	path := sockPath(t)
	// A daemon that died leaves its socket behind, with nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not created: %v", err)
	}
	// And the temporary socket of a daemon that died while binding.
	tmp, err := net.ListenUnix("unix", &net.UnixAddr{Name: path + ".tmp99999", Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	tmp.SetUnlinkOnClose(false)
	tmp.Close()
	startServer(t, Config{Path: path, Status: fakeSnapshot})
	if _, err := dial(t, path).Status(context.Background()); err != nil {
		t.Fatalf("Status after replacing stale socket: %v", err)
	}
	if _, err := os.Lstat(path + ".tmp99999"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temporary socket still there: %v", err)
	}
}

func TestRefusesToRemoveNonSocket(t *testing.T) {
	path := sockPath(t)
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(Config{Path: path, Status: fakeSnapshot, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file = %v, want not a socket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("regular file was clobbered")
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{Path: path, Status: fakeSnapshot})

	_, err := Listen(Config{Path: path, Status: fakeSnapshot, Logger: quietLogger()})
	if !errors.Is(err, ErrDaemonRunning) {
		t.Fatalf("second Listen = %v, want ErrDaemonRunning", err)
	}
	// The first daemon is untouched.
	if _, err := dial(t, path).Status(context.Background()); err != nil {
		t.Fatalf("first daemon after refused second: %v", err)
	}
}

func TestRefusesLiveForeignListener(t *testing.T) {
	path := sockPath(t)
	// Something answers on the path without holding govs's lock (an older
	// govs, or another program): leave it alone.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = Listen(Config{Path: path, Status: fakeSnapshot, Logger: quietLogger()})
	if !errors.Is(err, ErrDaemonRunning) {
		t.Fatalf("Listen over a live socket = %v, want ErrDaemonRunning", err)
	}
}

func TestRestartAfterShutdown(t *testing.T) {
	path := sockPath(t)
	for i := range 2 {
		srv, err := Listen(Config{Path: path, Status: fakeSnapshot, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("Listen #%d: %v", i, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		c := dial(t, path)
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatalf("Status #%d: %v", i, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Serve #%d: %v", i, err)
		}
		// Open connections are ended by the shutdown.
		if _, err := c.Status(context.Background()); err == nil {
			t.Fatalf("Status #%d after shutdown succeeded", i)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{Path: path, Status: fakeSnapshot})
	tests := []struct {
		send, wantErr string
	}{
		{"not json\n", "malformed request"},
		{"{\"op\":\n", "malformed request"},
		{"[1,2,3]\n", "malformed request"},
		{"{\"version\":1,\"op\":\"shutdown\"}\n", `unknown op "shutdown"`},
		{"{\"version\":1}\n", "no op"},
		{"{\"version\":2,\"op\":\"status\"}\n", "unsupported protocol version 2"},
		{"{\"version\":\"one\",\"op\":\"status\"}\n", "malformed request"},
		{"\x00\xff\xfe\n", "malformed request"},
	}
	for _, tt := range tests {
		resp := rawExchange(t, path, tt.send)
		if resp.OK || !strings.Contains(resp.Error, tt.wantErr) || resp.Version != ProtocolVersion {
			t.Errorf("%q: response %+v, want error containing %q", tt.send, resp, tt.wantErr)
		}
	}
	// The connection survives a bad request: the next one is answered.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "garbage\n\n{\"op\":\"status\"}\n")
	dec := json.NewDecoder(c)
	var r1, r2 Response
	if err := dec.Decode(&r1); err != nil || r1.OK {
		t.Fatalf("first response %+v, %v; want error", r1, err)
	}
	if err := dec.Decode(&r2); err != nil || !r2.OK || r2.Status == nil {
		t.Fatalf("second response %+v, %v; want status (version omitted means 1)", r2, err)
	}
}

func TestOversizedRequestRejected(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{Path: path, Status: fakeSnapshot})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		// The server stops reading at the limit; this write may fail.
		big := `{"op":"status","pad":"` + strings.Repeat("a", 4*MaxRequestSize) + `"}` + "\n"
		io.WriteString(c, big)
	}()
	r := bufio.NewReader(c)
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.OK || !strings.Contains(resp.Error, "larger than") {
		t.Fatalf("response %+v, want request too large", resp)
	}
	// And the server hangs up rather than parsing the rest as requests.
	if _, err := r.ReadBytes('\n'); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after oversized request: %v, want EOF", err)
	}
	// The server still serves others.
	if _, err := dial(t, path).Status(context.Background()); err != nil {
		t.Fatalf("Status after oversized request: %v", err)
	}
}

func TestStuckClientDoesNotWedgeServer(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{Path: path, Status: fakeSnapshot, IdleTimeout: 200 * time.Millisecond, MaxClients: 2})

	// Two clients that connect and then dribble half a request, filling
	// every slot.
	var stuck []net.Conn
	for range 2 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, `{"op":"sta`)
		stuck = append(stuck, c)
	}
	// A third is turned away at once, not queued behind them.
	resp := rawExchange(t, path, "{\"op\":\"status\"}\n")
	if resp.OK || !strings.Contains(resp.Error, "busy") {
		t.Fatalf("third client got %+v, want busy", resp)
	}
	// Our own client reports the reason, not a broken pipe.
	if c, err := Dial(path); err == nil {
		_, err = c.Status(context.Background())
		c.Close()
		var re *RemoteError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "busy") {
			t.Errorf("Client.Status on a full server = %v, want busy RemoteError", err)
		}
	}
	// The stuck ones are cut off after the idle timeout ...
	for _, c := range stuck {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("stuck client read = %v, want EOF from the server closing it", err)
		}
	}
	// ... and service resumes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := Dial(path)
		if err == nil {
			_, err = c.Status(context.Background())
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not recover from stuck clients: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConcurrentClients(t *testing.T) {
	path := sockPath(t)
	var mu sync.Mutex
	n := 0
	startServer(t, Config{Path: path, MaxClients: 32, Status: func() status.Snapshot {
		mu.Lock()
		n++
		mu.Unlock()
		return fakeSnapshot()
	}})
	const clients, requests = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Go(func() {
			c, err := Dial(path)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for range requests {
				s, err := c.Status(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if len(s.Services) != 1 || s.Services[0].Reals[0].Stats.Conns != 3 {
					errs <- errors.New("wrong snapshot")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n != clients*requests {
		t.Errorf("status called %d times, want %d", n, clients*requests)
	}
}

func TestSharedClientConcurrentUse(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{Path: path, Status: fakeSnapshot})
	c := dial(t, path)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := c.Status(context.Background()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestPanickingCallback(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{
		Path:   path,
		Status: func() status.Snapshot { panic("nil map in daemon") },
		Reload: func() error { panic("boom") },
	})
	c := dial(t, path)
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("Status with panicking callback = %v, want internal error", err)
	}
	if err := c.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("Reload with panicking callback = %v, want internal error", err)
	}
}

func TestClientContextDeadline(t *testing.T) {
	path := sockPath(t)
	release := make(chan struct{})
	startServer(t, Config{Path: path, Status: fakeSnapshot, Reload: func() error { <-release; return nil }})
	defer close(release)
	c := dial(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Reload(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Reload past deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Reload took %v to give up", d)
	}
}

func TestDialNoDaemon(t *testing.T) {
	_, err := Dial(sockPath(t))
	if err == nil || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("Dial with no daemon = %v, want ENOENT", err)
	}
}

func TestListenNeedsStatus(t *testing.T) {
	if _, err := Listen(Config{Path: sockPath(t)}); err == nil {
		t.Fatal("Listen without a status function succeeded")
	}
}

// flakyListener fails its first Accept calls the way a daemon out of file
// descriptors sees them.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestAcceptErrorsAreTransient(t *testing.T) {
	path := sockPath(t)
	srv, err := Listen(Config{Path: path, Status: fakeSnapshot, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	srv.ln = &flakyListener{Listener: srv.ln, fails: 3}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := dial(t, path)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := c.Status(ctx2); err != nil {
		t.Fatalf("Status after accept errors: %v", err)
	}
}

// TestTricklingClientsAreCutOff: clients that fill every slot and send a
// blank line every 20 ms (never a request) are closed after the idle
// timeout, and service resumes.
func TestTricklingClientsAreCutOff(t *testing.T) {
	path := sockPath(t)
	startServer(t, Config{Path: path, Status: fakeSnapshot, IdleTimeout: 200 * time.Millisecond, MaxClients: 2})
	stop := make(chan struct{})
	defer close(stop)
	closed := make(chan error, 2)
	for range 2 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if _, err := io.WriteString(c, "\n"); err != nil {
					return
				}
			}
		}()
		go func() {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Read(make([]byte, 1))
			closed <- err
		}()
	}
	for range 2 {
		// The server closing a connection with unread lines in it is
		// seen as a reset rather than EOF; a timeout means it stayed open.
		if err := <-closed; !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("trickling client read = %v, want EOF or a reset from the server closing it", err)
		}
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(context.Background()); err != nil {
		t.Errorf("status after the trickling clients: %v", err)
	}
}
