package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/status"
)

// The flag has its own name so it cannot collide with golden-file flags of
// other subcommands' tests in this package.
var updateList = flag.Bool("update-list", false, "rewrite cmd/govs/testdata/list-*.golden")

func listSnapshot() status.Snapshot {
	a := netip.MustParseAddr
	return status.Snapshot{
		Time:          time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC),
		Version:       "test",
		ConnTableSize: 65536,
		Services: []status.Service{{
			Protocol: status.TCP, VIP: a("198.18.0.100"), Port: 80, Scheduler: "rr", Persistent: 50 * time.Second,
			Stats: status.Counters{Conns: 1500, InPkts: 150_000_000, InBytes: 9_000_000_000},
			Rates: status.Rates{CPS: 10, InPPS: 1000, InBPS: 600_000},
			Reals: []status.Real{
				{Addr: a("198.18.0.11"), Port: 80, Weight: 1, ActiveConn: 4, InactConn: 20, Healthy: true,
					Stats: status.Counters{Conns: 750, InPkts: 75_000_000, InBytes: 4_500_000_000},
					Rates: status.Rates{CPS: 5, InPPS: 500, InBPS: 300_000}},
				{Addr: a("198.18.0.12"), Port: 80, Weight: 0, ActiveConn: 1, InactConn: 3, Healthy: false,
					Stats: status.Counters{Conns: 750, InPkts: 75_000_000, InBytes: 4_500_000_000},
					Rates: status.Rates{CPS: 5, InPPS: 500, InBPS: 300_000}},
			},
		}},
		VRRP: []status.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, State: status.StateMaster,
			Priority: 100, EffectivePriority: 100, VIPs: []netip.Addr{a("198.18.0.100")}}},
		Connections: []status.Connection{{Protocol: status.TCP,
			Client:  netip.MustParseAddrPort("203.0.113.7:40000"),
			Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
			Real:    netip.MustParseAddrPort("198.18.0.11:80"),
			State:   "ESTABLISHED", Expires: 899 * time.Second}},
	}
}

// startDaemon serves a control socket with a fake status and the given
// reload function, as the director daemon would.
func startDaemon(t *testing.T, reload control.ReloadFunc) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "govs-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "govs.sock")
	srv, err := control.Listen(control.Config{
		Path:   path,
		Status: listSnapshot,
		Reload: reload,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

func TestListGolden(t *testing.T) {
	p := startDaemon(t, nil)
	tests := []struct {
		golden string
		args   []string
	}{
		{"list-table.golden", []string{"list", "--socket", p}},
		{"list-table.golden", []string{"list", "-n", "--socket", p}},
		{"list-stats.golden", []string{"list", "-n", "--stats", "--socket", p}},
		{"list-rate.golden", []string{"list", "--rate", "--socket", p}},
		{"list-connections.golden", []string{"list", "-n", "-c", "--socket", p}},
		{"list-connections-json.golden", []string{"list", "--connections", "--json", "--socket", p}},
		{"list-json.golden", []string{"list", "--json", "--socket", p}},
		{"list-save.golden", []string{"list", "-S", "--socket", p}},
		{"list-one-service.golden", []string{"list", "-Ln", "-t", "198.18.0.100:80", "--socket", p}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:len(tt.args)-2], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr: %s", stderr.String())
			}
			path := filepath.Join("testdata", tt.golden)
			if *updateList {
				if err := os.WriteFile(path, stdout.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update-list to create it): %v", err)
			}
			if !bytes.Equal(stdout.Bytes(), want) {
				t.Errorf("output mismatch\n--- got ---\n%s\n--- want ---\n%s", stdout.String(), want)
			}
		})
	}
}

func TestListNoDaemon(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.sock")
	var stdout, stderr bytes.Buffer
	code := run([]string{"list", "--socket", p}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "govs list: no govs daemon at " + p + ": "
	if !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr = %q, want prefix %q", stderr.String(), want)
	}
	if stdout.Len() > 0 {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

func TestListBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"list", "--stats", "--rate"},
		{"list", "--bogus"},
		{"list", "extra"},
		{"reload", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

func TestReload(t *testing.T) {
	var reloadErr error
	p := startDaemon(t, func() error { return reloadErr })

	var stdout, stderr bytes.Buffer
	if code := run([]string{"reload", "--socket", p}, &stdout, &stderr); code != 0 {
		t.Fatalf("reload: exit %d, stderr %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "reloaded") {
		t.Errorf("stdout = %q", stdout.String())
	}

	reloadErr = errors.New("keepalived.conf:8:20: number '300' outside range [1, 255]")
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"reload", "--socket", p}, &stdout, &stderr); code != 1 {
		t.Fatalf("failed reload: exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), reloadErr.Error()) || !strings.Contains(stderr.String(), "keeps the running one") {
		t.Errorf("stderr = %q, want the daemon's error", stderr.String())
	}

	stderr.Reset()
	none := filepath.Join(t.TempDir(), "none.sock")
	if code := run([]string{"reload", "--socket", none}, &stdout, &stderr); code != 1 ||
		!strings.HasPrefix(stderr.String(), "govs reload: no govs daemon at "+none) {
		t.Errorf("reload without daemon: exit %d, stderr %q", code, stderr.String())
	}
}

// TestDialError: a user who may not open the control socket is told so,
// not that no daemon runs.
func TestDialError(t *testing.T) {
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	if got := dialError("/run/govs/govs.sock", denied); !strings.HasPrefix(got, "permission denied on /run/govs/govs.sock") {
		t.Errorf("EACCES: %q", got)
	}
	missing := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ENOENT)}
	if got := dialError("/run/govs/govs.sock", missing); !strings.HasPrefix(got, "no govs daemon at /run/govs/govs.sock") {
		t.Errorf("ENOENT: %q", got)
	}
}

// TestServiceFilter: -t and -u pick one service by protocol and VIP:PORT,
// as ipvsadm's do; a service that is not there is an error.
func TestServiceFilter(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	tcp80 := status.Service{Protocol: status.TCP, VIP: vip, Port: 80}
	udp80 := status.Service{Protocol: status.UDP, VIP: vip, Port: 80}
	tcp443 := status.Service{Protocol: status.TCP, VIP: vip, Port: 443}
	only, err := serviceFilter("198.18.0.100:80", "", 0)
	if err != nil || !only(tcp80) || only(udp80) || only(tcp443) {
		t.Errorf("-t 198.18.0.100:80: %v", err)
	}
	only, err = serviceFilter("", "198.18.0.100:80", 0)
	if err != nil || only(tcp80) || !only(udp80) {
		t.Errorf("-u 198.18.0.100:80: %v", err)
	}
	fwm := status.Service{Fwmark: 7}
	only, err = serviceFilter("", "", 7)
	if err != nil || !only(fwm) || only(tcp80) || only(status.Service{Fwmark: 8}) {
		t.Errorf("-f 7: %v", err)
	}
	if _, err := serviceFilter("198.18.0.100:80", "", 7); err == nil {
		t.Error("-t with -f accepted")
	}
	for _, bad := range [][2]string{{"198.18.0.100", ""}, {"198.18.0.100:80", "198.18.0.100:80"}} {
		if _, err := serviceFilter(bad[0], bad[1], 0); err == nil {
			t.Errorf("-t %q -u %q accepted", bad[0], bad[1])
		}
	}
	p := startDaemon(t, nil)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"list", "-t", "198.18.0.100:81", "--socket", p}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no such service") {
		t.Errorf("a missing service: exit %d, %q", code, stderr.String())
	}
}
