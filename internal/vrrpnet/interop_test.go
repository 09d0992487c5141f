package vrrpnet_test

import (
	"github.com/govs/govs/internal/netnstest"
	"strings"
	"testing"
	"time"
)

// failover starts master on a and backup on b, checks the client reaches the
// VIP at a's MAC, stops a (hard or gracefully) and measures b's takeover
// against limit (0: 3 × advert_int + skew + 10 % after a kill, skew + 0.5 s
// after SIGTERM).
func failover(t *testing.T, master, backup side, hard bool, limit time.Duration) time.Duration {
	l := newLab(t)
	pm := master.run(t, l.a, l.b)
	if _, ok := waitVIP(t, l.a, true, 8*time.Second); !ok {
		t.Fatal("master never took the VIP")
	}
	backup.run(t, l.b, l.a)
	// A backup that hears no adverts (another group, address or VRID)
	// takes over after its Master_Down_Interval: outlast that, so the
	// backup is known to hear the master.
	if _, ok := waitVIP(t, l.b, true, 3*backup.interval+backup.skew()+700*time.Millisecond); ok {
		t.Fatal("backup took the VIP while the master runs: it does not hear the master's adverts")
	}
	if master.ipv6 {
		l.client.ns.MustRun("ping", "-6", "-c1", "-W2", vip6Addr)
		// As keepalived does, the VIP is deprecated on the master, so the
		// director's own connections (health checks) leave from its own
		// address: from the VIP, replies would go to whoever holds it.
		if addr := l.a.ns.MustRun("ip", "-6", "addr", "show", "dev", "eth0", "to", vip6Addr+"/128"); !master.keepalived && !strings.Contains(addr, "deprecated") {
			t.Errorf("IPv6 VIP on the master is not deprecated:\n%s", addr)
		}
		if route := l.a.ns.MustRun("ip", "-6", "route", "get", l.client.ip6); !master.keepalived && !strings.Contains(route, "src "+l.a.ip6+" ") {
			t.Errorf("the master's own traffic to %s leaves from: %s (want src %s)", l.client.ip6, route, l.a.ip6)
		}
	} else {
		l.client.ns.MustRun("ping", "-c1", "-W2", vipAddr)
	}
	if mac := clientNeighMAC(t, l); mac != l.a.mac {
		t.Fatalf("client resolves the VIP to %q, want master %s", mac, l.a.mac)
	}
	stopAt := time.Now()
	if hard {
		pm.kill()
	} else {
		pm.term()
	}
	switch {
	case limit > 0:
	case hard:
		limit = time.Duration(float64(3*backup.interval+backup.skew()) * 1.1)
	default:
		limit = backup.skew() + 500*time.Millisecond
	}
	at, ok := waitVIP(t, l.b, true, limit+2*time.Second)
	if !ok {
		t.Fatalf("backup did not take the VIP within %v", limit+2*time.Second)
	}
	took := at.Sub(stopAt)
	t.Logf("takeover after %v (limit %v)", took, limit)
	if took > limit {
		t.Errorf("takeover took %v, limit %v", took, limit)
	}
	if !hard {
		pm.wait(t)
	}
	if !hard && hasVIP(t, l.a) {
		t.Errorf("stopped master kept the VIP")
	}
	// The new master's gratuitous ARPs must move the client's entry.
	end := time.Now().Add(2 * time.Second)
	for clientNeighMAC(t, l) != l.b.mac && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	if mac := clientNeighMAC(t, l); mac != l.b.mac {
		t.Errorf("client's ARP entry for the VIP is %q, want new master %s (no gratuitous ARP?)", mac, l.b.mac)
	}
	return took
}

func TestPrivilegedInteropKeepalived(t *testing.T) {
	netnstest.RequireRoot(t)
	requireKeepalived(t)
	v2 := side{version: 2, interval: time.Second, pass: "s3cret", vrid: 51}
	v3 := side{version: 3, interval: time.Second, vrid: 51}
	v6 := side{version: 3, interval: time.Second, vrid: 51, ipv6: true}
	type tc struct {
		name       string
		base       side
		unicast    bool
		govsMaster bool
		hard       bool
	}
	var cases []tc
	for _, v := range []struct {
		name string
		s    side
	}{{"v2-pass", v2}, {"v3", v3}} {
		for _, uni := range []bool{false, true} {
			for _, gm := range []bool{true, false} {
				mode := "multicast"
				if uni {
					mode = "unicast"
				}
				who := "govs-master"
				if !gm {
					who = "keepalived-master"
				}
				cases = append(cases, tc{name: v.name + "/" + mode + "/" + who + "/kill", base: v.s, unicast: uni, govsMaster: gm, hard: true})
			}
		}
	}
	cases = append(cases,
		tc{name: "v2-pass/multicast/govs-master/sigterm", base: v2, govsMaster: true},
		tc{name: "v3/unicast/keepalived-master/sigterm", base: v3, unicast: true},
		tc{name: "v3-ipv6/multicast/govs-master/kill", base: v6, govsMaster: true, hard: true},
		tc{name: "v3-ipv6/multicast/keepalived-master/kill", base: v6, hard: true},
		// A custom group: a speaker that kept the IANA one would hear
		// nothing and both would be MASTER.
		tc{name: "v2-pass/group-224.0.0.19/govs-master/kill", base: withGroup(v2, "224.0.0.19"), govsMaster: true, hard: true},
		tc{name: "v2-pass/group-224.0.0.19/keepalived-master/kill", base: withGroup(v2, "224.0.0.19"), hard: true},
		tc{name: "v3-ipv6/group-ff02::13/govs-master/kill", base: withGroup(v6, "ff02::13"), govsMaster: true, hard: true},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, b := c.base, c.base
			m.unicast, b.unicast = c.unicast, c.unicast
			m.prio, m.master = 150, true
			b.prio = 100
			m.keepalived, b.keepalived = !c.govsMaster, c.govsMaster
			failover(t, m, b, c.hard, 0)
		})
	}
}

func withGroup(s side, group string) side {
	s.mcastGroup = group
	return s
}

// Two govs directors with advert_int 0.1 s (VRRPv3) fail over in under 0.4 s
// after a hard kill: at most 3 × 100 ms + skew (22 ms at priority 200) after
// the last advert, plus the time to add the VIP.
func TestPrivilegedGovsFastFailover(t *testing.T) {
	netnstest.RequireRoot(t)
	m := side{version: 3, interval: 100 * time.Millisecond, vrid: 51, prio: 250, master: true}
	b := side{version: 3, interval: 100 * time.Millisecond, vrid: 51, prio: 200}
	failover(t, m, b, true, 400*time.Millisecond)
}

// Instances that disagree on password, version or VRID ignore each other as
// keepalived does (both end up MASTER) and govs logs why.
func TestPrivilegedMismatchIgnored(t *testing.T) {
	netnstest.RequireRoot(t)
	requireKeepalived(t)
	tests := []struct {
		name     string
		govs, ka side
		wantLog  string
	}{
		{"password", side{version: 2, interval: time.Second, pass: "s3cret", vrid: 51, prio: 100},
			side{keepalived: true, version: 2, interval: time.Second, pass: "other", vrid: 51, prio: 150}, `reason="invalid password"`},
		{"version", side{version: 3, interval: time.Second, vrid: 51, prio: 100},
			side{keepalived: true, version: 2, interval: time.Second, vrid: 51, prio: 150}, `reason="wrong VRRP version"`},
		{"vrid", side{version: 2, interval: time.Second, vrid: 51, prio: 100},
			side{keepalived: true, version: 2, interval: time.Second, vrid: 52, prio: 150}, `reason="advert for another virtual router id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			ka := tt.ka.run(t, l.b, l.a)
			g := tt.govs.run(t, l.a, l.b)
			// The lower-priority govs would stay BACKUP if it accepted the adverts.
			if _, ok := waitVIP(t, l.b, true, 6*time.Second); !ok {
				t.Fatal("keepalived never became MASTER")
			}
			if _, ok := waitVIP(t, l.a, true, 6*time.Second); !ok {
				t.Fatal("govs did not become MASTER: it did not ignore the mismatched adverts")
			}
			time.Sleep(1500 * time.Millisecond)
			if !hasVIP(t, l.a) || !hasVIP(t, l.b) {
				t.Fatalf("both must stay MASTER: govs %v keepalived %v", hasVIP(t, l.a), hasVIP(t, l.b))
			}
			if out := g.out.String(); !strings.Contains(out, tt.wantLog) {
				t.Errorf("govs log lacks %s:\n%s", tt.wantLog, out)
			}
			_ = ka
		})
	}
}
