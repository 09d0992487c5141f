package vrrpnet

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/vrrp"
)

// TestNetlinkAddr: a VIP's options reach the address govs adds, as ip addr
// (and keepalived) would add it.
func TestNetlinkAddr(t *testing.T) {
	zero, hour := uint32(0), uint32(3600)
	for _, c := range []struct {
		name             string
		vip              vrrp.VIP
		flags            int
		preferred, valid int
		brd, peer        string
	}{
		{name: "plain IPv4", vip: vrrp.VIP{Prefix: netip.MustParsePrefix("198.18.0.100/24")}},
		{name: "IPv6 is deprecated and skips DAD", vip: vrrp.VIP{Prefix: netip.MustParsePrefix("2001:db8::100/128")},
			flags: unix.IFA_F_NODAD, preferred: 0, valid: infiniteLifetime},
		{name: "brd and peer", vip: vrrp.VIP{Prefix: netip.MustParsePrefix("198.18.0.100/24"),
			Broadcast: netip.MustParseAddr("198.18.0.255"), Peer: netip.MustParseAddr("198.18.0.1")}, brd: "198.18.0.255", peer: "198.18.0.1/32"},
		{name: "flags", vip: vrrp.VIP{Prefix: netip.MustParsePrefix("2001:db8::100/64"),
			Flags: vrrp.AddrFlags{Home: true, ManageTempAddr: true, NoPrefixRoute: true, AutoJoin: true}},
			flags: unix.IFA_F_NODAD | unix.IFA_F_HOMEADDRESS | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MCAUTOJOIN, valid: infiniteLifetime},
		{name: "preferred_lft on IPv4", vip: vrrp.VIP{Prefix: netip.MustParsePrefix("198.18.0.100/32"), PreferredLft: &zero, Flags: vrrp.AddrFlags{NoDAD: true}},
			flags: unix.IFA_F_NODAD, preferred: 0, valid: infiniteLifetime},
		{name: "preferred_lft on IPv6", vip: vrrp.VIP{Prefix: netip.MustParsePrefix("2001:db8::100/128"), PreferredLft: &hour},
			flags: unix.IFA_F_NODAD, preferred: 3600, valid: infiniteLifetime},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := nlAddr(c.vip)
			if err != nil {
				t.Fatal(err)
			}
			if a.Flags != c.flags || a.PreferedLft != c.preferred || a.ValidLft != c.valid {
				t.Errorf("flags %#x preferred %d valid %d, want %#x %d %d", a.Flags, a.PreferedLft, a.ValidLft, c.flags, c.preferred, c.valid)
			}
			if got := ipString(a.Broadcast.String()); got != c.brd {
				t.Errorf("broadcast %q, want %q", got, c.brd)
			}
			peer := ""
			if a.Peer != nil {
				peer = a.Peer.String()
			}
			if peer != c.peer {
				t.Errorf("peer %q, want %q", peer, c.peer)
			}
		})
	}
}

func ipString(s string) string {
	if s == "<nil>" {
		return ""
	}
	return s
}
