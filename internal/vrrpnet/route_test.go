package vrrpnet_test

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// keepalivedRoutes lists the routes of every table with keepalived's
// origin (18), one normalised line each (ip leaves the filtered-on proto
// out).
func keepalivedRoutes(t *testing.T, h host) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		for line := range strings.Lines(h.ns.MustRun("ip", fam, "-o", "route", "show", "table", "all", "proto", "18")) {
			// -o folds a multipath route's next hops onto one line with "\".
			f := slices.DeleteFunc(strings.Fields(line), func(w string) bool { return w == `\` })
			if line = strings.Join(f, " "); line != "" {
				out = append(out, line)
			}
		}
	}
	slices.Sort(out)
	return out
}

// keepalivedRules lists the policy rules with keepalived's origin.
func keepalivedRules(t *testing.T, h host) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		for line := range strings.Lines(h.ns.MustRun("ip", fam, "rule", "show")) {
			if line = strings.Join(strings.Fields(line), " "); strings.HasSuffix(line, " proto keepalived") {
				out = append(out, line)
			}
		}
	}
	slices.Sort(out)
	return out
}

func waitRules(t *testing.T, h host, want []string) {
	t.Helper()
	var got []string
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got = keepalivedRules(t, h); slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("rules with keepalived's origin:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

func waitRoutes(t *testing.T, h host, want []string) {
	t.Helper()
	var got []string
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got = keepalivedRoutes(t, h); slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("routes with keepalived's origin:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// TestPrivilegedVirtualRoutesFollowMaster: an instance's virtual_routes
// are in the kernel, as keepalived puts them, exactly while it is MASTER:
// a gateway route, one from the VIP as source (added after the VIP), a
// multipath one ("via A or B"), a blackhole in another table and an
// IPv6 device route; and its virtual_rules, with keepalived's origin too;
// stepping down and stopping remove them.
func TestPrivilegedVirtualRoutesFollowMaster(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: p(vipAddr + "/24")}},
		Routes: []vrrp.Route{
			{Dst: p("203.0.113.0/26"), Via: []netip.Addr{a(l.b.ip)}},
			{Dst: p("203.0.113.64/26"), Src: a(vipAddr), Dev: "eth0"},
			{Dst: p("203.0.113.128/26"), Via: []netip.Addr{a(l.b.ip), a(l.client.ip)}, Metric: 5},
			{Type: "blackhole", Dst: p("203.0.113.200/32"), Table: 100},
			{Dst: p("2001:db8:7::/48"), Dev: "eth0"},
		},
		Rules: []vrrp.Rule{
			{From: p(vipAddr + "/32"), Table: 100, Priority: 1000},
			{Invert: true, Fwmark: 7, FwmarkMask: 0xff, IIF: "eth0", Priority: 1001, Action: "prohibit"},
			{To: p("2001:db8:9::/48"), Table: 101, Priority: 1002},
		}}
	wantRules := []string{
		"1000: from " + vipAddr + " lookup 100 proto keepalived",
		"1001: not from all fwmark 0x7/0xff iif eth0 prohibit proto keepalived",
		"1002: from all to 2001:db8:9::/48 lookup 101 proto keepalived",
	}
	want := []string{
		"2001:db8:7::/48 dev eth0 metric 1024 pref medium",
		"203.0.113.0/26 via 198.18.0.12 dev eth0",
		"203.0.113.128/26 metric 5 nexthop via 198.18.0.12 dev eth0 weight 1 nexthop via 198.18.0.20 dev eth0 weight 1",
		"203.0.113.64/26 dev eth0 scope link src " + vipAddr,
		"blackhole 203.0.113.200 table 100",
	}
	changes := make(chan vrrpnet.StateChange, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{
				Logger: slog.New(slog.DiscardHandler), OnState: func(c vrrpnet.StateChange) { changes <- c }})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitState := func(to vrrp.State) {
		t.Helper()
		for {
			select {
			case c := <-changes:
				if c.New == to {
					return
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("no state change to %v", to)
			}
		}
	}
	waitState(vrrp.StateMaster)
	waitRoutes(t, l.a, want)
	waitRules(t, l.a, wantRules)

	// A higher-priority peer: BACKUP, and the routes go with the VIP.
	peer := side{version: 3, interval: 100 * time.Millisecond, vrid: 51, prio: 200}.run(t, l.b, l.a)
	waitState(vrrp.StateBackup)
	waitRoutes(t, l.a, nil)
	waitRules(t, l.a, nil)
	// It goes: MASTER again, the routes back.
	peer.kill()
	waitState(vrrp.StateMaster)
	waitRoutes(t, l.a, want)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil
	waitRoutes(t, l.a, nil)
	waitRules(t, l.a, nil)
}

// TestPrivilegedStaticAddressesAndRoutes: the kernel side of
// static_ipaddress, static_routes and static_rules. What is there already is reported
// as not added, so the director leaves it at its stop.
func TestPrivilegedStaticAddressesAndRoutes(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNS(t, "st")
	peer := netnstest.NewNS(t, "sp")
	netnstest.Veth(t, ns, "eth0", peer, "eth0")
	ns.Addr("eth0", "198.18.5.1/24")
	addr := vrrp.VIP{Prefix: netip.MustParsePrefix("198.18.6.1/24"), Dev: "eth0"}
	route := vrrp.Route{Dst: netip.MustParsePrefix("203.0.113.0/24"), Src: addr.Prefix.Addr(), Via: []netip.Addr{netip.MustParseAddr("198.18.5.2")}, Table: 7}
	rule := vrrp.Rule{From: netip.MustParsePrefix("198.18.6.0/24"), Table: 7, Priority: 500}
	err := ns.Do(func() error {
		for i, wantAdded := range []bool{true, false} {
			added, err := vrrpnet.AddAddress(addr)
			if err != nil || added != wantAdded {
				t.Errorf("AddAddress #%d = %v, %v; want %v", i+1, added, err, wantAdded)
			}
			added, err = vrrpnet.AddRoute(route)
			if err != nil || added != wantAdded {
				t.Errorf("AddRoute #%d = %v, %v; want %v", i+1, added, err, wantAdded)
			}
			added, err = vrrpnet.AddRule(rule)
			if err != nil || added != wantAdded {
				t.Errorf("AddRule #%d = %v, %v; want %v", i+1, added, err, wantAdded)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.MustRun("ip", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(got, "inet 198.18.6.1/24") {
		t.Errorf("address not set:\n%s", got)
	}
	h := host{ns: ns}
	waitRoutes(t, h, []string{"203.0.113.0/24 via 198.18.5.2 dev eth0 table 7 src 198.18.6.1"})
	waitRules(t, h, []string{"500: from 198.18.6.0/24 lookup 7 proto keepalived"})
	err = ns.Do(func() error {
		for range 2 { // removing what is gone is no error
			if err := vrrpnet.RemoveRule(rule); err != nil {
				t.Errorf("RemoveRule: %v", err)
			}
			if err := vrrpnet.RemoveRoute(route); err != nil {
				t.Errorf("RemoveRoute: %v", err)
			}
			if err := vrrpnet.RemoveAddress(addr); err != nil {
				t.Errorf("RemoveAddress: %v", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	waitRoutes(t, h, nil)
	waitRules(t, h, nil)
	if got := ns.MustRun("ip", "-o", "addr", "show", "dev", "eth0"); strings.Contains(got, "198.18.6.1") {
		t.Errorf("address left:\n%s", got)
	}
}
