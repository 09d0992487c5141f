package realserver

import (
	"errors"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
)

// fakeHost is an in-memory host: devices, their addresses and sysctls.
type fakeHost struct {
	up      map[string]bool // device -> up; absent = no device
	addrs   map[string][]netip.Prefix
	sysctls map[string]string
	failOn  func(Action) bool
	applied []Action
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		up:    map[string]bool{"lo": true, "eth0": true},
		addrs: map[string][]netip.Prefix{"lo": {netip.MustParsePrefix("127.0.0.1/8")}},
		sysctls: map[string]string{
			"net/ipv4/conf/all/arp_ignore":   "0",
			"net/ipv4/conf/lo/arp_ignore":    "0",
			"net/ipv4/conf/all/arp_announce": "0",
			"net/ipv4/conf/lo/arp_announce":  "0",
			"net/ipv4/conf/all/rp_filter":    "2",
		},
	}
}

func (f *fakeHost) Observe(devs, keys []string) (Observed, error) {
	obs := Observed{Links: map[string]LinkState{}, Addrs: map[string][]netip.Prefix{}, Sysctls: map[string]string{}}
	for _, d := range devs {
		if up, ok := f.up[d]; ok {
			obs.Links[d] = LinkState{Up: up}
			obs.Addrs[d] = slices.Clone(f.addrs[d])
		}
	}
	for _, k := range keys {
		if v, ok := f.sysctls[k]; ok {
			obs.Sysctls[k] = v
		}
	}
	return obs, nil
}

func (f *fakeHost) ReadSysctl(key string) (string, error) {
	v, ok := f.sysctls[key]
	if !ok {
		return "", errors.New("no such sysctl " + key)
	}
	return v, nil
}

func (f *fakeHost) Apply(a Action) error {
	if f.failOn != nil && f.failOn(a) {
		return errors.New("injected failure")
	}
	f.applied = append(f.applied, a)
	switch a.Kind {
	case CreateTunnel:
		f.up[a.Tunnel.Name] = false
		if !a.Tunnel.IPv6 {
			f.sysctls["net/ipv4/conf/"+a.Tunnel.Name+"/rp_filter"] = "1"
		}
	case LinkUp, LinkDown:
		if _, ok := f.up[a.Tunnel.Name]; !ok {
			return errors.New("no device " + a.Tunnel.Name)
		}
		f.up[a.Tunnel.Name] = a.Kind == LinkUp
	case AddAddr:
		if _, ok := f.up[a.Addr.Dev]; !ok {
			return errors.New("no device " + a.Addr.Dev)
		}
		if !slices.Contains(f.addrs[a.Addr.Dev], a.Addr.Prefix) {
			f.addrs[a.Addr.Dev] = append(f.addrs[a.Addr.Dev], a.Addr.Prefix)
		}
	case DelAddr:
		f.addrs[a.Addr.Dev] = slices.DeleteFunc(f.addrs[a.Addr.Dev], func(p netip.Prefix) bool { return p == a.Addr.Prefix })
	case SetSysctl:
		if _, ok := f.sysctls[a.Setting.Key]; !ok {
			return errors.New("no such sysctl " + a.Setting.Key)
		}
		f.sysctls[a.Setting.Key] = a.Setting.Value
	}
	return nil
}

func (f *fakeHost) snapshot() (map[string]bool, map[string][]netip.Prefix, map[string]string) {
	addrs := map[string][]netip.Prefix{}
	for k, v := range f.addrs {
		if len(v) > 0 {
			addrs[k] = slices.Clone(v)
		}
	}
	return maps.Clone(f.up), addrs, maps.Clone(f.sysctls)
}

func vips(mode Mode, addrs ...string) []VIP {
	var out []VIP
	for _, a := range addrs {
		out = append(out, VIP{Addr: netip.MustParseAddr(a), Mode: mode})
	}
	return out
}

func TestUpStatusDownRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		vips      []VIP
		wantAddrs map[string]string // device -> VIP prefix expected after up
		wantSys   map[string]string
	}{
		{
			name:      "dr ipv4",
			vips:      vips(ModeDR, "198.18.0.100"),
			wantAddrs: map[string]string{"lo": "198.18.0.100/32"},
			wantSys: map[string]string{
				"net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/lo/arp_ignore": "1",
				"net/ipv4/conf/all/arp_announce": "2", "net/ipv4/conf/lo/arp_announce": "2",
				"net/ipv4/conf/all/rp_filter": "2",
			},
		},
		{
			name:      "dr ipv6 needs no arp settings",
			vips:      vips(ModeDR, "2001:db8::100"),
			wantAddrs: map[string]string{"lo": "2001:db8::100/128"},
			wantSys:   map[string]string{"net/ipv4/conf/all/arp_ignore": "0", "net/ipv4/conf/all/arp_announce": "0"},
		},
		{
			name:      "tun ipv4",
			vips:      vips(ModeTUN, "198.18.0.100"),
			wantAddrs: map[string]string{"tunl0": "198.18.0.100/32"},
			wantSys: map[string]string{
				"net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/all/arp_announce": "2",
				"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/tunl0/rp_filter": "0",
			},
		},
		{
			name:      "tun ipv6",
			vips:      vips(ModeTUN, "2001:db8::100"),
			wantAddrs: map[string]string{"ip6tnl0": "2001:db8::100/128"},
			wantSys:   map[string]string{"net/ipv4/conf/all/rp_filter": "2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost()
			up0, addrs0, sys0 := h.snapshot()
			m := &Manager{Host: h, StatePath: filepath.Join(t.TempDir(), "rs.json")}

			if _, items, err := m.Status(tt.vips); err != nil || Ready(items) {
				t.Fatalf("status before up: ready=%v err=%v, want not ready", Ready(items), err)
			}
			acts, err := m.Up(tt.vips)
			if err != nil || len(acts) == 0 {
				t.Fatalf("up: %v actions, err %v", len(acts), err)
			}
			for dev, p := range tt.wantAddrs {
				if !slices.Contains(h.addrs[dev], netip.MustParsePrefix(p)) {
					t.Errorf("after up: %s not on %s (have %v)", p, dev, h.addrs[dev])
				}
				if dev != "lo" && !h.up[dev] {
					t.Errorf("after up: %s is not up", dev)
				}
			}
			for k, v := range tt.wantSys {
				if h.sysctls[k] != v {
					t.Errorf("after up: %s = %q, want %q", k, h.sysctls[k], v)
				}
			}
			per, items, err := m.Status(tt.vips)
			if err != nil || !Ready(items) || len(per) != len(tt.vips) {
				t.Fatalf("status after up: ready=%v per=%d err=%v items=%+v", Ready(items), len(per), err, items)
			}

			n := len(h.applied)
			if acts, err := m.Up(tt.vips); err != nil || len(acts) != 0 || len(h.applied) != n {
				t.Fatalf("second up changed something: %v, err %v", acts, err)
			}

			if _, err := m.Down(nil, ""); err != nil {
				t.Fatalf("down: %v", err)
			}
			up1, addrs1, sys1 := h.snapshot()
			// Tunnel devices stay (fallback devices cannot be deleted) but go down.
			for d := range up1 {
				if _, existed := up0[d]; !existed {
					if up1[d] {
						t.Errorf("after down: %s still up", d)
					}
					delete(up1, d)
					delete(sys1, "net/ipv4/conf/"+d+"/rp_filter")
				}
			}
			if !maps.Equal(up0, up1) || !maps.EqualFunc(addrs0, addrs1, slices.Equal) || !maps.Equal(sys0, sys1) {
				t.Errorf("down did not restore the host:\nbefore %v %v %v\nafter  %v %v %v", up0, addrs0, sys0, up1, addrs1, sys1)
			}
			if rec, err := LoadRecord(m.StatePath); err != nil || rec != nil {
				t.Errorf("state file after down: %+v, %v; want removed", rec, err)
			}
			if _, items, _ := m.Status(tt.vips); Ready(items) {
				t.Error("status after down says ready")
			}
		})
	}
}

func TestDownRestoresPreviousValuesNotDefaults(t *testing.T) {
	h := newFakeHost()
	h.sysctls["net/ipv4/conf/all/arp_announce"] = "1"
	m := &Manager{Host: h, StatePath: filepath.Join(t.TempDir(), "rs.json")}
	if _, err := m.Up(vips(ModeDR, "198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Down(nil, ""); err != nil {
		t.Fatal(err)
	}
	if got := h.sysctls["net/ipv4/conf/all/arp_announce"]; got != "1" {
		t.Errorf("all.arp_announce after down = %s, want the previous 1", got)
	}
}

func TestDownWithoutStateFileFallsBackToDefaults(t *testing.T) {
	h := newFakeHost()
	dir := t.TempDir()
	m := &Manager{Host: h, StatePath: filepath.Join(dir, "rs.json")}
	v := vips(ModeDR, "198.18.0.100")
	if _, err := m.Up(v); err != nil {
		t.Fatal(err)
	}
	lost := &Manager{Host: h, StatePath: filepath.Join(dir, "other.json")}
	if _, err := lost.Down(nil, ModeDR); err == nil {
		t.Error("down without state file and without VIPs: want an error")
	}
	if _, err := lost.Down([]netip.Addr{v[0].Addr}, ModeDR); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(h.addrs["lo"], v[0].Prefix()) {
		t.Error("VIP still on lo")
	}
	for _, k := range []string{"net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/lo/arp_announce"} {
		if h.sysctls[k] != "0" {
			t.Errorf("%s = %s, want default 0", k, h.sysctls[k])
		}
	}
}

func TestPartialDownKeepsSharedSettings(t *testing.T) {
	h := newFakeHost()
	m := &Manager{Host: h, StatePath: filepath.Join(t.TempDir(), "rs.json")}
	if _, err := m.Up(vips(ModeDR, "198.18.0.100")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(vips(ModeTUN, "198.18.0.101")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(vips(ModeDR, "198.18.0.101")); err == nil {
		t.Error("up of a recorded VIP in another mode: want an error")
	}
	if _, err := m.Down([]netip.Addr{netip.MustParseAddr("198.18.0.101")}, ModeDR); err != nil {
		t.Fatal(err)
	}
	if h.up["tunl0"] {
		t.Error("tunl0 still up after its only VIP went")
	}
	if h.sysctls["net/ipv4/conf/all/rp_filter"] != "2" {
		t.Errorf("rp_filter = %s, want restored 2", h.sysctls["net/ipv4/conf/all/rp_filter"])
	}
	if h.sysctls["net/ipv4/conf/all/arp_ignore"] != "1" {
		t.Error("arp_ignore restored although the DR VIP still needs it")
	}
	if !slices.Contains(h.addrs["lo"], netip.MustParsePrefix("198.18.0.100/32")) {
		t.Error("remaining VIP removed")
	}
	rec, err := LoadRecord(m.StatePath)
	if err != nil || rec == nil || len(rec.VIPs) != 1 {
		t.Fatalf("record after partial down: %+v %v", rec, err)
	}
}

func TestFailedUpIsUndoneByDown(t *testing.T) {
	h := newFakeHost()
	up0, addrs0, sys0 := h.snapshot()
	h.failOn = func(a Action) bool { return a.Kind == SetSysctl && a.Setting.Key == "net/ipv4/conf/lo/arp_announce" }
	m := &Manager{Host: h, StatePath: filepath.Join(t.TempDir(), "rs.json")}
	if _, err := m.Up(vips(ModeDR, "198.18.0.100")); err == nil {
		t.Fatal("up: want the injected error")
	}
	h.failOn = nil
	if _, err := m.Down(nil, ""); err != nil {
		t.Fatal(err)
	}
	up1, addrs1, sys1 := h.snapshot()
	if !maps.Equal(up0, up1) || !maps.EqualFunc(addrs0, addrs1, slices.Equal) || !maps.Equal(sys0, sys1) {
		t.Errorf("down after failed up left changes: %v %v %v", up1, addrs1, sys1)
	}
}

func TestBadInput(t *testing.T) {
	m := &Manager{Host: newFakeHost(), StatePath: filepath.Join(t.TempDir(), "rs.json")}
	for _, v := range [][]VIP{
		nil,
		vips(ModeDR, "0.0.0.0"),
		vips(ModeDR, "224.0.0.18"),
		vips(ModeDR, "fe80::1"),
		vips(ModeDR, "::ffff:198.18.0.1"),
		{{Addr: netip.MustParseAddr("198.18.0.1"), Mode: "nat"}},
	} {
		if _, err := m.Up(v); err == nil {
			t.Errorf("up %v: want an error", v)
		}
	}
	if _, err := ParseMode("nat"); err == nil {
		t.Error("ParseMode(nat): want an error")
	}
}

func TestPlanOrdersDevicesBeforeAddressesBeforeSysctls(t *testing.T) {
	spec := Desired(vips(ModeTUN, "198.18.0.100"))
	plan := Plan(spec, Observed{})
	var kinds []ActionKind
	for _, a := range plan {
		kinds = append(kinds, a.Kind)
	}
	if !slices.IsSorted(kinds) || kinds[0] != CreateTunnel {
		t.Errorf("plan order %v", plan)
	}
	for _, a := range plan {
		if a.String() == "" {
			t.Errorf("action %d has no description", a.Kind)
		}
	}
}

// TestDecapPlans: a TUN VIP decapsulated by XDP goes on lo, with the ARP
// settings and rp_filter off on the interface, and the program attached
// last (once the VIP can take its packets); down detaches it first, or
// re-attaches it for the VIPs that stay.
func TestDecapPlans(t *testing.T) {
	v4 := VIP{Addr: netip.MustParseAddr("198.18.0.100"), Mode: ModeTUN, Decap: "eth0"}
	v6 := VIP{Addr: netip.MustParseAddr("2001:db8::100"), Mode: ModeTUN, Decap: "eth0"}
	spec := Desired([]VIP{v4, v6})
	if len(spec.Tunnels) != 0 || len(spec.Decaps) != 1 || len(spec.Decaps[0].VIPs) != 2 || spec.Decaps[0].Interface != "eth0" {
		t.Fatalf("spec %+v: want no tunnel device, one decapsulation on eth0 for both VIPs", spec)
	}
	for _, a := range spec.Addrs {
		if a.Dev != "lo" {
			t.Errorf("VIP %s on %s, want lo", a.Prefix, a.Dev)
		}
	}
	if !slices.Contains(spec.Sysctls, Setting{Key: "net/ipv4/conf/eth0/rp_filter", Value: "0"}) {
		t.Errorf("sysctls %+v: no rp_filter 0 on eth0", spec.Sysctls)
	}
	acts := Plan(spec, Observed{})
	if last := acts[len(acts)-1]; last.Kind != AttachDecap || last.Decap.Interface != "eth0" {
		t.Fatalf("plan %v: want the attach last", acts)
	}
	ready := Observed{Decaps: map[string]Decap{"eth0": {Interface: "eth0", VIPs: []netip.Addr{v6.Addr, v4.Addr}}}}
	for _, a := range spec.Addrs {
		if ready.Addrs == nil {
			ready.Addrs = map[string][]netip.Prefix{}
		}
		ready.Addrs[a.Dev] = append(ready.Addrs[a.Dev], a.Prefix)
	}
	ready.Sysctls = map[string]string{}
	for _, s := range spec.Sysctls {
		ready.Sysctls[s.Key] = s.Value
	}
	if acts := Plan(spec, ready); len(acts) != 0 || !Ready(Check(spec, ready)) {
		t.Fatalf("a ready host: plan %v, check %+v", acts, Check(spec, ready))
	}
	rec := &Record{VIPs: []VIP{v4, v6}}
	down, _ := PlanDown(rec, []VIP{v6}, ready)
	if len(down) == 0 || down[0].Kind != AttachDecap || !slices.Equal(down[0].Decap.VIPs, []netip.Addr{v4.Addr}) {
		t.Fatalf("down of one VIP: %v, want the program re-attached for the other first", down)
	}
	down, _ = PlanDown(rec, nil, ready)
	if len(down) == 0 || down[0].Kind != DetachDecap {
		t.Fatalf("down of all: %v, want the program detached first", down)
	}
	if err := ValidateVIPs([]VIP{{Addr: v4.Addr, Mode: ModeDR, Decap: "eth0"}}); err == nil {
		t.Error("a DR VIP with XDP decapsulation validated")
	}
}
