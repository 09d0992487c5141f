package realserver

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCheckNAT(t *testing.T) {
	gw4, gw6 := netip.MustParseAddr("198.18.2.1"), netip.MustParseAddr("2001:db8:2::1")
	for _, tc := range []struct {
		name   string
		gws    []netip.Addr
		routes map[bool]Route
		ok     []bool
		hint   string
	}{
		{"via the director", []netip.Addr{gw4}, map[bool]Route{true: {Gateway: gw4, Dev: "eth0"}}, []bool{true}, ""},
		{"via the router", []netip.Addr{gw4}, map[bool]Route{true: {Gateway: netip.MustParseAddr("198.18.2.254"), Dev: "eth0"}}, []bool{false}, "ip route replace default via 198.18.2.1"},
		{"no default route", []netip.Addr{gw4}, nil, []bool{false}, "ip route replace default via 198.18.2.1"},
		{"both families, IPv6 wrong", []netip.Addr{gw4, gw6}, map[bool]Route{true: {Gateway: gw4}, false: {Dev: "eth0"}}, []bool{true, false}, "ip -6 route replace default via 2001:db8:2::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := CheckNAT(tc.gws, tc.routes)
			if len(items) != len(tc.ok) {
				t.Fatalf("items %+v", items)
			}
			for i, it := range items {
				if it.OK != tc.ok[i] {
					t.Errorf("item %+v: ok %v, want %v", it, it.OK, tc.ok[i])
				}
				if !it.OK && !strings.Contains(it.Want, tc.hint) {
					t.Errorf("item %+v does not say how: %q", it, tc.hint)
				}
			}
		})
	}
}
