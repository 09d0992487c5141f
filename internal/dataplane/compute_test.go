package dataplane

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/sched"
)

var testLimits = limits{services: 4, reals: 6, svcReals: 64, table: 131071}

func TestComputeKeepsIDs(t *testing.T) {
	s1 := state(svc4(sched.Maglev, 80, reals4(1, 1, 1)...))
	p1, ids1, err := compute(s1, newIDs(), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.newRealIDs) != 3 || len(p1.newSvcIDs) != 1 {
		t.Fatalf("new ids %v %v", p1.newSvcIDs, p1.newRealIDs)
	}
	if _, ok := p1.reals[0]; ok {
		t.Fatal("real id 0 (none) allocated")
	}
	// Drop real 2, change real 3's weight: real 1 and 3 keep their ids,
	// real 2 stays as a weight-0 entry for its established flows.
	s2 := state(svc4(sched.Maglev, 80, real4(1, 1), real4(3, 5)))
	p2, ids2, err := compute(s2, ids1, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(p2.newRealIDs) != 0 {
		t.Fatalf("ids reassigned: %v", p2.newRealIDs)
	}
	id2 := ids1.real[realKey{s1.Services[0].Key(), real4(2, 1).Addr}]
	if e, ok := p2.reals[id2]; !ok || e.Weight != 0 || e.DstMac[5] != 2 {
		t.Fatalf("retired real entry %+v (present %v)", e, ok)
	}
	if len(ids2.retired) != 1 {
		t.Fatalf("retired %v", ids2.retired)
	}
	if _, ok := ids1.real[realKey{s1.Services[0].Key(), real4(2, 1).Addr}]; !ok {
		t.Fatal("compute modified its input ids")
	}
	for _, id := range p2.services[0].table {
		if id == id2 {
			t.Fatal("retired real still in the table")
		}
	}
	// Real 2 comes back: same id.
	_, ids3, err := compute(s1, ids2, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids3.real[realKey{s1.Services[0].Key(), real4(2, 1).Addr}]; got != id2 {
		t.Fatalf("returning real got id %d, had %d", got, id2)
	}
}

func TestComputeRecyclesRetiredIDsLast(t *testing.T) {
	// 5 usable ids (1..5). Use 5, retire 2, add 2 new ones: the retired
	// ids are recycled, oldest first.
	s := state(svc4(sched.Maglev, 80, reals4(1, 1, 1, 1, 1)...))
	_, ids1, err := compute(s, newIDs(), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	s.Services[0].Reals = s.Services[0].Reals[:3]
	_, ids2, err := compute(s, ids1, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	s.Services[0].Reals = append(s.Services[0].Reals, real4(6, 1))
	p3, ids3, err := compute(s, ids2, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(p3.newRealIDs) != 1 || len(ids3.retired) != 1 {
		t.Fatalf("new %v retired %v", p3.newRealIDs, ids3.retired)
	}
	s.Services[0].Reals = append(s.Services[0].Reals, real4(7, 1), real4(8, 1))
	if _, _, err := compute(s, ids3, testLimits); err == nil || !strings.Contains(err.Error(), "more than 5 real servers") {
		t.Fatalf("want out-of-ids error, got %v", err)
	}
}

func TestComputeUnresolvedMAC(t *testing.T) {
	s := state(svc4(sched.Maglev, 80, reals4(1, 1)...))
	_, ids1, err := compute(s, newIDs(), testLimits)
	if err != nil {
		t.Fatal(err)
	}
	// Real 2's neighbour entry went away; real 3 was never resolved.
	s.Services[0].Reals[1].MAC = nil
	s.Services[0].Reals = append(s.Services[0].Reals, Real{Addr: real4(3, 1).Addr, Weight: 1})
	p, ids2, err := compute(s, ids1, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	key := s.Services[0].Key()
	id1, id2, id3 := ids2.real[realKey{key, real4(1, 1).Addr}], ids2.real[realKey{key, real4(2, 1).Addr}], ids2.real[realKey{key, real4(3, 1).Addr}]
	for _, id := range p.services[0].table {
		if id != id1 {
			t.Fatalf("table names real %d; only real %d has a MAC", id, id1)
		}
	}
	if e := p.reals[id2]; e.Weight != 0 || e.DstMac[5] != 2 {
		t.Errorf("real 2 entry %+v: want weight 0 and its last MAC", e)
	}
	if e := p.reals[id3]; e.Weight != 0 || e.DstMac != [6]byte{} {
		t.Errorf("real 3 entry %+v: want weight 0, no MAC", e)
	}
}

func TestComputeTables(t *testing.T) {
	tests := []struct {
		name    string
		svc     Service
		wantLen int
		check   func(t *testing.T, m balancerSvcMeta, table []uint32)
	}{
		{"mh default size", svc4(sched.Maglev, 80, reals4(1, 1)...), 65537, nil},
		{"sh custom size", func() Service { s := svc4(sched.SourceHash, 80, reals4(1, 1)...); s.TableSize = 251; return s }(), 251, nil},
		{"wrr sequence", svc4(sched.WeightedRoundRobin, 80, reals4(2, 1)...), 3, func(t *testing.T, m balancerSvcMeta, table []uint32) {
			if table[0] != table[1] || table[0] == table[2] {
				t.Errorf("sequence %v", table)
			}
		}},
		{"rr flattens weights", svc4(sched.RoundRobin, 80, reals4(7, 3, 0)...), 2, nil},
		{"all weights zero: no table", svc4(sched.Maglev, 80, reals4(0, 0)...), 0, nil},
		{"lc has no table", svc4(sched.LeastConnection, 80, reals4(1, 2)...), 0, func(t *testing.T, m balancerSvcMeta, _ []uint32) {
			if m.Sched != schedLC || m.Nreals != 2 || m.Reals[1].Weight != 2 {
				t.Errorf("meta %+v", m)
			}
		}},
		{"persistence /24", func() Service {
			s := svc4(sched.Maglev, 80, reals4(1)...)
			s.PersistenceTimeout = 1e9
			s.PersistenceBits = 20
			return s
		}(), 65537, func(t *testing.T, m balancerSvcMeta, _ []uint32) {
			if m.Flags&svcFlagPersist == 0 || m.PersistNs != 1e9 || m.PersistMask != [16]byte{255, 255, 0xf0} {
				t.Errorf("meta %+v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := compute(state(tc.svc), newIDs(), testLimits)
			if err != nil {
				t.Fatal(err)
			}
			sp := p.services[0]
			if len(sp.table) != tc.wantLen || int(sp.meta.TableLen) != tc.wantLen {
				t.Fatalf("table length %d (meta %d), want %d", len(sp.table), sp.meta.TableLen, tc.wantLen)
			}
			if tc.check != nil {
				tc.check(t, sp.meta, sp.table)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	bad := func(f func(s *State)) State {
		s := state(svc4(sched.Maglev, 80, reals4(1)...))
		f(&s)
		return s
	}
	tests := []struct {
		name string
		s    State
		want string
	}{
		{"unknown scheduler", bad(func(s *State) { s.Services[0].Scheduler = "wibble" }), "unknown scheduler"},
		{"duplicate service", bad(func(s *State) { s.Services = append(s.Services, s.Services[0]) }), "defined twice"},
		{"duplicate real", bad(func(s *State) { s.Services[0].Reals = append(s.Services[0].Reals, s.Services[0].Reals[0]) }), "listed twice"},
		{"bad MAC", bad(func(s *State) { s.Services[0].Reals[0].MAC = net.HardwareAddr{1, 2} }), "6-byte"},
		{"DR across families", bad(func(s *State) { s.Services[0].Reals[0].Addr = netip.MustParseAddr("2001:db8::5") }), "same address family"},
		{"TUN without source", bad(func(s *State) { s.Services[0].Reals[0].Method = TUN; s.TunnelSource4 = netip.Addr{} }), "tunnel source"},
		{"protocol", bad(func(s *State) { s.Services[0].Protocol = 1 }), "TCP or UDP"},
		{"persistence prefix", bad(func(s *State) { s.Services[0].PersistenceBits = 33 }), "persistence prefix"},
		{"mapped address", bad(func(s *State) { s.Services[0].Addr = netip.MustParseAddr("::ffff:198.18.0.1") }), "IPv4-mapped"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if err := state(svc4(sched.Maglev, 80, reals4(1)...)).Validate(); err != nil {
		t.Fatalf("valid state: %v", err)
	}
}
