package director

import (
	"errors"
	"fmt"
	"github.com/govs/govs/internal/desired"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/vrrp"
)

// TestReloadRestartsVRRPOnlyForItsChanges reloads a running director after
// edits: those no VRRP instance depends on (notification_email, a real
// server's weight, lvs_sync_daemon) keep the instances running, as keepalived
// users expect of a reload; an instance's own setting restarts them.
func TestReloadRestartsVRRPOnlyForItsChanges(t *testing.T) {
	base := corpus.Files()[0]
	if base.Name != "base" {
		t.Fatalf("corpus starts with %q, not the base file", base.Name)
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(src string) { t.Helper(); writeConfig(t, conf, src) }
	write(base.Src)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 && len(st.Services[0].Reals) == 2 }); !ok {
		t.Fatal("base configuration not programmed")
	}
	edits := []struct {
		name, old, new string
		restart        bool
	}{
		{"notification_email", "router_id lb1", "router_id lb1\n    notification_email {\n        ops@example.org\n    }\n    notification_email_from lb@example.org", false},
		{"real server weight", "real_server 198.18.0.12 80 {\n        weight 1", "real_server 198.18.0.12 80 {\n        weight 3", false},
		{"lvs_sync_daemon", "router_id lb1", "router_id lb1\n    lvs_sync_daemon eth0 VI_1", false},
		{"priority", "priority 100", "priority 150", true},
		{"advert_int", "advert_int 1", "advert_int 2", true},
	}
	src := base.Src
	wantStarts := 1
	for _, e := range edits {
		if !strings.Contains(src, e.old) {
			t.Fatalf("%s: %q not in the configuration", e.name, e.old)
		}
		src = strings.Replace(src, e.old, e.new, 1)
		write(src)
		if err := f.d.Reload(); err != nil {
			t.Fatalf("%s: reload: %v", e.name, err)
		}
		if e.restart {
			wantStarts++
		}
		started, stopped := f.vrrp.counts()
		if started != wantStarts || stopped != wantStarts-1 {
			t.Errorf("after editing %s: VRRP started %d times, stopped %d; want %d and %d", e.name, started, stopped, wantStarts, wantStarts-1)
		}
	}
	if st, _ := f.waitApplied(0, func(dpstate.State) bool { return true }); st.Services[0].Reals[1].Weight != 3 {
		t.Errorf("weight edit not applied: %+v", st.Services[0].Reals)
	}
}

// TestReloadRestartsOnlyTheChangedInstance: with two instances, editing one
// restarts that one only (the other keeps its VIPs and its reported
// state); instances of a sync group restart together.
func TestReloadRestartsOnlyTheChangedInstance(t *testing.T) {
	instance := func(name, vrid, prio, vip string) string {
		return "vrrp_instance " + name + " {\n    state MASTER\n    interface eth0\n    virtual_router_id " + vrid +
			"\n    priority " + prio + "\n    virtual_ipaddress {\n        " + vip + "\n    }\n}\n"
	}
	vs := "virtual_server 198.18.0.100 80 {\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n    }\n}\n"
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(src string) { t.Helper(); writeConfig(t, conf, src) }
	write(instance("VI_1", "51", "100", "198.18.0.100") + instance("VI_2", "52", "100", "198.18.0.101") + vs)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	startedUnits := func() [][]string {
		f.vrrp.mu.Lock()
		defer f.vrrp.mu.Unlock()
		var out [][]string
		for _, u := range f.vrrp.started {
			var names []string
			for _, in := range u.Instances {
				names = append(names, in.Name)
			}
			out = append(out, names)
		}
		return out
	}
	waitUntil(t, "both instances started", func() bool { return len(startedUnits()) == 2 })
	if got := startedUnits(); len(got) != 2 || len(got[0]) != 1 || len(got[1]) != 1 {
		t.Fatalf("started %v, want VI_1 and VI_2 on their own", got)
	}
	f.d.mu.Lock()
	f.d.vrrpStates["VI_1"] = vrrp.StateMaster // as if VI_1 had reported
	f.d.publishMastersLocked()
	f.d.mu.Unlock()

	write(instance("VI_1", "51", "100", "198.18.0.100") + instance("VI_2", "52", "120", "198.18.0.101") + vs)
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	got := startedUnits()
	if _, stopped := f.vrrp.counts(); len(got) != 3 || got[2][0] != "VI_2" || stopped != 1 {
		t.Fatalf("after editing VI_2: started %v, stopped %d; want VI_2 restarted alone", got, stopped)
	}
	if !f.d.isMaster("VI_1") {
		t.Error("VI_1's state was lost although it did not restart")
	}

	// In a sync group the two restart together.
	group := "vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"
	write(instance("VI_1", "51", "100", "198.18.0.100") + instance("VI_2", "52", "120", "198.18.0.101") + group + vs)
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	got = startedUnits()
	if len(got) != 4 || len(got[3]) != 2 {
		t.Fatalf("after grouping: started %v, want one unit with both", got)
	}
	if f.d.isMaster("VI_1") {
		t.Error("VI_1 restarted into the group but still counted MASTER")
	}
}

// TestReloadRefusedKeepsRunning: a reload naming a missing interface, or
// going beyond the data plane's sizes, is refused before anything stops:
// VRRP keeps running and the data plane keeps its state.
func TestReloadRefusedKeepsRunning(t *testing.T) {
	base := corpus.Files()[0].Src
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(src string) { t.Helper(); writeConfig(t, conf, src) }
	write(base)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	before, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 && len(st.Services[0].Reals) == 2 })
	if !ok {
		t.Fatal("base configuration not programmed")
	}
	var many strings.Builder
	for i := 0; i < 65; i++ {
		fmt.Fprintf(&many, "    real_server 198.18.1.%d 80 {\n        weight 1\n    }\n", i+1)
	}
	for _, c := range []struct{ name, src, want string }{
		{"missing interface", strings.Replace(base, "interface eth0", "interface nosuch0", 1), "interface nosuch0 does not exist"},
		{"table sizes", strings.Replace(base, "global_defs {", "global_defs {\n    govs_conn_table_size 4096", 1), "change only at a restart"},
		{"over the limits", strings.Replace(strings.Replace(base, "lb_algo rr", "lb_algo lc", 1), "    real_server 198.18.0.12 80 {", many.String()+"    real_server 198.18.0.12 80 {", 1), "lc balances at most 64"},
	} {
		write(c.src)
		err := f.d.Reload()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: reload error %v, want %q", c.name, err, c.want)
		}
		if started, stopped := f.vrrp.counts(); started != 1 || stopped != 0 {
			t.Errorf("%s: VRRP started %d, stopped %d after a refused reload", c.name, started, stopped)
		}
		if after, _ := f.waitApplied(0, func(dpstate.State) bool { return true }); !reflect.DeepEqual(after.Services, before.Services) {
			t.Errorf("%s: data plane changed by a refused reload", c.name)
		}
		if r := f.d.Snapshot().Reloads; r.LastOK || r.LastSuccess.IsZero() || !strings.Contains(r.LastError, c.want) {
			t.Errorf("%s: reload status %+v, want failed with %q and the start as the last success", c.name, r, c.want)
		}
	}
	// A good reload after the failures.
	write(base)
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if r := f.d.Snapshot().Reloads; r.Succeeded != 1 || r.Failed != 3 || !r.LastOK || r.LastError != "" {
		t.Errorf("reload status %+v after three refused reloads and a good one", r)
	}
}

// TestReloadVRRPStartFailureRestoresTheOldUnit: when a changed instance
// cannot start (a socket error the plan cannot foresee), the reload fails
// and the instance runs again with its previous settings, so the VIP is
// not left without an owner.
func TestReloadVRRPStartFailureRestoresTheOldUnit(t *testing.T) {
	base := corpus.Files()[0].Src
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(src string) { t.Helper(); writeConfig(t, conf, src) }
	write(base)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "VRRP started", func() bool { n, _ := f.vrrp.counts(); return n == 1 })
	f.vrrp.mu.Lock()
	f.vrrp.fail = func(v desired.VRRP) error {
		if v.Instances[0].Priority == 200 {
			return errors.New("raw socket: operation not permitted")
		}
		return nil
	}
	f.vrrp.mu.Unlock()
	before := f.d.Snapshot().Services
	// The failing unit comes after the data plane and checks changed:
	// they are rolled back too.
	write(strings.Replace(base, "priority 100", "priority 200", 1) + `
virtual_server 198.18.0.100 443 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 443 {
        weight 1
    }
}
`)
	if err := f.d.Reload(); err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("reload error %v, want the start failure", err)
	}
	after := f.d.Snapshot()
	if len(after.Services) != len(before) || len(before) == 0 {
		t.Fatalf("%d services after the failed reload, %d before", len(after.Services), len(before))
	}
	for i, s := range after.Services {
		if s.VIP != before[i].VIP || s.Port != before[i].Port || len(s.Reals) != len(before[i].Reals) {
			t.Errorf("service %d: %s:%d with %d reals after the failed reload, %s:%d with %d before",
				i, s.VIP, s.Port, len(s.Reals), before[i].VIP, before[i].Port, len(before[i].Reals))
		}
	}
	if after.Reloads.Failed != 1 || after.Reloads.LastOK {
		t.Errorf("reloads %+v, want one failure reported", after.Reloads)
	}
	f.vrrp.mu.Lock()
	defer f.vrrp.mu.Unlock()
	if len(f.vrrp.started) != 2 || f.vrrp.started[1].Instances[0].Priority != 100 || f.vrrp.stopped != 1 {
		t.Fatalf("started %d units (last priority %d), stopped %d; want the old one restarted", len(f.vrrp.started), f.vrrp.started[len(f.vrrp.started)-1].Instances[0].Priority, f.vrrp.stopped)
	}
	if got := len(f.d.Snapshot().VRRP); got != 1 {
		t.Errorf("%d VRRP instances running after the failed reload, want 1", got)
	}
}

// writeConfig writes a configuration file for a reload.
func writeConfig(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}
