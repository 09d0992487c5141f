package desired

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

func TestVRRPPlan(t *testing.T) {
	const src = `
global_defs { vrrp_garp_master_delay 0 }
vrrp_script chk_web {
    script "/usr/bin/pidof nginx"
    interval 2
    weight -30
    fall 2
    rise 3
    init_fail
}
vrrp_script chk_up {
    script "/bin/true"
}
vrrp_sync_group G1 {
    group {
        VI_1
        VI_6
    }
    track_interface {
        eth9
    }
    notify "/etc/g.sh"
    sync_group_tracking_weight
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    preempt_delay 7
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    unicast_src_ip 198.18.0.11
    unicast_peer {
        198.18.0.12
    }
    virtual_ipaddress {
        198.18.0.100/24 dev eth1 scope link label eth1:vip
        198.18.0.101
    }
    virtual_ipaddress_excluded {
        2001:db8::100/64
    }
    track_interface {
        eth2 weight -20
    }
    track_script {
        chk_web
        chk_up weight 5
    }
    notify_master "/etc/m.sh"
    notify "/etc/n.sh"
    garp_master_repeat 3
}
vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 52
    advert_int 0.1
    version 3
    virtual_ipaddress {
        2001:db8::200
    }
}
`
	cfg, diags := config.ParseString("test.conf", src, config.Options{})
	if errs := diags.Errors(); len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	plan := Build(cfg, diags, Options{NoDataplane: true})
	insts, groups, scripts := plan.VRRP.Instances, plan.VRRP.SyncGroups, plan.VRRP.Scripts
	got := struct {
		Instances  []vrrp.InstanceConfig
		SyncGroups []vrrp.SyncGroup
		Scripts    []vrrp.TrackScript
	}{insts, groups, scripts}
	if len(got.Instances) != 2 || len(got.SyncGroups) != 1 || len(got.Scripts) != 2 {
		t.Fatalf("mapped %d instances, %d groups, %d scripts", len(got.Instances), len(got.SyncGroups), len(got.Scripts))
	}
	v1, v6 := got.Instances[0], got.Instances[1]
	checks := []struct {
		name string
		ok   bool
	}{
		{"name/interface/vrid/priority", v1.Name == "VI_1" && v1.Interface == "eth0" && v1.VRID == 51 && v1.Priority == 150},
		{"interval/version", v1.Interval == time.Second && v1.Version == 2 && !v1.IPv6},
		{"state MASTER", v1.InitialMaster},
		{"nopreempt/preempt_delay", v1.NoPreempt && v1.PreemptDelay == 7*time.Second},
		{"auth PASS", v1.AuthPass == "s3cret"},
		{"unicast", v1.UnicastSrc == netip.MustParseAddr("198.18.0.11") && len(v1.UnicastPeers) == 1 && v1.UnicastPeers[0] == netip.MustParseAddr("198.18.0.12")},
		{"VIP with dev/scope/label", len(v1.VIPs) == 2 && v1.VIPs[0] == vrrp.VIP{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Dev: "eth1", Scope: "link", Label: "eth1:vip"}},
		{"VIP default /32", v1.VIPs[1].Prefix == netip.MustParsePrefix("198.18.0.101/32")},
		{"excluded VIP", len(v1.ExcludedVIPs) == 1 && v1.ExcludedVIPs[0].Prefix == netip.MustParsePrefix("2001:db8::100/64")},
		{"track_interface + group's", len(v1.TrackInterfaces) == 2 && v1.TrackInterfaces[0] == vrrp.Track{Name: "eth2", Weight: -20} && v1.TrackInterfaces[1] == vrrp.Track{Name: "eth9"}},
		{"track_script weights", len(v1.TrackScripts) == 2 && v1.TrackScripts[0] == vrrp.Track{Name: "chk_web", Weight: -30} && v1.TrackScripts[1] == vrrp.Track{Name: "chk_up", Weight: 5}},
		{"notify", v1.Notify.Master == "/etc/m.sh" && v1.Notify.Any == "/etc/n.sh"},
		{"garp: repeat, no second burst", v1.GARP.MasterRepeat == 3 && v1.GARP.MasterDelay < 0},
		{"sync group", v1.SyncGroup == "G1" && got.SyncGroups[0].Notify.Any == "/etc/g.sh" && len(got.SyncGroups[0].Instances) == 2},
		{"script", got.Scripts[0] == vrrp.TrackScript{Name: "chk_web", Command: "/usr/bin/pidof nginx", Interval: 2 * time.Second, Timeout: got.Scripts[0].Timeout, Rise: 3, Fall: 2, Weight: -30, InitFail: true}},
		{"IANA multicast groups", v1.McastGroup == vrrp.MulticastIPv4 && v6.McastGroup == vrrp.MulticastIPv6},
		{"IPv6 v3 instance", v6.IPv6 && v6.Version == 3 && v6.Interval == 100*time.Millisecond && v6.Priority == 100},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: wrong mapping\nVI_1: %+v\nVI_6: %+v", c.name, v1, v6)
		}
	}
	for _, in := range got.Instances {
		if err := in.WithDefaults().Validate(); err != nil {
			t.Errorf("mapped instance does not validate: %v", err)
		}
	}
}

// The scenario's director configuration maps onto one valid instance.
func TestVRRPPlanSeed(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "fixtures", "seed-keepalived.conf")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("shared fixtures not found: %v", err)
	}
	cfg, diags := config.ParseFile(path, config.Options{})
	if errs := diags.Errors(); len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	insts := Build(cfg, diags, Options{}).VRRP.Instances
	if len(insts) != 1 {
		t.Fatalf("%d instances", len(insts))
	}
	in := insts[0]
	if in.AuthPass != "33210" || in.VRID != 51 || in.SyncGroup != "VG1" || in.VIPs[0].Prefix.String() != "192.168.1.169/32" {
		t.Fatalf("mapped %+v", in)
	}
	if err := in.WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

// A track_script entry's reverse is the entry's when it sets a weight, else
// the script's, and is applied once: keepalived 2.2's rule.
func TestVRRPTrackScriptReverse(t *testing.T) {
	const src = `
vrrp_script rev {
    script "/bin/true"
    weight -10 reverse
}
vrrp_script fwd {
    script "/bin/true"
    weight -10
}
vrrp_script rev2 {
    script "/bin/true"
    weight -10 reverse
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 198.18.0.100 }
    track_script {
        rev
        fwd weight -20 reverse
        rev2 weight 5
    }
}
`
	cfg, diags := config.ParseString("test.conf", src, config.Options{})
	plan := Build(cfg, diags, Options{})
	if !plan.OK() {
		t.Fatal(plan.Err())
	}
	want := []vrrp.Track{{Name: "rev", Weight: -10, Reverse: true}, {Name: "fwd", Weight: -20, Reverse: true}, {Name: "rev2", Weight: 5}}
	got := plan.VRRP.Instances[0].TrackScripts
	if len(got) != len(want) {
		t.Fatalf("tracks %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("track %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Custom multicast groups reach the instances: the global ones per family,
// and an instance's mcast_dst_ip over them.
func TestVRRPMulticastGroups(t *testing.T) {
	const src = `
global_defs {
    vrrp_mcast_group4 224.0.0.19
    vrrp_mcast_group6 ff02::13
}
vrrp_instance V4 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 198.18.0.100 }
}
vrrp_instance V6 {
    interface eth0
    virtual_router_id 52
    version 3
    virtual_ipaddress { 2001:db8::100 }
}
vrrp_instance OWN {
    interface eth0
    virtual_router_id 53
    mcast_dst_ip 224.0.0.20
    virtual_ipaddress { 198.18.0.101 }
}
`
	cfg, diags := config.ParseString("test.conf", src, config.Options{})
	plan := Build(cfg, diags, Options{})
	if !plan.OK() {
		t.Fatal(plan.Err())
	}
	for i, want := range []string{"224.0.0.19", "ff02::13", "224.0.0.20"} {
		if got := plan.VRRP.Instances[i].McastGroup; got != netip.MustParseAddr(want) {
			t.Errorf("%s: group %v, want %s", plan.VRRP.Instances[i].Name, got, want)
		}
	}
}

// TestRoutesPlanned: virtual_routes go with their instance, static_ipaddress
// and static_routes into the plan's Static; what cannot mean what it says
// is an error at its line and left out.
func TestRoutesPlanned(t *testing.T) {
	const inst = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  198.18.0.100/24\n }\n virtual_routes {\n%s }\n}\n"
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	pl := plan(t, fmt.Sprintf(inst, "  203.0.113.0/24 via 198.18.0.1\n  blackhole 203.0.113.200/32\n")+
		"static_ipaddress {\n 198.18.0.200/24 dev eth0\n}\nstatic_routes {\n 198.51.100.0/24 dev eth0\n}\nstatic_rules {\n from 198.18.0.200 table 9\n}\n")
	if got, want := pl.VRRP.Instances[0].Routes, []vrrp.Route{{Dst: p("203.0.113.0/24"), Via: []netip.Addr{a("198.18.0.1")}},
		{Type: "blackhole", Dst: p("203.0.113.200/32")}}; !reflect.DeepEqual(got, want) {
		t.Errorf("instance routes %+v, want %+v", got, want)
	}
	if got, want := pl.Static, (Static{Addresses: []vrrp.VIP{{Prefix: p("198.18.0.200/24"), Dev: "eth0"}},
		Routes: []vrrp.Route{{Dst: p("198.51.100.0/24"), Dev: "eth0"}}, Rules: []vrrp.Rule{{From: p("198.18.0.200/32"), Table: 9, Priority: 16384}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("static %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		name, src, want string
		line            int
	}{
		{"nowhere to go", fmt.Sprintf(inst, "  203.0.113.0/24\n"), "give a gateway (via) or an interface (dev)", 8},
		{"gateway of the other family", fmt.Sprintf(inst, "  203.0.113.0/24 via 2001:db8::1\n"), "not of the family", 8},
		{"blackhole with a gateway", fmt.Sprintf(inst, "  blackhole 203.0.113.0/24 via 198.18.0.1\n"), "has no gateway", 8},
		{"static address without dev", "static_ipaddress {\n 198.18.0.200/24\n}\n", "needs its interface", 2},
		{"static route nowhere", "static_routes {\n 198.51.100.0/24\n}\n", "static_routes: route to 198.51.100.0/24", 2},
		{"static rule without a table", "static_rules {\n from 198.51.100.0/24\n}\n", "static_rules: no table", 2},
		{"virtual rule of two families", strings.Replace(fmt.Sprintf(inst, ""), " virtual_routes {\n }", " virtual_rules {\n  from 198.18.0.0/24 to 2001:db8::/32 table 5\n }", 1), "two families", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := config.ParseString("t.conf", tc.src, config.Options{})
			pl := Build(cfg, diags, Options{})
			errs := pl.Diagnostics.Errors()
			if len(errs) != 1 || !strings.Contains(errs[0].Message, tc.want) || errs[0].Line != tc.line {
				t.Fatalf("errors %v, want one naming %q at line %d", errs, tc.want, tc.line)
			}
			if len(pl.Static.Addresses)+len(pl.Static.Routes)+len(pl.Static.Rules) != 0 || (len(pl.VRRP.Instances) > 0 && len(pl.VRRP.Instances[0].Routes)+len(pl.VRRP.Instances[0].Rules) != 0) {
				t.Errorf("refused entry still planned: %+v %+v", pl.Static, pl.VRRP.Instances)
			}
		})
	}
}

// TestTrackFilesPlanned: track_file definitions go to the plan, entries to
// their instances with the definition's weight unless they set one, and a
// sync group's entries to every member with weight 0 (fault only); with
// sync_group_tracking_weight the members' own entries keep their weights.
func TestTrackFilesPlanned(t *testing.T) {
	const inst = "vrrp_instance %s {\n interface eth0\n virtual_router_id %d\n virtual_ipaddress {\n  198.18.0.%d/24\n }\n%s}\n"
	src := "track_file w {\n file /run/w\n weight -3\n init_file\n}\ntrack_file g {\n file /run/g\n}\n" +
		fmt.Sprintf(inst, "VI_1", 51, 100, " track_file {\n  w\n }\n") + fmt.Sprintf(inst, "VI_2", 52, 101, " track_file {\n  w weight 10 reverse\n }\n") +
		"vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n track_file {\n  g\n }\n sync_group_tracking_weight\n}\n"
	pl := plan(t, src)
	zero := 0
	if got, want := pl.VRRP.Files, []vrrp.TrackFile{{Name: "w", Path: "/run/w", Init: &zero}, {Name: "g", Path: "/run/g"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("files %+v, want %+v", got, want)
	}
	if got, want := pl.VRRP.Instances[0].TrackFiles, []vrrp.Track{{Name: "w", Weight: -3}, {Name: "g"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("VI_1 tracks %+v, want %+v", got, want)
	}
	if got, want := pl.VRRP.Instances[1].TrackFiles, []vrrp.Track{{Name: "w", Weight: 10, Reverse: true}, {Name: "g"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("VI_2 tracks %+v, want %+v", got, want)
	}
}

// TestSyncGroupMembersTrackWithoutWeights: as keepalived, a sync group
// member's weighted tracked interface only faults it, a weighted script or
// file is not tracked, each with a warning at its line; a repeated entry
// is ignored.
func TestSyncGroupMembersTrackWithoutWeights(t *testing.T) {
	const src = `vrrp_script chk {
 script "/bin/true"
 weight -20
}
vrrp_script chk0 {
 script "/bin/true"
}
track_file f {
 file /run/f
}
vrrp_instance VI_1 {
 interface eth0
 virtual_router_id 51
 virtual_ipaddress {
  198.18.0.100
 }
 track_interface {
  eth1 weight 10
  eth1
 }
 track_script {
  chk
  chk0
 }
 track_file {
  f weight 5
 }
}
vrrp_instance VI_2 {
 interface eth0
 virtual_router_id 52
 virtual_ipaddress {
  198.18.0.101
 }
}
vrrp_sync_group G {
 group {
  VI_1
  VI_2
 }
}
`
	cfg, diags := config.ParseString("t.conf", src, config.Options{})
	pl := Build(cfg, diags, Options{})
	if err := pl.Err(); err != nil {
		t.Fatal(err)
	}
	var warns []string
	for _, d := range pl.Diagnostics {
		if d.Severity == config.SeverityWarning && !strings.Contains(d.Message, "enable_script_security") {
			warns = append(warns, fmt.Sprintf("%d: %s", d.Line, d.Message))
		}
	}
	want := []string{
		"18: vrrp_instance VI_1: track_interface: the weight of eth1 is ignored: it only faults the instance, as keepalived does, because the instance is in vrrp_sync_group G (sync_group_tracking_weight keeps weights)",
		"19: track_interface: eth1 already tracked at t.conf:18; ignored (keepalived ignores it too)",
		"22: vrrp_instance VI_1: track_script: script chk has a weight and is not tracked, as keepalived does, because the instance is in vrrp_sync_group G (sync_group_tracking_weight keeps weights)",
		"26: vrrp_instance VI_1: track_file: file f has a weight and is not tracked, as keepalived does, because the instance is in vrrp_sync_group G (sync_group_tracking_weight keeps weights)",
	}
	if strings.Join(warns, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(want, "\n"))
	}
	in := pl.VRRP.Instances[0]
	if want := []vrrp.Track{{Name: "eth1"}}; !reflect.DeepEqual(in.TrackInterfaces, want) {
		t.Errorf("interfaces %+v, want %+v", in.TrackInterfaces, want)
	}
	if want := []vrrp.Track{{Name: "chk0"}}; !reflect.DeepEqual(in.TrackScripts, want) {
		t.Errorf("scripts %+v, want %+v", in.TrackScripts, want)
	}
	if len(in.TrackFiles) != 0 {
		t.Errorf("files %+v, want none", in.TrackFiles)
	}
}
