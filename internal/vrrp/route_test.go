package vrrp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRouteValidate(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		name    string
		r       Route
		wantErr string
		str     string
	}{
		{"gateway", Route{Dst: p("203.0.113.0/24"), Via: []netip.Addr{a("198.18.0.1")}}, "", "203.0.113.0/24 via 198.18.0.1"},
		{"multipath, every option", Route{Dst: p("203.0.113.0/24"), Src: a("198.18.0.2"), Via: []netip.Addr{a("198.18.0.1"), a("198.18.0.3")}, OnLink: true,
			Dev: "eth0", Scope: "link", Table: 100, Metric: 7, Protocol: 4}, "",
			"203.0.113.0/24 src 198.18.0.2 via 198.18.0.1 or 198.18.0.3 onlink dev eth0 scope link table 100 metric 7 proto 4"},
		{"device only", Route{Dst: p("2001:db8:1::/48"), Dev: "eth0"}, "", "2001:db8:1::/48 dev eth0"},
		{"blackhole", Route{Type: "blackhole", Dst: p("203.0.113.1/32")}, "", "blackhole 203.0.113.1/32"},
		{"no destination", Route{Dev: "eth0"}, "no destination", ""},
		{"nowhere to go", Route{Dst: p("203.0.113.0/24")}, "give a gateway", ""},
		{"gateway of another family", Route{Dst: p("203.0.113.0/24"), Via: []netip.Addr{a("2001:db8::1")}}, "not of the family", ""},
		{"src of another family", Route{Dst: p("2001:db8:1::/48"), Dev: "eth0", Src: a("198.18.0.2")}, "not of the family", ""},
		{"blackhole with a gateway", Route{Type: "blackhole", Dst: p("203.0.113.0/24"), Via: []netip.Addr{a("198.18.0.1")}}, "has no gateway", ""},
		{"onlink without a gateway", Route{Dst: p("203.0.113.0/24"), Dev: "eth0", OnLink: true}, "onlink needs a gateway", ""},
		{"unknown type", Route{Type: "nat", Dst: p("203.0.113.0/24")}, "route type", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if tt.str != "" && tt.r.String() != tt.str {
				t.Errorf("String() = %q, want %q", tt.r.String(), tt.str)
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tt := range []struct {
		name    string
		r       Rule
		wantErr string
		str     string
	}{
		{"lookup", Rule{From: p("198.18.0.0/24"), Table: 100}, "", "from 198.18.0.0/24 table 100"},
		{"everything", Rule{Invert: true, To: p("203.0.113.0/24"), Fwmark: 1, FwmarkMask: 255, IIF: "eth0", OIF: "eth1", Priority: 9, Action: "blackhole"}, "",
			"not from all to 203.0.113.0/24 fwmark 1/255 iif eth0 oif eth1 priority 9 blackhole"},
		{"no table, no action", Rule{From: p("198.18.0.0/24")}, "no table", ""},
		{"action with a table", Rule{Action: "prohibit", Table: 3}, "has no table", ""},
		{"two families", Rule{From: p("198.18.0.0/24"), To: p("2001:db8::/32"), Table: 3}, "two families", ""},
		{"unknown action", Rule{Action: "goto", Table: 3}, "rule action", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate()
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.wantErr)
			}
			if tt.str != "" && tt.r.String() != tt.str {
				t.Errorf("String() = %q, want %q", tt.r.String(), tt.str)
			}
		})
	}
}
