package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// BGP is govs's own govs_bgp block (no keepalived has one): a BGP speaker
// announcing the virtual servers' VIPs, so that several active directors
// sit behind a router's ECMP (docs/bgp.md).
type BGP struct {
	Pos      Pos
	Keywords KeywordPos
	RouterID netip.Addr
	LocalAS  uint32
	// ListenPort is where govs accepts BGP sessions; -1 (the default):
	// it does not listen and connects to its neighbors itself.
	ListenPort  int
	Neighbors   []*BGPNeighbor
	Communities []uint32
	LocalPref   uint32
	MED         uint32
	// MEDSet and LocalPrefSet say whether they were written.
	MEDSet, LocalPrefSet bool
	// HoldDown and MaxHoldDown damp a flapping VIP: held down that long
	// after a health withdrawal, doubling per flap up to MaxHoldDown
	// (0: internal/announce's defaults). MaxUpdates caps a VIP's
	// announcements in a minute (0: the default).
	HoldDown, MaxHoldDown time.Duration
	MaxUpdates            int
	// SyncWait bounds how long a director waits for its peers' tables
	// (connection_sync) before it announces.
	SyncWait time.Duration
	// GracefulRestart is graceful_restart's restart time: how long the
	// routers keep this director's routes while govs restarts over a
	// pinned data plane (RFC 4724); 0: off.
	GracefulRestart time.Duration
	// Sync is connection_sync (resolve moves it to global_defs'
	// LVSSyncDaemon, with Mesh set).
	Sync *LVSSyncDaemon
}

// DefaultGracefulRestart is graceful_restart's restart time when none is
// given (GoBGP's and BIRD's default).
const DefaultGracefulRestart = 120 * time.Second

// DefaultSyncWait is how long a director with govs_bgp's connection_sync
// waits for a peer to send its table before it announces anyway (the
// first director of a group has no peer to answer).
const DefaultSyncWait = 10 * time.Second

// BGPNeighbor is a neighbor block of govs_bgp.
type BGPNeighbor struct {
	Pos      Pos
	Keywords KeywordPos
	Addr     netip.Addr
	RemoteAS uint32
	Password string
	// HoldTime and Keepalive are the session timers (default 90 s, and a
	// third of the hold time).
	HoldTime, Keepalive time.Duration
	// Multihop is the TTL of eBGP sessions to a neighbor that is not on a
	// connected network (0: directly connected).
	Multihop int
	// Passive waits for the neighbor to connect.
	Passive bool
	// BFD, when set, runs GoBGP's BFD with the neighbor: off unless
	// written (docs/bgp.md says why).
	BFD *BGPBFD
}

// BGPBFD is a neighbor's bfd keyword: BFD control packets every Interval,
// the session down after Multiplier of them are missed.
type BGPBFD struct {
	Interval   time.Duration
	Multiplier int
}

// BFD's defaults: 300 ms × 3, a failure seen within a second.
const (
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
)

// bgp reads the govs_bgp block.
func (b *builder) bgp(blk *node) {
	if !b.block(blk) {
		return
	}
	if b.cfg.BGP != nil {
		b.errorf(blk, "govs_bgp defined twice (first at %s)", b.cfg.BGP.Pos)
		return
	}
	g := &BGP{Pos: blk.Pos, ListenPort: -1, SyncWait: DefaultSyncWait}
	for _, n := range blk.Body {
		g.Keywords.add(n)
		switch n.Keyword {
		case "router_id":
			if b.leaf(n, 1, 1) {
				if a, ok := b.parseAddr(n, n.Args[0].Text); ok {
					if !a.Is4() {
						b.errorf(n, "router_id must be an IPv4 address (a 32-bit id), not %s", a)
					} else {
						g.RouterID = a
					}
				}
			}
		case "local_as":
			if v, ok := b.asn(n); ok {
				g.LocalAS = v
			}
		case "listen_port":
			if v, ok := b.intArg(n, 1, 65535); ok {
				g.ListenPort = v
			}
		case "community":
			if !b.leaf(n, 1, -1) {
				continue
			}
			for _, a := range n.Args {
				c, ok := parseCommunity(a.Text)
				if !ok {
					b.errorf(n, "invalid community '%s' (want ASN:VALUE, each 0..65535)", a.Text)
					continue
				}
				g.Communities = append(g.Communities, c)
			}
		case "local_pref":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				g.LocalPref, g.LocalPrefSet = uint32(v), true
			}
		case "med":
			if v, ok := b.intArg(n, 0, 1<<31-1); ok {
				g.MED, g.MEDSet = uint32(v), true
			}
		case "hold_down":
			if v, ok := b.timerArg(n, 0, time.Hour); ok {
				g.HoldDown = v
			}
		case "max_hold_down":
			if v, ok := b.timerArg(n, 0, 24*time.Hour); ok {
				g.MaxHoldDown = v
			}
		case "max_updates":
			if v, ok := b.intArg(n, 1, 1000); ok {
				g.MaxUpdates = v
			}
		case "graceful_restart":
			// graceful_restart [RESTART_TIME]: 120 s unless given.
			if !b.leaf(n, 0, 1) {
				continue
			}
			g.GracefulRestart = DefaultGracefulRestart
			if len(n.Args) == 1 {
				if v, ok := b.parseTimer(n, n.Args[0].Text, time.Second, 4095*time.Second); ok {
					g.GracefulRestart = v.Truncate(time.Second)
				}
			}
		case "sync_wait":
			if v, ok := b.timerArg(n, 0, time.Hour); ok {
				g.SyncWait = v
			}
		case "connection_sync":
			// Every director is active: all of them send their
			// connections and take the others' (docs/bgp.md).
			if sd, ok := b.syncDaemonArgs(n, n.Args[min(1, len(n.Args)):]); ok {
				sd.SyncID = max(sd.SyncID, 0)
				sd.Mesh = true
				g.Sync = sd
			}
		case "neighbor":
			if nb := b.bgpNeighbor(n); nb != nil {
				for _, o := range g.Neighbors {
					if o.Addr == nb.Addr {
						b.errorf(n, "neighbor %s defined twice (first at %s)", nb.Addr, o.Pos)
						nb = nil
						break
					}
				}
				if nb != nil {
					g.Neighbors = append(g.Neighbors, nb)
				}
			}
		default:
			b.unknown(n, "govs_bgp")
		}
	}
	if !g.RouterID.IsValid() {
		b.errorf(blk, "router_id is required")
	}
	if g.LocalAS == 0 {
		b.errorf(blk, "local_as is required")
	}
	if len(g.Neighbors) == 0 {
		b.errorf(blk, "at least one neighbor is required")
	}
	if g.MaxHoldDown > 0 && g.MaxHoldDown < g.HoldDown {
		b.d.Errorf(g.Keywords.Of("max_hold_down"), "max_hold_down", "max_hold_down %s is below hold_down %s", g.MaxHoldDown, g.HoldDown)
	}
	b.cfg.BGP = g
}

func (b *builder) bgpNeighbor(blk *node) *BGPNeighbor {
	if !b.block(blk) || len(blk.Args) != 1 {
		if blk.Block {
			b.errorf(blk, "expects one address: neighbor ADDR { ... }")
		}
		return nil
	}
	a, ok := b.parseAddr(blk, blk.Args[0].Text)
	if !ok {
		return nil
	}
	nb := &BGPNeighbor{Pos: blk.Pos, Addr: a, HoldTime: 90 * time.Second, Keepalive: 30 * time.Second}
	for _, n := range blk.Body {
		nb.Keywords.add(n)
		switch n.Keyword {
		case "remote_as":
			if v, ok := b.asn(n); ok {
				nb.RemoteAS = v
			}
		case "password":
			if b.leaf(n, 1, 1) {
				nb.Password = n.Args[0].Text
			}
		case "hold_time":
			// 0 (no keepalives) or at least 3 s (RFC 4271).
			if v, ok := b.intArg(n, 0, 65535); ok {
				if v > 0 && v < 3 {
					b.errorf(n, "hold_time %d: 0 or at least 3 seconds (RFC 4271)", v)
				} else {
					nb.HoldTime = time.Duration(v) * time.Second
				}
			}
		case "keepalive_interval":
			if v, ok := b.intArg(n, 1, 21845); ok {
				nb.Keepalive = time.Duration(v) * time.Second
			}
		case "multihop":
			if v, ok := b.intArg(n, 1, 255); ok {
				nb.Multihop = v
			}
		case "passive":
			if b.leaf(n, 0, 0) {
				nb.Passive = true
			}
		case "bfd":
			if f, ok := b.bfdArgs(n); ok {
				nb.BFD = f
			}
		default:
			b.unknown(n, "neighbor")
		}
	}
	if nb.RemoteAS == 0 {
		b.errorf(blk, "neighbor %s: remote_as is required", a)
	}
	// Without keepalive_interval, a third of the hold time (RFC 4271's
	// suggestion, as BIRD does).
	if !nb.Keywords.Of("keepalive_interval").IsValid() {
		nb.Keepalive = max(nb.HoldTime/3, time.Second)
		if nb.HoldTime == 0 {
			nb.Keepalive = 0
		}
	}
	if nb.HoldTime > 0 && nb.Keepalive*3 > nb.HoldTime {
		pos := nb.Keywords.Of("keepalive_interval")
		if !pos.IsValid() {
			pos = blk.Pos
		}
		b.d.Errorf(pos, "keepalive_interval", "neighbor %s: keepalive_interval %s is more than a third of hold_time %s", a, nb.Keepalive, nb.HoldTime)
	}
	return nb
}

// bfdArgs reads "bfd [interval SECONDS] [multiplier N]".
func (b *builder) bfdArgs(n *node) (*BGPBFD, bool) {
	if !b.leaf(n, 0, 4) {
		return nil, false
	}
	f := &BGPBFD{Interval: DefaultBFDInterval, Multiplier: DefaultBFDMultiplier}
	for args := n.Args; len(args) > 0; args = args[2:] {
		if len(args) < 2 {
			b.errorf(n, "'%s' needs a value", args[0].Text)
			return nil, false
		}
		switch strings.ToLower(args[0].Text) {
		case "interval":
			v, ok := b.parseTimer(n, args[1].Text, 10*time.Millisecond, 60*time.Second)
			if !ok {
				return nil, false
			}
			f.Interval = v.Truncate(time.Millisecond)
		case "multiplier":
			v, ok := b.parseInt(n, args[1].Text, 1, 255)
			if !ok {
				return nil, false
			}
			f.Multiplier = v
		default:
			b.errorf(n, "unknown bfd option '%s' (interval, multiplier)", args[0].Text)
			return nil, false
		}
	}
	return f, true
}

// asn reads a 4-byte AS number (asplain, 1..4294967295).
func (b *builder) asn(n *node) (uint32, bool) {
	if !b.leaf(n, 1, 1) {
		return 0, false
	}
	v, err := strconv.ParseUint(n.Args[0].Text, 10, 32)
	if err != nil || v == 0 {
		b.errorf(n, "invalid AS number '%s' (1..4294967295)", n.Args[0].Text)
		return 0, false
	}
	return uint32(v), true
}

func parseCommunity(s string) (uint32, bool) {
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return uint32(h)<<16 | uint32(l), true
}
