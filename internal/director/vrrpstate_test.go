package director

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/vrrp"
)

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestVRRPStateChangesReachTheDirector: the instances' state changes arrive
// through the factory's callback (no polling of status strings); a
// change from instances a reload has since restarted is ignored.
func TestVRRPStateChangesReachTheDirector(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	src := corpus.Files()[0].Src
	if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "VRRP started", func() bool { n, _ := f.vrrp.counts(); return n == 1 })
	if f.d.isMaster("VI_1") {
		t.Fatal("MASTER before any report")
	}
	f.vrrp.report("VI_1", vrrp.StateMaster)
	waitUntil(t, "VI_1 MASTER", func() bool { return f.d.isMaster("VI_1") })
	f.vrrp.report("VI_1", vrrp.StateBackup)
	waitUntil(t, "VI_1 BACKUP", func() bool { return !f.d.isMaster("VI_1") })
	f.vrrp.report("VI_1", vrrp.StateMaster)
	waitUntil(t, "VI_1 MASTER again", func() bool { return f.d.isMaster("VI_1") })

	stale := func() func(string, vrrp.State) {
		f.vrrp.mu.Lock()
		defer f.vrrp.mu.Unlock()
		return f.vrrp.onState
	}()
	if err := os.WriteFile(conf, []byte(strings.Replace(src, "priority 100", "priority 110", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.d.isMaster("VI_1") {
		t.Error("restarted instance still counted MASTER before it reported")
	}
	stale("VI_1", vrrp.StateMaster)
	f.vrrp.report("VI_1", vrrp.StateBackup)
	waitUntil(t, "the new instance's report", func() bool {
		f.d.mu.Lock()
		defer f.d.mu.Unlock()
		return f.d.vrrpStates["VI_1"] == vrrp.StateBackup
	})
	if f.d.isMaster("VI_1") {
		t.Error("a report of the stopped instances counted")
	}
}

// TestHASuspend: the checks of a virtual server with ha_suspend run only
// while the instance holding its VIP is MASTER, as keepalived's do.
func TestHASuspend(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	src := strings.Replace(corpus.Files()[0].Src, "    delay_loop 6\n", "    delay_loop 1\n    ha_suspend\n", 1)
	if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	probes := 0
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return probes
	}
	counting := func(check.Spec, netip.AddrPort) (check.Prober, error) {
		return check.ProberFunc(func(context.Context) state.Result {
			mu.Lock()
			probes++
			mu.Unlock()
			return state.Result{OK: true}
		}), nil
	}
	f, err := startFake(t, conf, counting)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "VRRP started", func() bool { n, _ := f.vrrp.counts(); return n == 1 })
	// BACKUP (and before the first report): suspended. A probe would be
	// due at once (Rand 0).
	f.vrrp.report("VI_1", vrrp.StateBackup)
	time.Sleep(300 * time.Millisecond) // absence of probes over a while
	if n := count(); n != 0 {
		t.Fatalf("%d probes while BACKUP with ha_suspend", n)
	}
	f.vrrp.report("VI_1", vrrp.StateMaster)
	waitUntil(t, "probes while MASTER", func() bool { return count() >= 2 }) // both real servers
	f.vrrp.report("VI_1", vrrp.StateBackup)
	waitUntil(t, "suspended again", func() bool {
		f.d.mu.Lock()
		defer f.d.mu.Unlock()
		return f.d.vrrpStates["VI_1"] == vrrp.StateBackup
	})
	n := count()
	time.Sleep(1500 * time.Millisecond) // more than delay_loop
	if got := count(); got > n+2 {
		t.Errorf("%d probes after going BACKUP, want none but those in flight", got-n)
	}
}
