package desired

import (
	"net/netip"
	"slices"
	"time"

	"github.com/govs/govs/internal/announce"
)

// BGP is the plan's BGP speaker (the govs_bgp block): whom it peers with
// and which VIPs it may announce. Which of them it announces at a moment
// is the director's (health and drain decide).
type BGP struct {
	RouterID   netip.Addr
	LocalAS    uint32
	ListenPort int
	Neighbors  []BGPNeighbor
	// Communities, LocalPref and MED go on every announcement (LocalPref
	// only to iBGP neighbors, as BGP has it); nil: not set.
	Communities []uint32
	LocalPref   *uint32
	MED         *uint32
	// VIPs are the addresses of the virtual servers (not fwmark ones),
	// announced as /32 and /128.
	VIPs []netip.Addr
	// Damping holds flapping VIPs down (hold_down, max_hold_down,
	// max_updates).
	Damping announce.Policy
	// SyncWait bounds how long connection_sync's first dump is waited for
	// before announcing.
	SyncWait time.Duration
	// GracefulRestart is the restart time the routers are asked to keep
	// the routes for while govs restarts (0: graceful restart off).
	GracefulRestart time.Duration
}

// BGPNeighbor is one BGP neighbor.
type BGPNeighbor struct {
	Addr                netip.Addr
	RemoteAS            uint32
	Password            string
	HoldTime, Keepalive time.Duration
	Multihop            int
	Passive             bool
	// BFD is nil unless the neighbor has bfd: off by default.
	BFD *BFD
}

// BFD is BFD with a neighbor.
type BFD struct {
	Interval   time.Duration
	Multiplier int
}

// bgp plans the govs_bgp block.
func (p *planner) bgp() {
	g := p.cfg.BGP
	if g == nil {
		return
	}
	b := &BGP{RouterID: g.RouterID, LocalAS: g.LocalAS, ListenPort: g.ListenPort, Communities: slices.Clone(g.Communities),
		Damping: announce.Policy{HoldDown: g.HoldDown, MaxHoldDown: g.MaxHoldDown, MaxUpdates: g.MaxUpdates}.Resolved(), SyncWait: g.SyncWait, GracefulRestart: g.GracefulRestart}
	if g.LocalPrefSet {
		v := g.LocalPref
		b.LocalPref = &v
	}
	if g.MEDSet {
		v := g.MED
		b.MED = &v
	}
	for _, n := range g.Neighbors {
		nb := BGPNeighbor{Addr: n.Addr, RemoteAS: n.RemoteAS, Password: n.Password,
			HoldTime: n.HoldTime, Keepalive: n.Keepalive, Multihop: n.Multihop, Passive: n.Passive}
		if n.BFD != nil {
			nb.BFD = &BFD{Interval: n.BFD.Interval, Multiplier: n.BFD.Multiplier}
			p.warnf(n.Keywords.Of("bfd"), "bfd", "neighbor %s: bfd is on: GoBGP v4.8's BFD has torn down re-established sessions after a 1 s pause (docs/bgp.md)", n.Addr)
		}
		b.Neighbors = append(b.Neighbors, nb)
	}
	for _, s := range p.plan.Services {
		if s.Key.Fwmark == 0 && !slices.Contains(b.VIPs, s.Key.Addr) {
			b.VIPs = append(b.VIPs, s.Key.Addr)
		}
	}
	slices.SortFunc(b.VIPs, func(x, y netip.Addr) int { return x.Compare(y) })
	for _, v := range b.VIPs {
		if !slices.ContainsFunc(b.Neighbors, func(n BGPNeighbor) bool { return n.Addr.Is4() == v.Is4() }) {
			p.warnf(g.Pos, "govs_bgp", "govs_bgp: no neighbor of the family of VIP %s; it is not announced", v)
		}
	}
	p.plan.BGP = b
}

// BGPPrefix is the announcement of VIP v: its host route.
func BGPPrefix(v netip.Addr) netip.Prefix { return netip.PrefixFrom(v, v.BitLen()) }
