package vrrpnet_test

import (
	"net/netip"
	"os"
	"os/exec"
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
		name      string
		nopreempt bool
		delay     time.Duration
		min, max  time.Duration // takeover window after the return; max 0 = never
	}{
		{"preempt", false, 0, 300 * time.Millisecond, 1200 * time.Millisecond},
		{"preempt_delay 1.5s", false, 1500 * time.Millisecond, 1500 * time.Millisecond, 2800 * time.Millisecond},
		{"nopreempt", true, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			interim := side{version: 3, interval: fast, vrid: 51, prio: 100, master: true}
			returning := side{version: 3, interval: fast, vrid: 51, prio: 150, nopreempt: tt.nopreempt, preempt: tt.delay}
			interim.run(t, l.b, l.a)
			if _, ok := waitVIP(t, l.b, true, 3*time.Second); !ok {
				t.Fatal("interim master never took the VIP")
			}
			l.client.ns.MustRun("ping", "-c1", "-W2", vipAddr)
			if mac := clientNeighMAC(t, l); mac != l.b.mac {
				t.Fatalf("client resolves the VIP to %q, want %s", mac, l.b.mac)
			}
			time.Sleep(1100 * time.Millisecond) // past the neighbour lock time
			// The returning node crashed while MASTER: its VIP is still there.
			l.a.ns.Addr("eth0", vipAddr+"/24")
			back := time.Now()
			returning.run(t, l.a, l.b)
			if tt.max == 0 {
				if _, ok := waitVIP(t, l.a, false, time.Second); !ok {
					t.Fatal("stale VIP not removed at start")
				}
				time.Sleep(2500 * time.Millisecond)
				if hasVIP(t, l.a) || !hasVIP(t, l.b) {
					t.Fatalf("nopreempt node took over: a %v b %v", hasVIP(t, l.a), hasVIP(t, l.b))
				}
				return
			}
			if _, ok := waitVIP(t, l.a, false, time.Second); !ok {
				t.Fatal("stale VIP not removed at start")
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
	waitFor(t, "VI_2's VIP with its label", func() bool {
		return strings.Contains(l.a.ns.MustRun("ip", "-o", "addr", "show", "dev", "eth0"), "eth0:2")
	})
	l.a.ns.MustRun("ip", "link", "set", "trk0", "down")
	waitFor(t, "both VIPs removed in FAULT", func() bool { return !hasAddr(vipAddr) && !hasAddr(vip2) })
	l.a.ns.MustRun("ip", "link", "set", "trk0", "up")
	waitFor(t, "both VIPs back after the fault", func() bool { return hasAddr(vipAddr) && hasAddr(vip2) })
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

// A partition makes two masters; when it heals, the higher-priority master
// asserts itself at once (advert + gratuitous ARP on the lower-priority advert)
// and the client's ARP entry follows it without the client sending anything.
func TestPrivilegedSplitBrainHeals(t *testing.T) {
	netnstest.RequireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	l := newLab(t)
	fast := 100 * time.Millisecond
	side{version: 3, interval: fast, vrid: 51, prio: 150, master: true}.run(t, l.a, l.b)
	if _, ok := waitVIP(t, l.a, true, 3*time.Second); !ok {
		t.Fatal("a never became MASTER")
	}
	side{version: 3, interval: fast, vrid: 51, prio: 100}.run(t, l.b, l.a)
	time.Sleep(500 * time.Millisecond)
	// Partition a from everyone, keeping its carrier (no FAULT).
	l.br.MustRun("nft", "add table bridge part")
	l.br.MustRun("nft", "add chain bridge part filt { type filter hook forward priority 0 ; }")
	l.br.MustRun("nft", "add rule bridge part filt iifname pa drop")
	l.br.MustRun("nft", "add rule bridge part filt oifname pa drop")
	if _, ok := waitVIP(t, l.b, true, 2*time.Second); !ok {
		t.Fatal("b did not become MASTER during the partition")
	}
	if !hasVIP(t, l.a) {
		t.Fatal("a left MASTER during the partition")
	}
	l.client.ns.MustRun("ping", "-c1", "-W2", vipAddr)
	if mac := clientNeighMAC(t, l); mac != l.b.mac {
		t.Fatalf("client resolves the VIP to %q during the partition, want b %s", mac, l.b.mac)
	}
	time.Sleep(1100 * time.Millisecond) // past the neighbour lock time
	// Heal in two steps so that a surely hears b's lower-priority advert:
	// healed at once, either master may hear the other first, and b going
	// quietly to BACKUP would leave a nothing to react to. First everything
	// but a's adverts passes: a must answer b's advert with gratuitous ARP.
	healed := time.Now()
	l.br.MustRun("nft", "flush chain bridge part filt")
	l.br.MustRun("nft", "add rule bridge part filt iifname pa ip protocol 112 drop")
	end := time.Now().Add(2 * time.Second)
	for clientNeighMAC(t, l) != l.a.mac && time.Now().Before(end) {
		time.Sleep(10 * time.Millisecond)
	}
	if mac := clientNeighMAC(t, l); mac != l.a.mac {
		t.Fatalf("client still resolves the VIP to %q after the heal, want a %s", mac, l.a.mac)
	}
	t.Logf("client moved back to a %v after the heal", time.Since(healed))
	l.br.MustRun("nft", "delete table bridge part")
	if _, ok := waitVIP(t, l.b, false, 2*time.Second); !ok {
		t.Fatal("b kept the VIP after the partition healed")
	}
	if !hasVIP(t, l.a) {
		t.Fatal("a is not MASTER after the heal")
	}
}

// With dont_track_primary, the link of an instance's own interface going
// down does not fault it (keepalived's meaning); without, it does.
func TestPrivilegedDontTrackPrimary(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	for _, pair := range [][2]string{{"pri0", "pri1"}, {"trk0", "trk1"}} {
		l.a.ns.MustRun("ip", "link", "add", pair[0], "type", "veth", "peer", "name", pair[1])
		l.a.ns.MustRun("ip", "link", "set", pair[1], "up")
		l.a.ns.MustRun("ip", "link", "set", pair[0], "up")
	}
	l.a.ns.Addr("pri0", "198.18.1.1/24")
	l.a.ns.Addr("trk0", "198.18.2.1/24")
	inst := func(name, iface string, vrid uint8, vip string) vrrp.InstanceConfig {
		return vrrp.InstanceConfig{Name: name, Interface: iface, VRID: vrid, Priority: 150, Interval: 100 * time.Millisecond,
			Version: 3, InitialMaster: true, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vip + "/32")}}}
	}
	untracked := inst("VI_1", "pri0", 51, "198.18.1.100")
	untracked.DontTrackPrimary = true
	tracked := inst("VI_2", "trk0", 52, "198.18.2.100")
	p := runGovs(t, l.a, map[string]any{"instances": []vrrp.InstanceConfig{untracked, tracked}})
	has := func(dev, a string) bool {
		return strings.Contains(l.a.ns.MustRun("ip", "-o", "addr", "show", "dev", dev), " "+a+"/32 ")
	}
	waitFor(t, "both MASTER", func() bool { return has("pri0", "198.18.1.100") && has("trk0", "198.18.2.100") })
	l.a.ns.MustRun("ip", "link", "set", "pri0", "down")
	l.a.ns.MustRun("ip", "link", "set", "trk0", "down")
	waitFor(t, "VI_2 in FAULT (its VIP removed)", func() bool { return !has("trk0", "198.18.2.100") })
	if !has("pri0", "198.18.1.100") {
		t.Error("VI_1 with dont_track_primary left MASTER when its interface went down")
	}
	p.term()
	p.wait(t)
}

// TestPrivilegedNoAccept: a MASTER with no_accept (and one with vrrp_strict,
// where it is the default below priority 255) holds the VIP but drops what
// is addressed to it, while its own address answers; stopping removes the
// nftables table.
func TestPrivilegedNoAccept(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, c := range []struct {
		name string
		s    side
	}{
		{"no_accept", side{version: 2, interval: time.Second, pass: "s3cret", vrid: 51, prio: 150, master: true, instance: "  no_accept\n"}},
		{"vrrp_strict", side{version: 3, interval: time.Second, vrid: 51, prio: 150, global: "  vrrp_strict\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t)
			p := c.s.run(t, l.a, l.b)
			if _, ok := waitVIP(t, l.a, true, 8*time.Second); !ok {
				t.Fatal("never became MASTER")
			}
			if _, err := l.client.ns.Run("ping", "-c1", "-W1", vipAddr); err == nil {
				t.Error("the VIP answers a ping although accept mode is off")
			}
			l.client.ns.MustRun("ping", "-c1", "-W2", l.a.ip)
			if out := l.a.ns.MustRun("nft", "list", "set", "inet", "govs_vrrp", "vips4"); !strings.Contains(out, vipAddr) {
				t.Errorf("VIP not in the drop set:\n%s", out)
			}
			p.term()
			p.wait(t)
			if out, _ := l.a.ns.Run("nft", "list", "tables"); strings.Contains(out, "govs_vrrp") {
				t.Errorf("nftables table left after SIGTERM: %s", out)
			}
		})
	}
}

// waitFor polls cond for up to 3 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
