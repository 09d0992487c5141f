package config

import (
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/vrrp"
)

func TestRoutes(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	runCases(t, []caseT{
		{
			name: "keepalived's forms",
			src: inst(` virtual_routes {
  src 192.168.100.1 to 192.168.109.0/24 via 192.168.200.254 dev eth1
  192.168.110.7/24 gw 192.168.200.254 metric 5 table 100 proto static
  192.168.113.0/24 via 192.168.100.252 or 192.168.100.253 onlink
  blackhole 192.168.113.1/32 table main
  2001:db8:5::/48 dev eth0 scope link no_track
 }`),
			check: func(t *testing.T, c *Config) {
				eq(t, "Routes", c.Instance("VI_1").Routes, []Route{
					{Route: vrrp.Route{Dst: p("192.168.109.0/24"), Src: a("192.168.100.1"), Via: []netip.Addr{a("192.168.200.254")}, Dev: "eth1"}, Pos: at(5)},
					{Route: vrrp.Route{Dst: p("192.168.110.0/24"), Via: []netip.Addr{a("192.168.200.254")}, Metric: 5, Table: 100, Protocol: 4}, Pos: at(6)},
					{Route: vrrp.Route{Dst: p("192.168.113.0/24"), Via: []netip.Addr{a("192.168.100.252"), a("192.168.100.253")}, OnLink: true}, Pos: at(7)},
					{Route: vrrp.Route{Type: "blackhole", Dst: p("192.168.113.1/32"), Table: 254}, Pos: at(8)},
					{Route: vrrp.Route{Dst: p("2001:db8:5::/48"), Dev: "eth0", Scope: "link"}, Pos: at(9)},
				})
			},
		},
		{
			name: "static routes and addresses",
			src:  "static_ipaddress {\n 198.18.0.200/24 dev eth0 scope link\n}\nstatic_routes {\n 203.0.113.0/24 via 198.18.0.1\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "StaticAddresses", c.StaticAddresses, []VIP{{Prefix: p("198.18.0.200/24"), Dev: "eth0", Scope: "link", Pos: at(2)}})
				eq(t, "StaticRoutes", c.StaticRoutes, []Route{{Route: vrrp.Route{Dst: p("203.0.113.0/24"), Via: []netip.Addr{a("198.18.0.1")}}, Pos: at(5)}})
			},
		},
		{
			name: "what govs does not carry out, and bad values, at their lines",
			src: inst(` virtual_routes {
  192.168.110.0/24 via 192.168.200.254 mtu 1400
  192.168.111.0/24 or 192.168.200.254
  192.168.112.0/24 via 192.168.200.
  192.168.113.0/24 dev eth0 table mine
  192.168.114.0/24 dev eth0 scope galaxy
  via 192.168.200.254
  192.168.115.0/24 dev
 }`),
			diags: []string{
				"t.conf:5: virtual_routes: 'mtu' is not implemented by govs (it carries out type, src, to, via/gw/or, dev, scope, table, metric, proto, onlink, no_track)",
				"t.conf:6: virtual_routes: 'or' adds a gateway after 'via'",
				"t.conf:7: virtual_routes: invalid gateway '192.168.200.'",
				"t.conf:8: virtual_routes: invalid table 'mine' (want main, local, default or 1-4294967295)",
				"t.conf:9: virtual_routes: invalid scope 'galaxy' (want site|link|host|nowhere|global)",
				"t.conf:10: virtual_routes: no destination prefix",
				"t.conf:11: virtual_routes: 'dev' needs a value",
			},
			check: func(t *testing.T, c *Config) {
				eq(t, "Routes", len(c.Instance("VI_1").Routes), 0)
			},
		},
	})
}

func TestRules(t *testing.T) {
	p := netip.MustParsePrefix
	runCases(t, []caseT{
		{
			name: "keepalived's forms",
			src: inst(` virtual_rules {
  from 192.168.200.0/24 table 2
  to 192.168.201.7/24 lookup main priority 100
  not from all fwmark 0x10/0xff iif eth0 oif eth1 pref 200 prohibit
  from 2001:db8::/32 table 7 no_track
 }`),
			check: func(t *testing.T, c *Config) {
				eq(t, "Rules", c.Instance("VI_1").Rules, []Rule{
					{Rule: vrrp.Rule{From: p("192.168.200.0/24"), Table: 2}, Pos: at(5)},
					{Rule: vrrp.Rule{To: p("192.168.201.0/24"), Table: 254, Priority: 100}, Pos: at(6)},
					{Rule: vrrp.Rule{Invert: true, Fwmark: 16, FwmarkMask: 255, IIF: "eth0", OIF: "eth1", Priority: 200, Action: "prohibit"}, Pos: at(7)},
					{Rule: vrrp.Rule{From: p("2001:db8::/32"), Table: 7}, Pos: at(8)},
				})
			},
		},
		{
			name: "static rules",
			src:  "static_rules {\n from 198.18.0.200 table 100\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "StaticRules", c.StaticRules, []Rule{{Rule: vrrp.Rule{From: p("198.18.0.200/32"), Table: 100}, Pos: at(2)}})
			},
		},
		{
			name: "what govs does not carry out, and bad values, at their lines",
			src: inst(` virtual_rules {
  from 192.168.200.0/24 tos 0x10 table 2
  to 192.168.200./24 table 2
  from all fwmark x table 2
  from all table
 }`),
			diags: []string{
				"t.conf:5: virtual_rules: 'tos' is not implemented by govs (it carries out not, from, to, fwmark, iif, oif, priority, table/lookup, blackhole, unreachable, prohibit, no_track)",
				"t.conf:6: virtual_rules: invalid to prefix '192.168.200./24'",
				"t.conf:7: virtual_rules: invalid fwmark 'x'",
				"t.conf:8: virtual_rules: 'table' needs a value",
			},
		},
	})
}
