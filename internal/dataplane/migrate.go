package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// Migration across layouts. Pins of another layout version cannot be
// adopted, but their connection and persistence tables can be carried
// over: each pinned map carries the BTF of its key and value, so the old
// entries are read by member name (a member keeps its name only while it
// keeps its meaning: rename it when the meaning changes, and migration
// drops it). Local ids are translated through the old services and reals
// maps to addresses, and from addresses to this data plane's ids once a
// State is applied. Meanwhile the old program goes on forwarding through
// its pinned XDP links, which Attach then switches to this program.

// migration is what Open took from the pins of another layout.
type migration struct {
	from  string // the layout directory's name
	maps  map[string]*ebpf.Map
	links map[int]link.Link
	// applied is set once a State was applied and the tables inserted.
	applied bool
}

// migrateMaps are the old maps migration reads.
var migrateMaps = []string{"services", "reals", "conns", "persist"}

// openMigration opens what migration needs in an old layout's pin
// directory: its maps and XDP links. Missing maps mean nothing to carry.
func openMigration(dir string) (*migration, error) {
	m := &migration{from: filepath.Base(dir), maps: map[string]*ebpf.Map{}, links: map[int]link.Link{}}
	for _, name := range migrateMaps {
		mp, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("open old map %s: %w", name, err)
		}
		m.maps[name] = mp
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		ifs, ok := strings.CutPrefix(e.Name(), "link-")
		if !ok {
			continue
		}
		ifindex, err := strconv.Atoi(ifs)
		if err != nil {
			continue
		}
		l, err := link.LoadPinnedLink(filepath.Join(dir, e.Name()), nil)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("open old xdp link %s: %w", e.Name(), err)
		}
		m.links[ifindex] = l
	}
	return m, nil
}

// close releases the old maps and any old link not taken over (which
// detaches it: its interface is no longer one this data plane serves).
func (m *migration) close() {
	for _, mp := range m.maps {
		_ = mp.Close()
	}
	for _, l := range m.links {
		_ = l.Close()
	}
	m.maps, m.links = nil, nil
}

// record is one map entry decoded through its BTF.
type record struct {
	st  *btf.Struct
	raw []byte
}

func (r record) member(name string) (btf.Member, int, bool) {
	for _, mb := range r.st.Members {
		if mb.Name == name {
			size, err := btf.Sizeof(mb.Type)
			if err != nil || int(mb.Offset.Bytes())+size > len(r.raw) {
				return btf.Member{}, 0, false
			}
			return mb, size, true
		}
	}
	return btf.Member{}, 0, false
}

// uint reads an integer member (host byte order, as the program stores
// it); ok is false when the layout lacks it.
func (r record) uint(name string) (uint64, bool) {
	mb, size, ok := r.member(name)
	if !ok {
		return 0, false
	}
	b := r.raw[mb.Offset.Bytes():][:size]
	switch size {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.NativeEndian.Uint16(b)), true
	case 4:
		return uint64(binary.NativeEndian.Uint32(b)), true
	case 8:
		return binary.NativeEndian.Uint64(b), true
	}
	return 0, false
}

// addr16 reads a 16-byte address member.
func (r record) addr16(name string) ([16]byte, bool) {
	mb, size, ok := r.member(name)
	if !ok || size != 16 {
		return [16]byte{}, false
	}
	return [16]byte(r.raw[mb.Offset.Bytes():][:16]), true
}

// mapLayout finds the key and value structs of a pinned map by name in its
// BTF.
func mapLayout(m *ebpf.Map, key, value string) (*btf.Struct, *btf.Struct, error) {
	info, err := m.Info()
	if err != nil {
		return nil, nil, fmt.Errorf("map info: %w", err)
	}
	id, ok := info.BTFID()
	if !ok {
		return nil, nil, errors.New("map has no BTF")
	}
	h, err := btf.NewHandleFromID(id)
	if err != nil {
		return nil, nil, fmt.Errorf("map BTF: %w", err)
	}
	defer h.Close()
	spec, err := h.Spec(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("map BTF: %w", err)
	}
	var k, v *btf.Struct
	if key != "" {
		if err := spec.TypeByName(key, &k); err != nil {
			return nil, nil, fmt.Errorf("struct %s: %w", key, err)
		}
	}
	if err := spec.TypeByName(value, &v); err != nil {
		return nil, nil, fmt.Errorf("struct %s: %w", value, err)
	}
	return k, v, nil
}

// eachRecord calls fn for every entry of m, decoded with key and value
// structs (key nil: an array or a map with scalar keys, passed raw).
func eachRecord(m *ebpf.Map, kst, vst *btf.Struct, fn func(k, v record)) error {
	var kb, vb []byte
	it := m.Iterate()
	for it.Next(&kb, &vb) {
		fn(record{kst, kb}, record{vst, vb})
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read old map %s: %w", m.String(), err)
	}
	return nil
}

// reals lists the old layout's real servers with where their frames went,
// for AdoptedReals.
func (m *migration) reals(log *slog.Logger) []Real {
	_, rst, err := mapLayout(m.maps["reals"], "", "real")
	if err != nil {
		log.Warn("cannot read the old layout's real servers", "err", err)
		return nil
	}
	var out []Real
	err = eachRecord(m.maps["reals"], nil, rst, func(_, v record) {
		addr, ok1 := v.addr16("addr")
		flags, ok2 := v.uint("flags")
		ifindex, ok3 := v.uint("ifindex")
		weight, ok4 := v.uint("weight")
		mb, size, ok5 := v.member("dst_mac")
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && size == 6) || addr == ([16]byte{}) {
			return
		}
		v6 := [12]byte(addr[4:]) != [12]byte{}
		if uint32(flags)&realFlagTUN != 0 {
			v6 = uint32(flags)&realFlagV6 != 0
		}
		out = append(out, Real{Addr: addrOf(addr, familyOf(v6)), MAC: net.HardwareAddr(slices.Clone(v.raw[mb.Offset.Bytes():][:6])),
			Ifindex: int(ifindex), Weight: uint32(weight)})
	})
	if err != nil {
		log.Warn("cannot read the old layout's real servers", "err", err)
	}
	return out
}

// oldState is the old layout's tables in terms of addresses.
type oldState struct {
	conns   []Conn
	persist []persistEntry
	// total and unreadable count entries seen and those whose service or
	// real server the old maps do not name.
	totalConns, totalPersist, unreadable int
}

// persistEntry is one persistence entry by address.
type persistEntry struct {
	svc    serviceKey
	client [16]byte // masked, as stored
	family uint32
	real   netip.Addr
	lastNs uint64
}

// read decodes the old layout's connection and persistence tables; mono
// is the program's clock now.
func (m *migration) read(mono uint64) (oldState, error) {
	var st oldState
	// Old ids: services by id, real servers' addresses by id.
	kst, vst, err := mapLayout(m.maps["services"], "svc_key", "svc_ref")
	if err != nil {
		return st, fmt.Errorf("services: %w", err)
	}
	svcs := map[uint32]serviceKey{}
	if err := eachRecord(m.maps["services"], kst, vst, func(k, v record) {
		addr, ok1 := k.addr16("addr")
		port, ok2 := k.uint("port")
		proto, ok3 := k.uint("proto")
		fam, ok4 := k.uint("family")
		id, ok5 := v.uint("id")
		if ok1 && ok2 && ok3 && ok4 && ok5 {
			svcs[uint32(id)] = serviceKey{Addr: addrOf(addr, uint8(fam)), Port: htons(uint16(port)), Proto: Protocol(proto)}
		}
	}); err != nil {
		return st, err
	}
	_, rst, err := mapLayout(m.maps["reals"], "", "real")
	if err != nil {
		return st, fmt.Errorf("reals: %w", err)
	}
	type oldReal struct {
		addr  [16]byte
		flags uint32
	}
	reals := map[uint32]oldReal{}
	if err := eachRecord(m.maps["reals"], nil, rst, func(k, v record) {
		addr, ok1 := v.addr16("addr")
		flags, ok2 := v.uint("flags")
		if ok1 && ok2 && len(k.raw) == 4 && (addr != [16]byte{}) {
			reals[binary.NativeEndian.Uint32(k.raw)] = oldReal{addr, uint32(flags)}
		}
	}); err != nil {
		return st, err
	}
	realAddr := func(id uint32, v6 bool) (netip.Addr, bool) {
		r, ok := reals[id]
		if !ok {
			return netip.Addr{}, false
		}
		if r.flags&realFlagTUN != 0 {
			v6 = r.flags&realFlagV6 != 0
		}
		return addrOf(r.addr, familyOf(v6)), true
	}

	wall := time.Now()
	kst, vst, err = mapLayout(m.maps["conns"], "flow", "conn")
	if err != nil {
		return st, fmt.Errorf("conns: %w", err)
	}
	if err := eachRecord(m.maps["conns"], kst, vst, func(k, v record) {
		st.totalConns++
		src, ok1 := k.addr16("src")
		dst, ok2 := k.addr16("dst")
		sport, ok3 := k.uint("sport")
		dport, ok4 := k.uint("dport")
		proto, ok5 := k.uint("proto")
		fam, ok6 := k.uint("family")
		rid, ok7 := v.uint("real_id")
		last, ok8 := v.uint("last_ns")
		flags, ok9 := v.uint("flags")
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
			st.unreadable++
			return
		}
		ra, ok := realAddr(uint32(rid), fam == 6)
		if !ok {
			st.unreadable++
			return
		}
		c := Conn{
			Protocol: Protocol(proto),
			Client:   netip.AddrPortFrom(addrOf(src, uint8(fam)), htons(uint16(sport))),
			VIP:      netip.AddrPortFrom(addrOf(dst, uint8(fam)), htons(uint16(dport))),
			Real:     ra,
			LastSeen: wall,
			Closing:  uint32(flags)&connFlagFin != 0,
		}
		if mono > last {
			c.LastSeen = wall.Add(-time.Duration(mono - last))
		}
		st.conns = append(st.conns, c)
	}); err != nil {
		return st, err
	}
	kst, vst, err = mapLayout(m.maps["persist"], "persist_key", "persist_val")
	if err != nil {
		return st, fmt.Errorf("persist: %w", err)
	}
	if err := eachRecord(m.maps["persist"], kst, vst, func(k, v record) {
		st.totalPersist++
		addr, ok1 := k.addr16("addr")
		sid, ok2 := k.uint("svc_id")
		fam, ok3 := k.uint("family")
		rid, ok4 := v.uint("real_id")
		last, ok5 := v.uint("last_ns")
		svc, ok6 := svcs[uint32(sid)]
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
			st.unreadable++
			return
		}
		ra, ok := realAddr(uint32(rid), svc.Addr.Is6())
		if !ok {
			st.unreadable++
			return
		}
		st.persist = append(st.persist, persistEntry{svc: svc, client: addr, family: uint32(fam), real: ra, lastNs: last})
	}); err != nil {
		return st, err
	}
	return st, nil
}

// migrateLocked carries the old layout's tables into this data plane's
// maps. It runs after each Apply and before an old XDP link is switched
// over (the old program may have added entries meanwhile); entries already
// here win. Once a State was applied and every old link taken over, the
// old maps are let go.
func (d *Dataplane) migrateLocked() error {
	m := d.migration
	if m == nil || len(d.applied) == 0 {
		return nil
	}
	mono, err := d.monotonicNanos()
	if err != nil {
		return err
	}
	old, err := m.read(mono)
	if err != nil {
		d.log.Warn("cannot read the old layout's tables: their connections are lost", "layout", m.from, "err", err)
		m.close()
		d.migration = nil
		return nil
	}
	conns, err := d.insertConnsLocked(old.conns)
	if err != nil {
		return fmt.Errorf("migrate connections: %w", err)
	}
	persist, err := d.insertPersistLocked(old.persist)
	if err != nil {
		return fmt.Errorf("migrate persistence: %w", err)
	}
	if !m.applied {
		d.log.Info("migrated pinned state of another layout", "layout", m.from,
			"connections", conns, "of", old.totalConns, "persistence", persist, "persistence_of", old.totalPersist,
			"dropped", old.totalConns+old.totalPersist-conns-persist,
			"dropped_why", "expired, unreadable in the old layout, or of a service or real server not in this configuration")
	}
	m.applied = true
	if len(m.links) == 0 {
		m.close()
		d.migration = nil
	}
	return nil
}

// insertPersistLocked adds persistence entries by address; ones already
// here win.
func (d *Dataplane) insertPersistLocked(entries []persistEntry) (int, error) {
	n := 0
	for _, e := range entries {
		id, ok := d.ids.svc[e.svc]
		if !ok {
			continue
		}
		if _, ok := d.applied[id]; !ok {
			continue
		}
		rid, ok := d.ids.real[realKey{svc: e.svc, addr: e.real.Unmap()}]
		if !ok {
			continue
		}
		key := balancerPersistKey{Addr: e.client, SvcId: id, Family: e.family}
		val := balancerPersistVal{RealId: rid, LastNs: e.lastNs}
		err := d.objs.Persist.Update(&key, &val, ebpf.UpdateNoExist)
		if err == nil {
			n++
			continue
		}
		if !errors.Is(err, ebpf.ErrKeyExist) {
			return n, fmt.Errorf("insert persistence entry: %w", err)
		}
	}
	return n, nil
}

// takeOldLink switches the old layout's XDP link of ifindex, if any, to
// this program, first carrying over what the old program added to its
// tables. It reports whether there was one.
func (d *Dataplane) takeOldLink(ifindex int) (link.Link, bool, error) {
	m := d.migration
	if m == nil {
		return nil, false, nil
	}
	l, ok := m.links[ifindex]
	if !ok {
		return nil, false, nil
	}
	if err := d.migrateLocked(); err != nil {
		return nil, false, err
	}
	if err := l.Update(d.objs.GovsXdp); err != nil {
		return nil, false, fmt.Errorf("switch the old layout's xdp link to the new program: %w", err)
	}
	if err := l.Pin(d.linkPin(ifindex)); err != nil {
		return nil, false, fmt.Errorf("pin the taken-over xdp link: %w", err)
	}
	delete(m.links, ifindex)
	if m.applied && len(m.links) == 0 {
		m.close()
		d.migration = nil
	}
	return l, true, nil
}

// closeMigration lets go of a migration still open (Close, Release).
func (d *Dataplane) closeMigration() {
	if d.migration != nil {
		d.migration.close()
		d.migration = nil
	}
}
