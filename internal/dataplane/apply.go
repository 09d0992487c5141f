package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
)

// Apply makes the maps match s. Each service switches atomically: its new
// metadata and lookup table are written to the slot packets do not use,
// then the one services-map entry naming the live slot is rewritten.
// Real-server entries are written before the tables that name them and
// removed after. On error the maps hold a mix of old and new services (each
// one whole); calling Apply again converges.
func (d *Dataplane) Apply(s State) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, err := fillInterfaceMACs(s, kernelMAC)
	if err != nil {
		return fmt.Errorf("apply state: %w", err)
	}
	p, next, err := compute(s, d.ids, d.lim)
	if err != nil {
		return fmt.Errorf("apply state: %w", err)
	}
	if err := d.resetCounters(p); err != nil {
		return err
	}
	for id, e := range p.reals {
		if old, ok := d.realsSet[id]; ok && old == e {
			continue
		}
		if err := d.objs.Reals.Put(id, &e); err != nil {
			return fmt.Errorf("write real %d: %w", id, err)
		}
		d.realsSet[id] = e
	}
	for _, ifi := range p.ports {
		if d.ports[ifi] {
			continue
		}
		if err := d.objs.TxPorts.Put(ifi, ifi); err != nil {
			return fmt.Errorf("add ifindex %d to devmap: %w", ifi, err)
		}
		d.ports[ifi] = true
	}

	live := map[uint32]bool{}
	for _, sp := range p.services {
		live[sp.id] = true
		if err := d.applyService(sp); err != nil {
			return err
		}
	}
	for id, cur := range d.applied {
		if live[id] {
			continue
		}
		if err := deleteIgnoringMissing(d.objs.Services, cur.key); err != nil {
			return fmt.Errorf("remove service %s: %w", cur.name, err)
		}
		if err := d.objs.SvcLive.Put(id, &balancerSvcLiveVal{}); err != nil {
			return fmt.Errorf("remove service %s: %w", cur.name, err)
		}
		for gen := uint32(0); gen < 2; gen++ {
			if err := deleteIgnoringMissing(d.objs.Tables, id*2+gen); err != nil {
				return fmt.Errorf("remove table of %s: %w", cur.name, err)
			}
		}
		delete(d.applied, id)
	}

	if err := d.applyVIPFilter(p); err != nil {
		return err
	}
	if err := d.applyLocalAddrs(s); err != nil {
		return err
	}
	if t := d.effectiveTimeouts(s.Timeouts); t != d.timeouts() {
		if err := d.writeTimeouts(t); err != nil {
			return fmt.Errorf("apply state: %w", err)
		}
	}
	if !d.flowLimitSet || s.NewFlowLimit != d.state.NewFlowLimit {
		// Written on the first Apply too: a pinned predecessor's limit
		// must not outlive its configuration.
		if err := d.objs.FlowGuard.Put(uint32(0), &balancerFlowLimit{Limit: uint64(s.NewFlowLimit)}); err != nil {
			return fmt.Errorf("write new-flow limit: %w", err)
		}
		d.flowLimitSet = true
	}

	wantPorts := map[uint32]bool{}
	for _, ifi := range p.ports {
		wantPorts[ifi] = true
	}
	for ifi := range d.links {
		wantPorts[uint32(ifi)] = true
	}
	for ifi := range d.ports {
		if !wantPorts[ifi] {
			if err := deleteIgnoringMissing(d.objs.TxPorts, ifi); err != nil {
				return fmt.Errorf("remove ifindex %d from devmap: %w", ifi, err)
			}
			delete(d.ports, ifi)
		}
	}
	for id := range d.realsSet {
		if _, ok := p.reals[id]; !ok {
			// An array: cleared, not deleted (the program reads an
			// all-zero entry as no real).
			if err := d.objs.Reals.Put(id, &balancerReal{}); err != nil {
				return fmt.Errorf("remove real %d: %w", id, err)
			}
			delete(d.realsSet, id)
		}
	}
	d.ids = next
	d.idsGen++
	d.state = s
	return d.migrateLocked()
}

func (d *Dataplane) applyService(sp servicePlan) error {
	cur, ok := d.applied[sp.id]
	if ok && cur.key == sp.key && cur.meta == sp.meta && cur.laddrs == sp.laddrs && slices.Equal(cur.table, sp.table) {
		return nil
	}
	gen := uint32(0)
	if ok {
		gen = 1 - cur.gen
	}
	slot := sp.id*2 + gen
	if len(sp.table) > 0 {
		spec := d.inner.Copy()
		spec.MaxEntries = uint32(len(sp.table))
		table, err := ebpf.NewMap(spec)
		if err != nil {
			return fmt.Errorf("create table for %s: %w", sp.name, err)
		}
		keys := make([]uint32, len(sp.table))
		for i := range keys {
			keys[i] = uint32(i)
		}
		_, err = table.BatchUpdate(keys, sp.table, nil)
		if err == nil {
			// The outer map holds its own reference.
			err = d.objs.Tables.Put(slot, table)
		}
		table.Close()
		if err != nil {
			return fmt.Errorf("write table for %s: %w", sp.name, err)
		}
	} else if err := deleteIgnoringMissing(d.objs.Tables, slot); err != nil {
		return fmt.Errorf("clear table for %s: %w", sp.name, err)
	}
	if err := d.objs.SvcMetas.Put(slot, &sp.meta); err != nil {
		return fmt.Errorf("write metadata for %s: %w", sp.name, err)
	}
	if err := d.objs.SvcLaddrs.Put(slot, &sp.laddrs); err != nil {
		return fmt.Errorf("write local addresses for %s: %w", sp.name, err)
	}
	// The switch: from here packets use the new slot.
	if err := d.objs.Services.Put(&sp.key, &balancerSvcRef{Id: sp.id, Gen: gen}); err != nil {
		return fmt.Errorf("switch service %s: %w", sp.name, err)
	}
	if err := d.objs.SvcLive.Put(sp.id, &balancerSvcLiveVal{Key: sp.key, Gen: gen}); err != nil {
		return fmt.Errorf("switch service %s: %w", sp.name, err)
	}
	if ok && cur.key != sp.key {
		if err := deleteIgnoringMissing(d.objs.Services, cur.key); err != nil {
			return fmt.Errorf("remove service %s: %w", cur.name, err)
		}
	}
	d.applied[sp.id] = appliedService{key: sp.key, gen: gen, meta: sp.meta, laddrs: sp.laddrs, table: sp.table, name: sp.name}
	return nil
}

// vipFilterBits sizes vip_filter (VIP_FILTER_BITS in consts.h).
const vipFilterBits = 10

// vipSlot is the vip_filter slot of a 16-byte address, as the program's
// vip_hash computes it.
func vipSlot(a [16]byte) uint32 {
	w := func(i int) uint32 { return binary.NativeEndian.Uint32(a[i*4:]) }
	return ((w(0) ^ w(1) ^ w(2) ^ w(3)) * 0x9E3779B1) >> (32 - vipFilterBits)
}

// applyVIPFilter sets the vip_filter slots of the services' addresses
// (fwmark services have none) and clears the others.
func (d *Dataplane) applyVIPFilter(p plan) error {
	want := map[uint32]bool{}
	for _, sp := range p.services {
		if sp.key.Proto != 0 {
			want[vipSlot(sp.key.Addr)] = true
		}
	}
	for slot := uint32(0); slot < 1<<vipFilterBits; slot++ {
		had, known := d.vipSlots[slot]
		if d.vipSlots != nil && (had == want[slot] || !known && !want[slot]) {
			continue
		}
		v := uint32(0)
		if want[slot] {
			v = 1
		}
		if err := d.objs.VipFilter.Put(slot, v); err != nil {
			return fmt.Errorf("write VIP filter: %w", err)
		}
	}
	d.vipSlots = want
	return nil
}

// applyLocalAddrs makes local_addrs hold exactly the FullNAT services'
// local addresses. It reads the map rather than remembering it, so state a
// restarted govs adopted is corrected too.
func (d *Dataplane) applyLocalAddrs(s State) error {
	want := map[balancerSvcKey]bool{}
	for _, svc := range s.Services {
		for _, a := range svc.LocalAddrs {
			want[balancerSvcKey{Addr: addr16(a), Family: family(a)}] = true
		}
	}
	var k balancerSvcKey
	var v uint8
	var stale []balancerSvcKey
	it := d.objs.LocalAddrs.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
		delete(want, k)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read local addresses: %w", err)
	}
	for i := range stale {
		if err := deleteIgnoringMissing(d.objs.LocalAddrs, &stale[i]); err != nil {
			return fmt.Errorf("remove local address: %w", err)
		}
	}
	for k := range want {
		if err := d.objs.LocalAddrs.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("add local address: %w", err)
		}
	}
	return nil
}

// resetCounters zeroes the counters of ids that were just (re)assigned, so
// a new service or real does not inherit a predecessor's numbers.
func (d *Dataplane) resetCounters(p plan) error {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("count possible CPUs: %w", err)
	}
	for _, id := range p.newSvcIDs {
		if err := d.objs.SvcCounters.Put(id, make([]balancerSvcStats, ncpu)); err != nil {
			return fmt.Errorf("reset service counters %d: %w", id, err)
		}
		if err := d.objs.RrPos.Put(id, make([]uint32, ncpu)); err != nil {
			return fmt.Errorf("reset rr position %d: %w", id, err)
		}
	}
	for _, id := range p.newRealIDs {
		if err := d.objs.RealCounters.Put(id, make([]balancerRealStats, ncpu)); err != nil {
			return fmt.Errorf("reset real counters %d: %w", id, err)
		}
		if err := d.objs.ActiveConns.Put(id, int64(0)); err != nil {
			return fmt.Errorf("reset active connections %d: %w", id, err)
		}
		if err := d.objs.ExpiredConns.Put(id, int64(0)); err != nil {
			return fmt.Errorf("reset expired connections %d: %w", id, err)
		}
	}
	return nil
}

func deleteIgnoringMissing(m *ebpf.Map, key any) error {
	if err := m.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}
