package state

import (
	"reflect"
	"testing"
)

// twoServers is a virtual server whose server "a" is down (its check
// failed) and "b" up, the state a reload must not disturb.
func twoServers(t *testing.T) *VirtualServer {
	t.Helper()
	vs := mustVS(t, VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
		rsCfg("a", 1, false, chk("tcp a", false)),
		rsCfg("b", 1, false, chk("tcp b", false)),
	}})
	vs.Start(at(0), half)
	report(t, vs, 1, 0, 0, false)
	report(t, vs, 1, 1, 0, true)
	return vs
}

func TestUpdate(t *testing.T) {
	keep := func(old int) Origin { return Origin{Old: old, KeepCheckers: true} }
	tests := []struct {
		name    string
		cfg     VirtualServerConfig
		origins []Origin
		// want are the events (see kinds), dests the pool after, probes the
		// real servers of the fresh checkers.
		want   []string
		dests  []Dest
		probes []int
		alive  []bool
	}{{
		name: "unchanged keeps a down server down and says nothing",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		dests:   []Dest{{Name: "b", Weight: 1}},
		alive:   []bool{false, true},
	}, {
		name: "reordered servers keep their state",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("b", 1, false, chk("tcp b", false)), rsCfg("a", 1, false, chk("tcp a", false))}},
		origins: []Origin{keep(1), keep(0)},
		dests:   []Dest{{Name: "b", Weight: 1}},
		alive:   []bool{true, false},
	}, {
		name: "weight of an up server",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 7, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		want:    []string{"weight:b"},
		dests:   []Dest{{Name: "b", Weight: 7}},
		alive:   []bool{false, true},
	}, {
		name: "weight of a down server is silent",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 5, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		dests:   []Dest{{Name: "b", Weight: 1}},
		alive:   []bool{false, true},
	}, {
		name: "inhibit_on_failure on a down server puts it in at weight 0",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 1, true, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		want:    []string{"down:a"},
		dests:   []Dest{{Name: "a", Weight: 0}, {Name: "b", Weight: 1}},
		alive:   []bool{false, true},
	}, {
		name: "changed checker of a down server restarts it up",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("http a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{{Old: 0}, keep(1)},
		want:    []string{"up:a"},
		dests:   []Dest{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}},
		probes:  []int{0},
		alive:   []bool{true, true},
	}, {
		name: "changed alpha checker of an up server restarts it down",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("http b", true))}},
		origins: []Origin{keep(0), {Old: 1}},
		want:    []string{"down:b", "quorum-down:!"},
		probes:  []int{1},
		alive:   []bool{false, false},
	}, {
		name: "added and removed real servers",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("c", 2, false, chk("tcp c", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{{Old: -1}, keep(1)},
		want:    []string{"up:c"},
		dests:   []Dest{{Name: "c", Weight: 2}, {Name: "b", Weight: 1}},
		probes:  []int{0},
		alive:   []bool{true, true},
	}, {
		name: "removing the up server runs notify_down and loses quorum",
		cfg: VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false))}},
		origins: []Origin{keep(0)},
		want:    []string{"down:b!", "quorum-down:!"},
		alive:   []bool{false},
	}, {
		name: "higher quorum is lost, sorry server comes in",
		cfg: VirtualServerConfig{Name: "vs", Quorum: 2, Sorry: &SorryServerConfig{Name: "s", Weight: 1}, RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		want:    []string{"quorum-down:!"},
		dests:   []Dest{{Name: "s", Weight: 1, Sorry: true}},
		alive:   []bool{false, true},
	}, {
		name: "hysteresis added, quorum verdict unchanged: silent",
		cfg: VirtualServerConfig{Name: "vs", Hysteresis: 1, RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		dests:   []Dest{{Name: "b", Weight: 1}},
		alive:   []bool{false, true},
	}, {
		name: "sorry server with inhibit appears at weight 0",
		cfg: VirtualServerConfig{Name: "vs", Sorry: &SorryServerConfig{Name: "s", Weight: 1, Inhibit: true}, RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}},
		origins: []Origin{keep(0), keep(1)},
		want:    []string{"weight:"},
		dests:   []Dest{{Name: "b", Weight: 1}, {Name: "s", Weight: 0, Sorry: true}},
		alive:   []bool{false, true},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := twoServers(t)
			ev, probes, err := vs.Update(at(2), tt.cfg, tt.origins, half)
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(ev); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			for _, e := range ev {
				if !e.Reload || !reflect.DeepEqual(e.Dests, tt.dests) {
					t.Errorf("event %v: reload %v, dests %v, want %v", e.Kind, e.Reload, e.Dests, tt.dests)
				}
			}
			if got := vs.Dests(); !reflect.DeepEqual(got, tt.dests) {
				t.Errorf("dests %v, want %v", got, tt.dests)
			}
			var prs []int
			for _, p := range probes {
				prs = append(prs, p.RealServer)
				if !p.At.Equal(at(2)) { // chk has no warmup
					t.Errorf("fresh probe at %v, want at the update", p.At)
				}
			}
			if !reflect.DeepEqual(prs, tt.probes) {
				t.Errorf("fresh probes for %v, want %v", prs, tt.probes)
			}
			var alive []bool
			for _, s := range vs.Status() {
				alive = append(alive, s.Alive)
			}
			if !reflect.DeepEqual(alive, tt.alive) {
				t.Errorf("alive %v, want %v", alive, tt.alive)
			}
		})
	}
}

// A kept checker keeps its retry count: the failure absorbed before the
// update is not granted again after it.
func TestUpdateKeepsRetryCount(t *testing.T) {
	c := chk("tcp a", false)
	c.Retry = 1
	cfg := VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{rsCfg("a", 1, false, c)}}
	vs := mustVS(t, cfg)
	vs.Start(at(0), half)
	if ev := report(t, vs, 1, 0, 0, false); len(ev) != 0 {
		t.Fatalf("first failure is a retry, got %v", kinds(ev))
	}
	if _, _, err := vs.Update(at(1.5), cfg, []Origin{{Old: 0, KeepCheckers: true}}, half); err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(report(t, vs, 2, 0, 0, false)), []string{"down:a!", "quorum-down:!"}; !reflect.DeepEqual(got, want) {
		t.Errorf("second failure: %v, want %v", got, want)
	}
}

func TestUpdateRejectsAndChangesNothing(t *testing.T) {
	good := []RealServerConfig{rsCfg("a", 1, false, chk("tcp a", false)), rsCfg("b", 1, false, chk("tcp b", false))}
	bad := chk("tcp b", false)
	bad.DelayLoop = 0
	tests := []struct {
		name    string
		cfg     VirtualServerConfig
		origins []Origin
	}{
		{"bad checker", VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{good[0], rsCfg("b", 1, false, bad)}}, []Origin{{Old: 0}, {Old: 1}}},
		{"bad weight", VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{rsCfg("a", -1, false)}}, []Origin{{Old: -1}}},
		{"negative quorum", VirtualServerConfig{Name: "vs", Quorum: -1, RealServers: good}, []Origin{{Old: 0}, {Old: 1}}},
		{"other name", VirtualServerConfig{Name: "other", RealServers: good}, []Origin{{Old: 0}, {Old: 1}}},
		{"origins short", VirtualServerConfig{Name: "vs", RealServers: good}, []Origin{{Old: 0}}},
		{"origin twice", VirtualServerConfig{Name: "vs", RealServers: good}, []Origin{{Old: 0}, {Old: 0}}},
		{"origin out of range", VirtualServerConfig{Name: "vs", RealServers: good}, []Origin{{Old: 0}, {Old: 2}}},
		{"keep with other checker count", VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{good[0], rsCfg("b", 1, false)}},
			[]Origin{{Old: 0}, {Old: 1, KeepCheckers: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := twoServers(t)
			before, dests := vs.Status(), vs.Dests()
			if _, _, err := vs.Update(at(2), tt.cfg, tt.origins, half); err == nil {
				t.Fatal("no error")
			}
			if !reflect.DeepEqual(vs.Status(), before) || !reflect.DeepEqual(vs.Dests(), dests) || vs.Config().Name != "vs" {
				t.Errorf("state changed by a rejected update")
			}
		})
	}
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) *VirtualServer
		want  []string
	}{
		{"one up one down", twoServers, []string{"down:b!", "quorum-down:!"}},
		{"all down, inhibited", func(t *testing.T) *VirtualServer {
			vs := mustVS(t, VirtualServerConfig{Name: "vs", RealServers: []RealServerConfig{rsCfg("a", 1, true, chk("tcp a", true))}})
			vs.Start(at(0), half)
			return vs
		}, []string{"down:a", "quorum-down:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.setup(t).Remove()
			if got := kinds(ev); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			for _, e := range ev {
				if !e.Removed || len(e.Dests) != 0 || e.VirtualServer != "vs" {
					t.Errorf("event %+v: want Removed, empty Dests, vs named", e)
				}
			}
		})
	}
}
