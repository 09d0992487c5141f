package vipfilter

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedDropsTrafficToVIPs: in a namespace holding VIPs, packets to
// a dropped VIP no longer arrive while the host's own address still
// answers; neighbour discovery for an IPv6 VIP still works; accepting
// again restores it, and Close removes the table.
func TestPrivilegedDropsTrafficToVIPs(t *testing.T) {
	netnstest.RequireRoot(t)
	dir, peer := netnstest.NewNS(t, "vf"), netnstest.NewNS(t, "vp")
	netnstest.Veth(t, dir, "eth0", peer, "eth0")
	dir.Sysctl("net.ipv6.conf.eth0.accept_dad", "0")
	peer.Sysctl("net.ipv6.conf.eth0.accept_dad", "0")
	dir.Addr("eth0", "198.18.0.2/24")
	peer.Addr("eth0", "198.18.0.3/24")
	dir.MustRun("ip", "addr", "add", "198.18.0.100/32", "dev", "eth0")
	dir.MustRun("ip", "-6", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
	dir.MustRun("ip", "-6", "addr", "add", "2001:db8::100/128", "dev", "eth0", "nodad")
	peer.MustRun("ip", "-6", "addr", "add", "2001:db8::3/64", "dev", "eth0", "nodad")
	peer.MustRun("ip", "route", "add", "198.18.0.100/32", "dev", "eth0")
	vip4, vip6 := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:db8::100")
	ping := func(addr string) bool {
		_, err := peer.Run("ping", "-c1", "-W1", addr)
		return err == nil
	}
	for _, a := range []string{"198.18.0.100", "2001:db8::100"} {
		if !ping(a) {
			t.Fatalf("%s does not answer before any rule", a)
		}
	}
	var f *Filter
	in := func(fn func() error) {
		t.Helper()
		if err := dir.Do(fn); err != nil {
			t.Fatal(err)
		}
	}
	in(func() (err error) { f, err = Open(); return err })
	in(func() error { return f.Drop([]netip.Addr{vip4, vip6}) })
	peer.MustRun("ip", "-6", "neigh", "flush", "dev", "eth0")
	for _, a := range []string{"198.18.0.100", "2001:db8::100"} {
		if ping(a) {
			t.Errorf("%s answers while dropped", a)
		}
	}
	if !ping("198.18.0.2") || !ping("2001:db8::2") {
		t.Error("the host's own addresses stopped answering")
	}
	if out := peer.MustRun("ip", "-6", "neigh", "show", "2001:db8::100"); !strings.Contains(out, "lladdr") {
		t.Errorf("neighbour discovery for the dropped IPv6 VIP failed: %q", out)
	}
	in(func() error { return f.Accept([]netip.Addr{vip4, vip6, netip.MustParseAddr("198.18.0.200")}) })
	for _, a := range []string{"198.18.0.100", "2001:db8::100"} {
		if !ping(a) {
			t.Errorf("%s does not answer once accepted again", a)
		}
	}
	// A second Open (a restarted govs) starts from a clean table.
	in(func() error { return f.Drop([]netip.Addr{vip4}) })
	in(func() (err error) { f, err = Open(); return err })
	if !ping("198.18.0.100") {
		t.Error("a new filter kept the old one's addresses")
	}
	in(f.Close)
	if out, _ := dir.Run("nft", "list", "tables"); strings.Contains(out, Table) {
		t.Errorf("table left after Close: %s", out)
	}
}
