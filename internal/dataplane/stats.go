package dataplane

import (
	"fmt"
	"net/netip"
)

// Counters count forwarded traffic.
type Counters struct {
	Packets, Bytes, NewConns uint64
	// OutPackets and OutBytes are NAT replies sent back to clients (IPVS's
	// outgoing counters; DR and TUN replies bypass the director).
	OutPackets, OutBytes uint64
}

// Drops count a service's dropped packets by reason.
type Drops struct {
	NoReal      uint64 // no real server with weight > 0
	RealMissing uint64 // table named a real with no entry (transient)
	NoTable     uint64 // service slot without metadata (transient)
	Encap       uint64 // TUN encapsulation or rewrite failed
	Redirect    uint64 // egress interface not in the devmap
}

// RealStats are one real server's counters within a service.
type RealStats struct {
	Addr   netip.Addr
	Weight uint32
	Counters
	// ActiveConns are the connections lc/wlc count: created and not yet
	// closed by FIN/RST or expired (see ExpireConnections).
	ActiveConns int64
	// PersistConns are the clients (persistence templates) persistence
	// keeps on this real server now (ipvsadm's PersistConn).
	PersistConns uint64
}

// ServiceStats are one service's counters.
type ServiceStats struct {
	Service Service
	Counters
	Drops Drops
	Reals []RealStats
}

// GlobalStats count packets the program passed to the kernel, and tracked
// ICMP errors and fragments it forwarded.
type GlobalStats struct {
	PassNotIP, PassMalformed, PassNoService, PassFragmentMiss, PassICMP, PassIPv6Ext uint64
	// PassOtherHost counts frames not unicast to the ingress interface:
	// for another MAC, broadcast or multicast.
	PassOtherHost                     uint64
	ICMPForwarded, FragmentsForwarded uint64
	// NATReplies are NAT real servers' replies rewritten back to the VIP
	// and sent towards the client; NATICMP are ICMP errors about NAT flows
	// translated on the way to the client; NATUnlearnt are replies dropped
	// because the flow (learnt by connection sync) has not yet seen a
	// client packet on this director, which tells where the client is.
	NATReplies, NATICMP, NATUnlearnt uint64
	// TunTooBig are TUN packets that would exceed the egress MTU once
	// encapsulated, answered with frag-needed / packet-too-big.
	TunTooBig uint64
	// FwmarkMiss are packets routed to the fwmark interface whose mark
	// (and family) no fwmark service has: dropped.
	FwmarkMiss uint64
	// FNATNoPort are new FullNAT connections dropped for want of a free
	// local port; FNATReplies are FullNAT replies sent back to clients.
	FNATNoPort, FNATReplies uint64
	// FNATUnknown are TCP and UDP packets to a local address and port no
	// FullNAT connection has (here): dropped, so the kernel does not reset
	// a connection another director made.
	FNATUnknown uint64
	// FlowsUntracked are new flows over the new-flow limit forwarded
	// without an entry (hash schedulers, DR and TUN); FlowsRefused are new
	// flows over it dropped because they need one.
	FlowsUntracked, FlowsRefused uint64
}

// Named returns the counters by a snake_case name each, for metrics and
// the status view.
func (g GlobalStats) Named() map[string]uint64 {
	return map[string]uint64{
		"pass_not_ip": g.PassNotIP, "pass_malformed": g.PassMalformed, "pass_no_service": g.PassNoService,
		"pass_fragment_miss": g.PassFragmentMiss, "pass_icmp": g.PassICMP, "pass_ipv6_ext": g.PassIPv6Ext,
		"pass_other_host": g.PassOtherHost, "icmp_forwarded": g.ICMPForwarded, "fragments_forwarded": g.FragmentsForwarded,
		"nat_replies": g.NATReplies, "nat_icmp": g.NATICMP, "nat_unlearnt": g.NATUnlearnt, "tun_too_big": g.TunTooBig,
		"fwmark_miss":  g.FwmarkMiss,
		"fnat_no_port": g.FNATNoPort, "fnat_replies": g.FNATReplies, "fnat_unknown": g.FNATUnknown,
		"new_flows_untracked": g.FlowsUntracked, "new_flows_refused": g.FlowsRefused,
	}
}

// globalCounters is G_MAX (bpf/consts.h).
const globalCounters = 19

// Stats is a snapshot of all counters, summed over CPUs.
type Stats struct {
	Services []ServiceStats
	Global   GlobalStats
	// ConnTableSize is the capacity of the connection table.
	ConnTableSize int
	// EmbryoTableSize is the capacity of the embryonic-flow table.
	EmbryoTableSize int
}

// Stats reads the counters of the services last applied.
func (d *Dataplane) Stats() (Stats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Stats{ConnTableSize: int(d.objs.Conns.MaxEntries()), EmbryoTableSize: int(d.objs.Embryos.MaxEntries())}
	persist, err := d.persistCounts()
	if err != nil {
		return st, err
	}
	for _, svc := range d.state.Services {
		id := d.ids.svc[svc.Key()]
		var per []balancerSvcStats
		if err := d.objs.SvcCounters.Lookup(id, &per); err != nil {
			return st, fmt.Errorf("read counters of %s: %w", svc, err)
		}
		ss := ServiceStats{Service: svc}
		for _, c := range per {
			ss.Packets += c.Packets
			ss.Bytes += c.Bytes
			ss.NewConns += c.NewConns
			ss.OutPackets += c.OutPackets
			ss.OutBytes += c.OutBytes
			ss.Drops.NoReal += c.Drops[0]
			ss.Drops.RealMissing += c.Drops[1]
			ss.Drops.NoTable += c.Drops[2]
			ss.Drops.Encap += c.Drops[3]
			ss.Drops.Redirect += c.Drops[4]
		}
		for _, r := range svc.Reals {
			rid := d.ids.real[realKey{svc.Key(), r.Addr}]
			rs, err := d.realStats(rid)
			if err != nil {
				return st, fmt.Errorf("read counters of %s real %s: %w", svc, r.Addr, err)
			}
			rs.Addr, rs.Weight, rs.PersistConns = r.Addr, r.Weight, persist[rid]
			ss.Reals = append(ss.Reals, rs)
		}
		st.Services = append(st.Services, ss)
	}
	g := make([]uint64, globalCounters)
	for i := range min(len(g), int(d.objs.GlobalStats.MaxEntries())) {
		var per []uint64
		if err := d.objs.GlobalStats.Lookup(uint32(i), &per); err != nil {
			return st, fmt.Errorf("read global counter %d: %w", i, err)
		}
		for _, v := range per {
			g[i] += v
		}
	}
	st.Global = GlobalStats{
		PassNotIP: g[0], PassMalformed: g[1], PassNoService: g[2], PassFragmentMiss: g[3],
		PassICMP: g[4], PassIPv6Ext: g[5], ICMPForwarded: g[6], FragmentsForwarded: g[7], PassOtherHost: g[8],
		NATReplies: g[9], NATUnlearnt: g[10], NATICMP: g[11], TunTooBig: g[12], FwmarkMiss: g[13], FNATNoPort: g[14], FNATReplies: g[15], FNATUnknown: g[16],
		FlowsUntracked: g[17], FlowsRefused: g[18],
	}
	return st, nil
}

// persistCounts counts the live persistence templates per real id: those
// used within their service's persistence_timeout. The table is read in
// batches (it holds at most PERSIST_TABLE_SIZE entries).
func (d *Dataplane) persistCounts() (map[uint32]uint64, error) {
	timeout := map[uint32]uint64{}
	for _, svc := range d.state.Services {
		if svc.PersistenceTimeout > 0 {
			timeout[d.ids.svc[svc.Key()]] = uint64(svc.PersistenceTimeout.Nanoseconds())
		}
	}
	out := map[uint32]uint64{}
	if len(timeout) == 0 {
		return out, nil
	}
	now, err := d.monotonicNanos()
	if err != nil {
		return nil, err
	}
	var k balancerPersistKey
	var v balancerPersistVal
	it := d.objs.Persist.Iterate()
	for it.Next(&k, &v) {
		if t, ok := timeout[k.SvcId]; ok && (now < v.LastNs || now-v.LastNs <= t) {
			out[v.RealId]++
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read persistence table: %w", err)
	}
	return out, nil
}

func (d *Dataplane) realStats(id uint32) (RealStats, error) {
	var rs RealStats
	var per []balancerRealStats
	if err := d.objs.RealCounters.Lookup(id, &per); err != nil {
		return rs, err
	}
	for _, c := range per {
		rs.Packets += c.Packets
		rs.Bytes += c.Bytes
		rs.NewConns += c.NewConns
		rs.OutPackets += c.OutPackets
		rs.OutBytes += c.OutBytes
	}
	var expired int64
	if err := d.objs.ActiveConns.Lookup(id, &rs.ActiveConns); err != nil {
		return rs, err
	}
	if err := d.objs.ExpiredConns.Lookup(id, &expired); err != nil {
		return rs, err
	}
	rs.ActiveConns = max(0, rs.ActiveConns-expired)
	return rs, nil
}
