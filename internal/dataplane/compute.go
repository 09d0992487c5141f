package dataplane

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/govs/govs/internal/maglev"
	"github.com/govs/govs/internal/sched"
)

// limits are the sizes compiled into the BPF object.
type limits struct {
	services int // service ids
	reals    int // real ids, including the reserved 0
	svcReals int // reals per service that lc/wlc consider
	table    int // entries of one lookup table
}

// ids is the allocation of service and real-server ids, carried from one
// computation to the next so that unchanged objects keep their ids (and so
// their connections and counters).
type ids struct {
	svc  map[serviceKey]uint32
	real map[realKey]uint32
	// retired are reals removed from the configuration, oldest first. They
	// stay in the reals map with weight 0 so that established connections
	// keep reaching them; their ids are recycled last.
	retired []retiredReal
	// last holds the real entries of the previous plan, so a real that is
	// retired keeps forwarding where it did.
	last map[uint32]balancerReal
}

type retiredReal struct {
	key   realKey
	id    uint32
	entry balancerReal
}

func newIDs() ids {
	return ids{svc: map[serviceKey]uint32{}, real: map[realKey]uint32{}}
}

func (a ids) clone() ids {
	return ids{svc: cloneMap(a.svc), real: cloneMap(a.real), retired: slices.Clone(a.retired), last: cloneMap(a.last)}
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// plan is the content of the maps for one State.
type plan struct {
	services []servicePlan
	reals    map[uint32]balancerReal
	ports    []uint32 // egress ifindexes for the devmap
	// newSvcIDs and newRealIDs were (re)assigned by this plan: their
	// counters start from zero.
	newSvcIDs, newRealIDs []uint32
}

type servicePlan struct {
	name   string
	key    balancerSvcKey
	id     uint32
	meta   balancerSvcMeta
	laddrs balancerSvcLaddrs
	table  []uint32
}

// localAddrs is a FullNAT service's svc_laddrs entry.
func localAddrs(svc Service) balancerSvcLaddrs {
	var l balancerSvcLaddrs
	for i, a := range svc.LocalAddrs {
		if i < len(l.Addr) {
			l.Addr[i] = addr16(a)
			l.N++
		}
	}
	return l
}

// compute turns a desired state into map contents. It is pure: prev is
// not modified, and the same inputs always give the same plan.
func compute(s State, prev ids, lim limits) (plan, ids, error) {
	if err := s.Validate(); err != nil {
		return plan{}, prev, err
	}
	if len(s.Services) > lim.services {
		return plan{}, prev, fmt.Errorf("compute maps: %d services, at most %d", len(s.Services), lim.services)
	}
	next := prev.clone()
	p := plan{reals: map[uint32]balancerReal{}}

	// Services: keep ids, free removed ones, then allocate.
	wantSvc := map[serviceKey]bool{}
	for _, svc := range s.Services {
		wantSvc[svc.Key()] = true
	}
	for k := range next.svc {
		if !wantSvc[k] {
			delete(next.svc, k)
		}
	}
	usedSvc := map[uint32]bool{}
	for _, id := range next.svc {
		usedSvc[id] = true
	}
	var nextSvc uint32
	for _, svc := range s.Services {
		if _, ok := next.svc[svc.Key()]; ok {
			continue
		}
		for usedSvc[nextSvc] {
			nextSvc++
		}
		next.svc[svc.Key()] = nextSvc
		usedSvc[nextSvc] = true
		p.newSvcIDs = append(p.newSvcIDs, nextSvc)
	}

	// Reals: retire the ones that went away, revive returning ones.
	wantReal := map[realKey]bool{}
	for _, svc := range s.Services {
		for _, r := range svc.Reals {
			wantReal[realKey{svc.Key(), r.Addr}] = true
		}
	}
	revived := map[realKey]uint32{}
	next.retired = slices.DeleteFunc(next.retired, func(rr retiredReal) bool {
		if wantReal[rr.key] {
			revived[rr.key] = rr.id
			return true
		}
		return false
	})
	var gone []realKey
	for k := range next.real {
		if !wantReal[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, compareRealKeys)
	for _, k := range gone {
		id := next.real[k]
		delete(next.real, k)
		next.retired = append(next.retired, retiredReal{key: k, id: id, entry: prev.last[id]})
	}
	for k, id := range revived {
		next.real[k] = id
	}
	usedReal := map[uint32]bool{0: true}
	for _, id := range next.real {
		usedReal[id] = true
	}
	for _, rr := range next.retired {
		usedReal[rr.id] = true
	}
	nextReal := uint32(1)
	allocReal := func() (uint32, error) {
		for usedReal[nextReal] && int(nextReal) < lim.reals {
			nextReal++
		}
		if int(nextReal) < lim.reals {
			usedReal[nextReal] = true
			return nextReal, nil
		}
		if len(next.retired) == 0 {
			return 0, fmt.Errorf("compute maps: more than %d real servers", lim.reals-1)
		}
		id := next.retired[0].id
		next.retired = next.retired[1:]
		return id, nil
	}

	ports := map[uint32]bool{}
	for _, svc := range s.Services {
		sp := servicePlan{name: svc.String(), key: svcKeyOf(svc), id: next.svc[svc.Key()], laddrs: localAddrs(svc)}
		realIDs := make([]uint32, len(svc.Reals))
		for i, r := range svc.Reals {
			k := realKey{svc.Key(), r.Addr}
			id, ok := next.real[k]
			if !ok {
				var err error
				if id, err = allocReal(); err != nil {
					return plan{}, prev, err
				}
				next.real[k] = id
				p.newRealIDs = append(p.newRealIDs, id)
			}
			realIDs[i] = id
			entry, err := realEntry(s, r)
			if err != nil {
				return plan{}, prev, fmt.Errorf("service %s: %w", svc, err)
			}
			if len(r.MAC) == 0 {
				entry.DstMac = prev.last[id].DstMac // unresolved: keep established flows where they were
			}
			p.reals[id] = entry
			if r.Ifindex > 0 {
				ports[uint32(r.Ifindex)] = true
			}
		}
		meta, table, err := serviceTables(withoutUnresolved(svc), realIDs, lim)
		if err != nil {
			return plan{}, prev, fmt.Errorf("service %s: %w", svc, err)
		}
		sp.meta, sp.table = meta, table
		p.services = append(p.services, sp)
	}
	for i := range next.retired {
		rr := &next.retired[i]
		rr.entry.Weight = 0
		p.reals[rr.id] = rr.entry
		if rr.entry.Ifindex > 0 {
			ports[rr.entry.Ifindex] = true
		}
	}
	for ifi := range ports {
		p.ports = append(p.ports, ifi)
	}
	slices.Sort(p.ports)
	next.last = p.reals
	return p, next, nil
}

func compareRealKeys(a, b realKey) int {
	if c := a.svc.Addr.Compare(b.svc.Addr); c != 0 {
		return c
	}
	if a.svc.Port != b.svc.Port {
		return int(a.svc.Port) - int(b.svc.Port)
	}
	if a.svc.Proto != b.svc.Proto {
		return int(a.svc.Proto) - int(b.svc.Proto)
	}
	if a.svc.Fwmark != b.svc.Fwmark {
		return cmp.Compare(a.svc.Fwmark, b.svc.Fwmark)
	}
	return a.addr.Compare(b.addr)
}

func addr16(a netip.Addr) [16]byte {
	var out [16]byte
	if a.Is4() {
		b := a.As4()
		copy(out[:], b[:])
		return out
	}
	return a.As16()
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return 4
	}
	return 6
}

// svcKeyOf is the service's key in the services map. A fwmark service has
// protocol 0 and its mark, in network order, where the address would be
// (bpf/structs.h).
func svcKeyOf(s Service) balancerSvcKey {
	if s.Fwmark != 0 {
		k := balancerSvcKey{Family: family(s.Addr)}
		binary.BigEndian.PutUint32(k.Addr[:4], s.Fwmark)
		return k
	}
	return balancerSvcKey{Addr: addr16(s.Addr), Port: htons(s.Port), Proto: uint8(s.Protocol), Family: family(s.Addr)}
}

// htons converts to the network byte order the BPF program compares with.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// scanningScheds are the program's codes of the schedulers that scan the
// service's reals (sched.Kind.ScansReals).
var scanningScheds = map[sched.Kind]uint32{
	sched.LeastConnection: schedLC, sched.WeightedLeastConnection: schedWLC, sched.ShortestExpectedDelay: schedSED,
	sched.NeverQueue: schedNQ, sched.WeightedFailover: schedFO, sched.WeightedOverflow: schedOVF,
	sched.LocalityLeastConnection: schedLBLC, sched.LocalityLeastConnectionReplicated: schedLBLCR, sched.TwoChoices: schedTWOS,
}

// BPF-side constants (bpf/consts.h).
const (
	schedMH    = 1
	schedSH    = 2
	schedDH    = 3
	schedRR    = 4
	schedLC    = 5
	schedWLC   = 6
	schedSED   = 7
	schedNQ    = 8
	schedFO    = 9
	schedOVF   = 10
	schedLBLC  = 11
	schedLBLCR = 12
	schedTWOS  = 13

	svcFlagPersist  = 1 << 0
	svcFlagHashPort = 1 << 1
	svcFlagOPS      = 1 << 2
	realFlagTUN     = 1 << 0
	realFlagV6      = 1 << 1
	realFlagNAT     = 1 << 2
	realFlagGUE     = 1 << 3
	realFlagFNAT    = 1 << 4
	connFlagActive  = 1 << 0
	connFlagFin     = 1 << 1
	// connFlagSynced marks entries learnt from another director; only
	// user space reads it (the program keeps flags it does not know).
	connFlagSynced = 1 << 2
	// connFlagEmbryo marks an embryos entry: the client's SYN only.
	connFlagEmbryo = 1 << 3
	// connFlagNATLearn asks the program to record, from the flow's next
	// packet, where its client is (set on NAT entries user space inserts).
	connFlagNATLearn = 1 << 4
)

// withoutUnresolved gives reals whose MAC is not known weight 0: they
// cannot take new flows.
func withoutUnresolved(svc Service) Service {
	rs := make([]Real, len(svc.Reals))
	for i, r := range svc.Reals {
		if len(r.MAC) == 0 {
			r.Weight = 0
		}
		rs[i] = r
	}
	svc.Reals = rs
	return svc
}

func realEntry(s State, r Real) (balancerReal, error) {
	var e balancerReal
	copy(e.DstMac[:], r.MAC)
	src, ok := s.InterfaceMACs[r.Ifindex]
	if !ok || len(src) != 6 {
		return e, fmt.Errorf("real server %s: no MAC address for egress interface %d", r.Addr, r.Ifindex)
	}
	copy(e.SrcMac[:], src)
	e.Ifindex = uint32(r.Ifindex)
	e.Weight = r.Weight
	if len(r.MAC) == 0 {
		e.Weight = 0
	}
	e.Addr = addr16(r.Addr)
	if r.Method == NAT {
		e.Flags |= realFlagNAT
		e.Port = htons(r.Port)
	}
	if r.Method == FNAT {
		e.Flags |= realFlagFNAT
		e.Port = htons(r.Port)
	}
	if r.Method == TUN {
		e.Flags |= realFlagTUN
		tsrc := s.TunnelSource4
		if r.Addr.Is6() {
			e.Flags |= realFlagV6
			tsrc = s.TunnelSource6
		}
		e.TunSrc = addr16(tsrc)
		if r.GUEPort != 0 {
			e.Flags |= realFlagGUE
			e.Port = htons(r.GUEPort)
		}
	}
	return e, nil
}

// serviceTables computes a service's metadata and lookup table (real ids).
func serviceTables(svc Service, realIDs []uint32, lim limits) (balancerSvcMeta, []uint32, error) {
	var m balancerSvcMeta
	kind, err := sched.ParseKind(string(svc.Scheduler))
	if err != nil {
		return m, nil, err
	}
	if kind.ScansReals() && len(svc.Reals) > lim.svcReals {
		return m, nil, fmt.Errorf("%s supports at most %d real servers per service, got %d", kind, lim.svcReals, len(svc.Reals))
	}
	m.Nreals = uint32(min(len(svc.Reals), lim.svcReals))
	for i := 0; i < int(m.Nreals); i++ {
		m.Reals[i].Id = realIDs[i]
		m.Reals[i].Weight = svc.Reals[i].Weight
	}
	if svc.HashPort {
		m.Flags |= svcFlagHashPort
	}
	if svc.OnePacket && svc.Protocol == UDP {
		m.Flags |= svcFlagOPS
	}
	if svc.PersistenceTimeout > 0 {
		m.Flags |= svcFlagPersist
		m.PersistNs = uint64(svc.PersistenceTimeout.Nanoseconds())
		bits := svc.PersistenceBits
		if bits == 0 {
			bits = svc.Addr.BitLen()
		}
		for i := 0; i < bits; i++ {
			m.PersistMask[i/8] |= 0x80 >> (i % 8)
		}
	}

	var table []uint32
	switch kind {
	case sched.Maglev, sched.SourceHash, sched.DestinationHash:
		m.Sched = map[sched.Kind]uint32{sched.Maglev: schedMH, sched.SourceHash: schedSH, sched.DestinationHash: schedDH}[kind]
		size := svc.TableSize
		if size == 0 {
			size = maglev.DefaultSize
		}
		if size > uint64(lim.table) {
			return m, nil, fmt.Errorf("table size %d above the compiled maximum %d", size, lim.table)
		}
		backends := make([]maglev.Backend, len(svc.Reals))
		for i, r := range svc.Reals {
			backends[i] = maglev.Backend{ID: r.Addr.String(), Weight: r.Weight}
		}
		slots, err := maglev.Build(backends, size)
		if err != nil {
			return m, nil, err
		}
		table = make([]uint32, len(slots))
		for i, b := range slots {
			if b != maglev.Empty {
				table[i] = realIDs[b]
			}
		}
	case sched.RoundRobin, sched.WeightedRoundRobin:
		m.Sched = schedRR
		weights := make([]uint32, len(svc.Reals))
		for i, r := range svc.Reals {
			weights[i] = r.Weight
			if kind == sched.RoundRobin {
				weights[i] = min(r.Weight, 1)
			}
		}
		for _, i := range sched.WeightedSequence(weights) {
			table = append(table, realIDs[i])
		}
		if len(table) > lim.table {
			return m, nil, fmt.Errorf("weighted sequence of %d entries above the compiled maximum %d", len(table), lim.table)
		}
	default:
		// The schedulers that scan the reals need no table.
		m.Sched = scanningScheds[kind]
	}
	if allZero(table) {
		table = nil // nothing to choose: the program drops with "no real"
	}
	m.TableLen = uint32(len(table))
	return m, table, nil
}

func allZero(t []uint32) bool {
	for _, v := range t {
		if v != 0 {
			return false
		}
	}
	return true
}
