package director

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// TestReloadKeepsHealthState is the keepalived lesson "failed servers not
// re-added after reload" turned around: a real server that failed its check
// before a reload must stay out right after it (no request may be sent to
// it because the checker restarted), and one that was healthy must stay in.
func TestReloadKeepsHealthState(t *testing.T) {
	upPort, deadPort := checkTargets(t)

	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	vs := func(vip string, port int) string {
		return fmt.Sprintf(`virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 127.0.0.1 80 {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_port %d
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`, vip, port)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(vs("198.18.0.100", deadPort) + vs("198.18.0.101", upPort))
	d, err := New(Options{ConfigPath: conf, SocketPath: "-", NoDataplane: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	weight := func(vip string) int {
		for _, s := range d.Snapshot().Services {
			if s.VIP == netip.MustParseAddr(vip) && len(s.Reals) == 1 {
				return s.Reals[0].Weight
			}
		}
		return -1
	}
	deadline := time.Now().Add(10 * time.Second)
	for (weight("198.18.0.100") != 0 || weight("198.18.0.101") != 1) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if w := weight("198.18.0.100"); w != 0 {
		t.Fatalf("the dead real server has weight %d before the reload, want 0", w)
	}

	if w := weight("198.18.0.101"); w != 1 {
		t.Fatalf("the healthy real server has weight %d before the reload, want 1: %+v", w, d.Snapshot().Services)
	}
	// Reload with a new virtual server; the two old ones are unchanged.
	write(vs("198.18.0.100", deadPort) + vs("198.18.0.101", upPort) + vs("198.18.0.102", upPort))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	// Watch both through the time a restarted checker would take to
	// report: a new runner starts its servers up (the dead one included)
	// and the healthy one alpha-style down would be just as wrong.
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if w := weight("198.18.0.100"); w != 0 {
			t.Fatalf("after the reload the dead real server has weight %d, want 0", w)
		}
		if w := weight("198.18.0.101"); w != 1 {
			t.Fatalf("after the reload the healthy real server has weight %d, want 1", w)
		}
	}
	if w := weight("198.18.0.102"); w != 1 {
		t.Errorf("the new virtual server's real server has weight %d, want 1", w)
	}
}

// TestReloadChangedVirtualServer changes a virtual server (a real server
// added) and removes another: the added server comes in, the failed one of
// the changed virtual server stays out throughout (a reload used to restart
// the whole virtual server's checks, re-adding it until its check failed
// again), and the removed virtual server's pool is gone.
func TestReloadChangedVirtualServer(t *testing.T) {
	upPort, deadPort := checkTargets(t)

	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	real := func(addr string, port int) string {
		return fmt.Sprintf(`    real_server %s 80 {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_ip 127.0.0.1
            connect_port %d
            connect_timeout 1
            retry 0
        }
    }
`, addr, port)
	}
	vs := func(vip string, reals ...string) string {
		return fmt.Sprintf("virtual_server %s 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n%s}\n", vip, strings.Join(reals, ""))
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(vs("198.18.0.100", real("198.18.1.1", deadPort), real("198.18.1.2", upPort)) + vs("198.18.0.101", real("198.18.1.3", upPort)))
	d, err := New(Options{ConfigPath: conf, SocketPath: "-", NoDataplane: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	pools := func() map[string][]state.Dest {
		d.mu.Lock()
		defer d.mu.Unlock()
		out := map[string][]state.Dest{}
		maps.Copy(out, d.pools)
		return out
	}
	before := []state.Dest{{Name: "198.18.1.1:80", Weight: 0}, {Name: "198.18.1.2:80", Weight: 1}}
	deadline := time.Now().Add(10 * time.Second)
	for !reflect.DeepEqual(pools()["198.18.0.100:80"], before) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := pools()["198.18.0.100:80"]; !reflect.DeepEqual(got, before) {
		t.Fatalf("pool before the reload %v, want %v", got, before)
	}

	write(vs("198.18.0.100", real("198.18.1.1", deadPort), real("198.18.1.2", upPort), real("198.18.1.4", upPort)))
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	after := append(before, state.Dest{Name: "198.18.1.4:80", Weight: 1})
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		p := pools()
		if _, ok := p["198.18.0.101:80"]; ok || len(p) != 1 {
			t.Fatalf("pools after the reload %v, want only 198.18.0.100:80's", p)
		}
		// The added server's event is applied a moment after Reload returns.
		if got := p["198.18.0.100:80"]; !reflect.DeepEqual(got, after) && !reflect.DeepEqual(got, before) {
			t.Fatalf("pool after the reload %v, want %v", got, after)
		}
	}
	if got := pools()["198.18.0.100:80"]; !reflect.DeepEqual(got, after) {
		t.Fatalf("pool after the reload %v, want %v", got, after)
	}
}

// checkTargets returns a loopback port that accepts connections (until the
// test ends) and one where nothing listens, so connections are refused.
func checkTargets(t *testing.T) (upPort, deadPort int) {
	t.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort = dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	return up.Addr().(*net.TCPAddr).Port, deadPort
}
