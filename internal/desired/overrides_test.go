package desired

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/govs/govs/internal/config"
)

// TestOverrides: an operator's weight replaces the weight of a real server
// that is up, leaves a failed one at 0 and sorry servers alone; keys are
// found by address (any port) and virtual server, and a reload keeps the
// overrides of real servers still there.
func TestOverrides(t *testing.T) {
	src := `global_defs {
 govs_xdp_interface eth0
}
virtual_server 198.18.0.100 80 {
 lb_algo wrr
 lb_kind DR
 protocol TCP
 real_server 198.18.1.11 80 {
  weight 3
 }
 real_server 198.18.1.12 80 {
  weight 2
 }
}
virtual_server 198.18.0.100 443 {
 lb_algo wrr
 lb_kind DR
 protocol TCP
 real_server 198.18.1.11 443 {
  weight 1
 }
}
`
	cfg, diags := config.ParseString("t.conf", src, config.Options{})
	p := Build(cfg, diags, Options{})
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	rs := netip.MustParseAddr("198.18.1.11")
	all, err := p.Matching("", rs, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("matching %s everywhere: %v, %v", rs, all, err)
	}
	one, err := p.Matching("198.18.0.100:80", rs, 80)
	if err != nil || len(one) != 1 {
		t.Fatalf("matching in one virtual server: %v, %v", one, err)
	}
	if _, err := p.Matching("198.18.0.100:80", netip.MustParseAddr("198.18.1.99"), 0); err == nil {
		t.Error("an unknown real server matched")
	}
	o := Overrides{}
	for _, k := range all {
		o[k] = 0 // drain
	}
	// Real 2 failed its checks (weight 0 in its pool).
	pools := Pools{"198.18.0.100:80": {{Name: "198.18.1.11:80", Weight: 3}, {Name: "198.18.1.12:80", Weight: 0}}}
	o[WeightKey{"198.18.0.100:80", RealKey{netip.MustParseAddr("198.18.1.12"), 80}}] = 7
	got := p.Apply(pools, o)
	want := Pools{
		"198.18.0.100:80":  {{Name: "198.18.1.11:80", Weight: 0}, {Name: "198.18.1.12:80", Weight: 0}},
		"198.18.0.100:443": {{Name: "198.18.1.11:443", Weight: 0}},
	}
	for pool, ds := range want {
		if !slices.Equal(got[pool], ds) {
			t.Errorf("pool %s: %v, want %v", pool, got[pool], ds)
		}
	}
	if pools["198.18.0.100:80"][0].Weight != 3 {
		t.Error("Apply changed its input")
	}
	// A reload without the 443 service keeps only the overrides that
	// still name a real server.
	cfg2, diags2 := config.ParseString("t.conf", src[:strings.Index(src, "virtual_server 198.18.0.100 443")], config.Options{})
	kept := Build(cfg2, diags2, Options{}).Keep(o)
	if len(kept) != 2 {
		t.Errorf("kept %v, want the two overrides of the :80 service", kept)
	}
}
