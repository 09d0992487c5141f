package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// nginx runs Debian's nginx in the foreground on addr, with every file it
// writes in dir. It returns the started command.
func startNginx(t *testing.T, bin, dir, addr string) *exec.Cmd {
	t.Helper()
	conf := filepath.Join(dir, "nginx.conf")
	text := fmt.Sprintf(`worker_processes 1;
error_log %[1]s/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s;
		location = /health { return 200 "govs ok\n"; }
		location / { return 404; }
	}
}
`, dir, addr)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf, "-p", dir, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	// Wait until it accepts connections.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx does not listen on %s: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNginxHTTPGet puts Debian's nginx behind an HTTP_GET checker with
// inhibit_on_failure: stopping nginx must take the server to weight 0 within
// delay_loop + retry × delay_before_retry + connect_timeout, and starting it
// again must bring it back.
func TestNginxHTTPGet(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("nginx is not installed")
		}
		bin = "/usr/sbin/nginx"
	}
	dir := t.TempDir()
	addr := closedPort(t, "tcp")
	ap := netip.MustParseAddrPort(addr)

	const (
		delayLoop = time.Second
		retry     = 1
		dbr       = time.Second
		timeout   = time.Second
	)
	bound := delayLoop + retry*dbr + timeout

	nginx := startNginx(t, bin, dir, addr)
	events := make(chan state.Event, 100)
	vss := []VirtualServer{{Name: "198.18.0.100:80", RealServers: []RealServer{{
		Addr: ap, Weight: 1, Inhibit: true,
		Checkers: []Spec{{Type: HTTP, URLs: []URL{{Path: "/health", Digest: Digest([]byte("govs ok\n"))}},
			DelayLoop: delayLoop, Retry: ptr(retry), DelayBeforeRetry: ptr(dbr), ConnectTimeout: timeout}},
	}}}}
	r, err := NewRunner(vss, Options{OnEvent: func(e state.Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	defer r.Stop()

	wait := func(kind state.Kind, within time.Duration) state.Event {
		t.Helper()
		timer := time.After(within)
		for {
			select {
			case e := <-events:
				if e.Kind == kind && !e.Initial {
					return e
				}
			case <-timer:
				t.Fatalf("no %v event within %v", kind, within)
			}
		}
	}
	// Let the checker see nginx up at least once (warmup is up to delay_loop).
	waitHealthy := time.Now().Add(3 * delayLoop)
	for time.Now().Before(waitHealthy) {
		st := r.Status()[0].RealServers[0]
		if st.Checkers[0].LastErr == nil && st.Alive {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	for round := 1; round <= 2; round++ {
		stopped := time.Now()
		if err := nginx.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		nginx.Wait()
		e := wait(state.RealServerDown, bound+500*time.Millisecond)
		detect := time.Since(stopped)
		if want := []state.Dest{{Name: addr, Weight: 0}}; fmt.Sprint(e.Dests) != fmt.Sprint(want) {
			t.Fatalf("after stop dests %v, want %v (inhibited)", e.Dests, want)
		}
		if detect > bound {
			t.Fatalf("round %d: down detected after %v, bound %v", round, detect, bound)
		}
		t.Logf("round %d: nginx stopped, weight 0 after %v (bound %v); reason: %s", round, detect.Round(time.Millisecond), bound, e.Reason)

		started := time.Now()
		nginx = startNginx(t, bin, dir, addr)
		e = wait(state.RealServerUp, delayLoop+timeout+500*time.Millisecond)
		if want := []state.Dest{{Name: addr, Weight: 1}}; fmt.Sprint(e.Dests) != fmt.Sprint(want) {
			t.Fatalf("after restart dests %v, want %v", e.Dests, want)
		}
		t.Logf("round %d: nginx started, weight 1 after %v", round, time.Since(started).Round(time.Millisecond))
	}
}
