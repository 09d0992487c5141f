package vrrpnet_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
)

// A master that comes back must follow its preemption settings, and when it
// does take over again it must announce itself (gratuitous ARP) so clients
// leave the interim master: keepalived users saw stale ARP after recovery, and
// loxilb's returning master preempted before it had synced state.
func TestPrivilegedReturningMaster(t *testing.T) {
	netnstest.RequireRoot(t)
	fast := 100 * time.Millisecond
	tests := []struct {
		name     string
		mod      func(*vrrp.InstanceConfig)
		min, max time.Duration // takeover window after the return; max 0 = never
	}{
		{"preempt", nil, 300 * time.Millisecond, 1200 * time.Millisecond},
		{"preempt_delay 1.5s", func(c *vrrp.InstanceConfig) { c.PreemptDelay = 1500 * time.Millisecond }, 1500 * time.Millisecond, 2800 * time.Millisecond},
		{"nopreempt", func(c *vrrp.InstanceConfig) { c.NoPreempt = true }, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			interim := side{version: 3, interval: fast, vrid: 51, prio: 100, master: true}
			returning := side{version: 3, interval: fast, vrid: 51, prio: 150, mod: tt.mod}
			interim.run(t, l.b, l.a)
			if _, ok := waitVIP(t, l.b, true, 3*time.Second); !ok {
				t.Fatal("interim master never took the VIP")
			}
			l.client.ns.MustRun("ping", "-c1", "-W2", vipAddr)
			if mac := clientNeighMAC(t, l); mac != l.b.mac {
				t.Fatalf("client resolves the VIP to %q, want %s", mac, l.b.mac)
			}
			time.Sleep(1100 * time.Millisecond) // past the neighbour lock time
			back := time.Now()
			returning.run(t, l.a, l.b)
			if tt.max == 0 {
				time.Sleep(2500 * time.Millisecond)
				if hasVIP(t, l.a) || !hasVIP(t, l.b) {
					t.Fatalf("nopreempt node took over: a %v b %v", hasVIP(t, l.a), hasVIP(t, l.b))
				}
				return
			}
			at, ok := waitVIP(t, l.a, true, tt.max+time.Second)
			if !ok {
				t.Fatal("returning master never took over")
			}
			took := at.Sub(back)
			t.Logf("took over %v after its return (window %v..%v)", took, tt.min, tt.max)
			if took < tt.min || took > tt.max {
				t.Errorf("takeover %v outside %v..%v", took, tt.min, tt.max)
			}
			if _, ok := waitVIP(t, l.b, false, 2*time.Second); !ok {
				t.Error("interim master kept the VIP")
			}
			end := time.Now().Add(2 * time.Second)
			for clientNeighMAC(t, l) != l.a.mac && time.Now().Before(end) {
				time.Sleep(20 * time.Millisecond)
			}
			if mac := clientNeighMAC(t, l); mac != l.a.mac {
				t.Errorf("client still resolves the VIP to %q after the master returned, want %s", mac, l.a.mac)
			}
		})
	}
}

// Notify scripts get keepalived's arguments; a tracked interface going down
// forces FAULT, which the sync group spreads to its other instance; SIGTERM
// ends in STOP with the addresses removed.
func TestPrivilegedNotifyTrackSyncGroup(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	// A veth pair stands in for an uplink (this kernel has no dummy driver).
	l.a.ns.MustRun("ip", "link", "add", "trk0", "type", "veth", "peer", "name", "trk1")
	l.a.ns.MustRun("ip", "link", "set", "trk1", "up")
	l.a.ns.MustRun("ip", "link", "set", "trk0", "up")
	dir := t.TempDir()
	log := filepath.Join(dir, "notify.log")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	vip2 := "198.18.0.101"
	inst := func(name string, vrid uint8, vip string) vrrp.InstanceConfig {
		return vrrp.InstanceConfig{Name: name, Interface: "eth0", VRID: vrid, Priority: 150, Interval: 100 * time.Millisecond,
			Version: 3, InitialMaster: true, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vip + "/24"), Label: "eth0:" + name[3:]}},
			Notify: vrrp.Notify{Any: script, Master: script + " master-only"}}
	}
	i1 := inst("VI_1", 51, vipAddr)
	i1.TrackInterfaces = []vrrp.Track{{Name: "trk0"}}
	i2 := inst("VI_2", 52, vip2)
	p := runGovs(t, l.a, map[string]any{
		"instances":   []vrrp.InstanceConfig{i1, i2},
		"sync_groups": []vrrp.SyncGroup{{Name: "G1", Instances: []string{"VI_1", "VI_2"}}},
	})
	if _, ok := waitVIP(t, l.a, true, 3*time.Second); !ok {
		t.Fatal("VI_1 never became MASTER")
	}
	hasAddr := func(a string) bool {
		out := l.a.ns.MustRun("ip", "-o", "addr", "show", "dev", "eth0")
		return strings.Contains(out, " "+a+"/24 ")
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		end := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("VI_2's VIP with its label", func() bool {
		return strings.Contains(l.a.ns.MustRun("ip", "-o", "addr", "show", "dev", "eth0"), "eth0:2")
	})
	l.a.ns.MustRun("ip", "link", "set", "trk0", "down")
	waitFor("both VIPs removed in FAULT", func() bool { return !hasAddr(vipAddr) && !hasAddr(vip2) })
	l.a.ns.MustRun("ip", "link", "set", "trk0", "up")
	waitFor("both VIPs back after the fault", func() bool { return hasAddr(vipAddr) && hasAddr(vip2) })
	p.term()
	p.wait(t)
	if hasAddr(vipAddr) || hasAddr(vip2) {
		t.Error("VIPs left after SIGTERM")
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"INSTANCE VI_1 MASTER 150", "INSTANCE VI_2 MASTER 150", "master-only",
		"INSTANCE VI_1 FAULT 150", "INSTANCE VI_2 FAULT 150", "INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 STOP 150", "INSTANCE VI_2 STOP 150"} {
		if !strings.Contains(got, want) {
			t.Errorf("notify log lacks %q:\n%s", want, got)
		}
	}
	if !strings.Contains(p.out.String(), "interface trk0 down") {
		t.Errorf("govs did not log the fault reason:\n%s", p.out.String())
	}
}
