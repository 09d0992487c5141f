package director_test

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedSdNotify: `govs run` started as systemd's Type=notify
// does it (NOTIFY_SOCKET set) says READY=1 once running, RELOADING=1 and
// READY=1 around a reload (SIGHUP), and STOPPING=1 on SIGTERM.
func TestPrivilegedSdNotify(t *testing.T) {
	netnstest.RequireRoot(t)
	govs := netnstest.BuildGovs(t)
	ns := netnstest.NewNS(t, "sd")
	ns.MustRun("ip", "link", "set", "lo", "up")
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	conf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, conf, "virtual_server 198.18.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n    }\n}\n")
	cmd := ns.Command(govs, "run", "-f", conf, "--socket", "-", "--no-dataplane")
	cmd.Env = append(cmd.Environ(), "NOTIFY_SOCKET="+sockPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		sock.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	if got := next(); !strings.Contains(got, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "RELOADING=1" {
		t.Errorf("on reload %q, want RELOADING=1", got)
	}
	if got := next(); got != "READY=1" {
		t.Errorf("after reload %q, want READY=1", got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "STOPPING=1" {
		t.Errorf("on SIGTERM %q, want STOPPING=1", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("govs run after SIGTERM: %v", err)
	}
}
