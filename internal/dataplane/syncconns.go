package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
)

// Conn is one connection-table entry in terms another director
// understands: real servers by address, since ids are local.
type Conn struct {
	Protocol Protocol
	Client   netip.AddrPort
	// VIP is the destination the client used (its port may differ from
	// the service's when the service is an any-port one).
	VIP  netip.AddrPort
	Real netip.Addr
	// LastSeen is when the connection last carried a packet, to the
	// precision the program refreshes it (about a second).
	LastSeen time.Time
	// Closing is set once a FIN or RST was seen (the shorter timeout
	// applies).
	Closing bool
	// Embryonic is set while only the client's SYN was seen (IPVS's
	// SYN_RECV): the flow lives in the embryonic-flow table until the
	// client's next packet. Connection sync leaves these out, and
	// InsertConnections ignores the field.
	Embryonic bool
	// Expires is how long the entry lives on without packets (filled by
	// Connections; ignored by InsertConnections).
	Expires time.Duration
}

// Connections returns the connection table's entries whose service and
// real server are known (entries of a service removed since are left
// out).
func (d *Dataplane) Connections() ([]Conn, error) {
	var out []Conn
	err := d.EachConnection(func(n int, c Conn) {
		if out == nil {
			out = make([]Conn, 0, n)
		}
		out = append(out, c)
	})
	return out, err
}

// EachConnection calls fn with every entry Connections returns, without
// holding them all: a scan of a table of 200,000 connections that keeps
// only what it needs of each costs a fraction of the memory. n is a guess
// of the number of entries (the last scan's). fn runs with the data
// plane's lock held: it must not call the data plane.
func (d *Dataplane) EachConnection(fn func(n int, c Conn)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	count, err := d.eachConnection(d.realAddrsLocked(), d.appliedIDsLocked(), d.lastConns, fn)
	if err == nil {
		d.lastConns = count
	}
	return err
}

// StreamConnections is EachConnection for a reader that may be slow (an
// HTTP client): the data plane's lock is held only to copy the id maps, not
// while fn runs, so a reader cannot hold up Apply. Entries that change
// meanwhile may be missed or seen twice, as with any walk of a live table.
func (d *Dataplane) StreamConnections(fn func(c Conn)) error {
	d.mu.Lock()
	realAddr, svcs, n := d.realAddrsLocked(), d.appliedIDsLocked(), d.lastConns
	d.mu.Unlock()
	_, err := d.eachConnection(realAddr, svcs, n, func(_ int, c Conn) { fn(c) })
	return err
}

func (d *Dataplane) appliedIDsLocked() map[uint32]bool {
	out := make(map[uint32]bool, len(d.applied))
	for id := range d.applied {
		out[id] = true
	}
	return out
}

func (d *Dataplane) eachConnection(realAddr map[uint32]netip.Addr, svcs map[uint32]bool, sizeHint int, fn func(n int, c Conn)) (int, error) {
	mono, err := d.monotonicNanos()
	if err != nil {
		return 0, err
	}
	wall := time.Now()
	count := 0
	err = d.eachConn(func(k *balancerFlow, v *balancerConn, embryo bool) {
		ra, ok := realAddr[v.RealId]
		if !ok {
			return
		}
		if !svcs[v.SvcId] {
			return
		}
		c := Conn{
			Protocol:  Protocol(k.Proto),
			Client:    netip.AddrPortFrom(addrOf(k.Src, k.Family), htons(k.Sport)),
			VIP:       netip.AddrPortFrom(addrOf(k.Dst, k.Family), htons(k.Dport)),
			Real:      ra,
			LastSeen:  wall,
			Closing:   v.Flags&connFlagFin != 0,
			Embryonic: embryo,
		}
		if mono > v.LastNs {
			c.LastSeen = wall.Add(-time.Duration(mono - v.LastNs))
		}
		c.Expires = max(d.idleTimeout(c)-wall.Sub(c.LastSeen), 0)
		count++
		fn(sizeHint, c)
	})
	return count, err
}

// idleTimeout is how long connection c lives without packets here.
func (d *Dataplane) idleTimeout(c Conn) time.Duration {
	idle := d.timeouts()
	switch {
	case c.Protocol == UDP:
		return idle.UDP
	case c.Embryonic:
		return embryoTimeout
	case c.Closing:
		return idle.TCPFin
	}
	return idle.TCP
}

// InsertConnections adds connections learnt from another director, so
// that their packets keep going to the same real server here. An entry
// this director already has wins; connections of services or real servers
// this director does not have are skipped. Inserted entries are not
// counted as active for lc/wlc (they are not this director's scheduling
// decisions). A connection inserted before is refreshed: its last-seen
// time moves forward.
func (d *Dataplane) InsertConnections(conns []Conn) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.insertConnsLocked(conns)
}

func (d *Dataplane) insertConnsLocked(conns []Conn) (int, error) {
	mono, err := d.monotonicNanos()
	if err != nil {
		return 0, err
	}
	wall := time.Now()
	keys := make([]balancerFlow, 0, len(conns))
	vals := make([]balancerConn, 0, len(conns))
	for _, c := range conns {
		svc, id, ok := d.localService(c.VIP, c.Protocol)
		if !ok {
			continue
		}
		rid, ok := d.ids.real[realKey{svc: svc, addr: c.Real.Unmap()}]
		if !ok {
			continue
		}
		if _, ok := d.realsSet[rid]; !ok {
			continue
		}
		cl, vip := c.Client.Addr().Unmap(), c.VIP.Addr().Unmap()
		if cl.Is4() != vip.Is4() {
			continue
		}
		key := balancerFlow{
			Src: addr16(cl), Dst: addr16(vip),
			Sport: htons(c.Client.Port()), Dport: htons(c.VIP.Port()),
			Proto: uint8(c.Protocol), Family: family(vip),
		}
		val := balancerConn{RealId: rid, SvcId: id, LastNs: mono, Flags: connFlagSynced}
		if age := wall.Sub(c.LastSeen); age > 0 {
			// An entry past its idle timeout is expired: not inserted.
			// (Stored as a time before this machine booted it would look
			// fresh to a director up for less than the timeout.)
			if age >= d.idleTimeout(c) {
				continue
			}
			val.LastNs = mono - min(uint64(age), mono)
		}
		if c.Closing {
			val.Flags |= connFlagFin
		}
		// A flow whose SYN this director scheduled is its own: the
		// program follows the embryo, and promotes it on the next packet.
		var embryo balancerConn
		if d.objs.Embryos.Lookup(&key, &embryo) == nil {
			continue
		}
		if r := d.realsSet[rid]; r.Flags&realFlagNAT != 0 {
			val.Flags |= connFlagNATLearn
		}
		if err := d.insertNATBackLocked(key, val); err != nil {
			return 0, fmt.Errorf("insert NAT reply entry of %s %s -> %s: %w", c.Protocol, c.Client, c.VIP, err)
		}
		keys, vals = append(keys, key), append(vals, val)
	}
	return d.insertNewLocked(keys, vals)
}

// insertNewLocked inserts entries; one that exists already is refreshed.
// (One syscall each: the kernel's batch update takes no BPF_NOEXIST, and
// an entry this director made must not be overwritten.)
func (d *Dataplane) insertNewLocked(keys []balancerFlow, vals []balancerConn) (int, error) {
	inserted := 0
	for i := range keys {
		err := d.objs.Conns.Update(&keys[i], &vals[i], ebpf.UpdateNoExist)
		switch {
		case err == nil:
			inserted++
		case errors.Is(err, ebpf.ErrKeyExist):
			if err := d.refreshSynced(&keys[i], vals[i]); err != nil {
				return inserted, fmt.Errorf("refresh connection: %w", err)
			}
		default:
			return inserted, fmt.Errorf("insert connection: %w", err)
		}
	}
	return inserted, nil
}

// insertNATBackLocked gives a connection learnt from elsewhere (another
// director, or an older layout's tables) to a NAT real server the entry
// its replies need, unless the program has one. Where the client is (its
// router's MAC and the interface) is not known here: the program learns it
// from the client's next packet and drops replies until then (counted as
// NATUnlearnt), which the client's and server's retransmissions cover.
func (d *Dataplane) insertNATBackLocked(key balancerFlow, c balancerConn) error {
	r, ok := d.realsSet[c.RealId]
	if !ok || r.Flags&realFlagNAT == 0 {
		return nil
	}
	port := r.Port
	if port == 0 {
		port = key.Dport
	}
	back := balancerFlow{Src: r.Addr, Dst: key.Src, Sport: port, Dport: key.Sport, Proto: key.Proto, Family: key.Family}
	val := balancerNatBack{Vaddr: key.Dst, Vport: key.Dport, SvcId: c.SvcId, RealId: c.RealId, LastNs: c.LastNs}
	if err := d.objs.NatBacks.Update(&back, &val, ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
		return err
	}
	return nil
}

// refreshSynced moves a synced entry's last-seen time forward, so a
// connection that stays busy on the other director does not time out
// here. Entries this director scheduled itself are left alone.
func (d *Dataplane) refreshSynced(key *balancerFlow, val balancerConn) error {
	var cur balancerConn
	if err := d.objs.Conns.Lookup(key, &cur); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		return err
	}
	if cur.Flags&connFlagSynced == 0 || cur.SvcId != val.SvcId || val.LastNs <= cur.LastNs {
		return nil
	}
	cur.LastNs = val.LastNs
	cur.RealId = val.RealId
	cur.Flags |= val.Flags & connFlagFin
	if err := d.objs.Conns.Update(key, &cur, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return nil
}

// connBatch is how many connection-table entries one batch syscall reads.
const connBatch = 4096

// eachConn calls fn for every connection-table entry, then for every
// embryonic-flow table entry (embryo set).
func (d *Dataplane) eachConn(fn func(k *balancerFlow, v *balancerConn, embryo bool)) error {
	if err := eachFlow(d.objs.Conns, func(k *balancerFlow, v *balancerConn) { fn(k, v, false) }); err != nil {
		return err
	}
	return eachFlow(d.objs.Embryos, func(k *balancerFlow, v *balancerConn) { fn(k, v, true) })
}

// eachFlow calls fn for every entry of a flow table, reading it in
// batches: one lookup per entry costs microseconds, too much for a table
// of 262144 entries read five times a second. Entries the program adds or
// removes meanwhile may be seen or not.
func eachFlow(m *ebpf.Map, fn func(*balancerFlow, *balancerConn)) error {
	keys := make([]balancerFlow, connBatch)
	vals := make([]balancerConn, connBatch)
	var cursor ebpf.MapBatchCursor
	for first := true; ; first = false {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		for i := range n {
			fn(&keys[i], &vals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if first && n == 0 && errors.Is(err, ebpf.ErrNotSupported) {
			break // kernels before 5.6: one entry at a time
		}
		if err != nil {
			return fmt.Errorf("read connection table: %w", err)
		}
	}
	var (
		k balancerFlow
		v balancerConn
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		fn(&k, &v)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate connection table: %w", err)
	}
	return nil
}

// localService finds the service a packet to vip would hit, as the
// program does: the exact port first, then an any-port service.
func (d *Dataplane) localService(vip netip.AddrPort, proto Protocol) (serviceKey, uint32, bool) {
	a := vip.Addr().Unmap()
	for _, port := range []uint16{vip.Port(), 0} {
		k := serviceKey{Addr: a, Port: port, Proto: proto}
		if id, ok := d.ids.svc[k]; ok {
			if _, ok := d.applied[id]; ok {
				return k, id, true
			}
		}
	}
	return serviceKey{}, 0, false
}

func addrOf(b [16]byte, fam uint8) netip.Addr {
	if fam == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}
