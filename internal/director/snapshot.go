package director

import (
	"net/netip"

	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/status"
)

// Snapshot is the live state for `govs list` and the metrics, with rates.
func (d *Director) Snapshot() status.Snapshot {
	s := d.snapshot()
	d.est.Fill(&s)
	return s
}

// snapshot collects the state without rates.
func (d *Director) snapshot() status.Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	snap := status.Snapshot{Time: d.opts.Clock.Now(), Version: d.opts.Version, Drops: map[string]uint64{}, Reloads: d.reloads,
		Sync: d.syncStatusLocked()}

	stats := map[dpstate.ServiceKey]dataplane.ServiceStats{}
	if d.dp != nil {
		if st, err := d.dp.Stats(); err != nil {
			d.log.Warn("read data plane counters", "err", err)
		} else {
			snap.ConnTableSize = st.ConnTableSize
			snap.EmbryoTableSize = st.EmbryoTableSize
			snap.Packets = st.Global.Named()
			for _, ss := range st.Services {
				stats[ss.Service.Key()] = ss
			}
		}
	}
	health := map[string]map[string]bool{}
	checkStats := map[string]map[string][]status.CheckerStats{}
	if d.checks != nil {
		for _, vs := range d.checks.Status() {
			h := map[string]bool{}
			cs := map[string][]status.CheckerStats{}
			for _, rs := range vs.RealServers {
				h[rs.Name] = rs.Alive
				for _, c := range rs.Checkers {
					cs[rs.Name] = append(cs[rs.Name], checkerStats(c))
				}
			}
			health[vs.Name] = h
			checkStats[vs.Name] = cs
		}
	}
	pools := d.plan.Apply(d.pools, d.overrides)
	for _, svc := range d.plan.Services {
		out, pool := svc.Status(pools), svc.Pool
		ss := stats[svc.Key]
		out.Stats = status.Counters{Conns: ss.NewConns, InPkts: ss.Packets, InBytes: ss.Bytes, OutPkts: ss.OutPackets, OutBytes: ss.OutBytes}
		addDrops(snap.Drops, ss.Drops)
		realStats := map[netip.Addr]dataplane.RealStats{}
		for _, rs := range ss.Reals {
			realStats[rs.Addr] = rs
		}
		for i, r := range out.Reals {
			rs := realStats[r.Addr]
			alive, known := health[pool][netip.AddrPortFrom(r.Addr, r.Port).String()]
			out.Reals[i].ActiveConn = uint64(max(rs.ActiveConns, 0))
			out.Reals[i].PersistConns = rs.PersistConns
			out.Reals[i].Healthy = alive || !known
			out.Reals[i].Stats = status.Counters{Conns: rs.NewConns, InPkts: rs.Packets, InBytes: rs.Bytes, OutPkts: rs.OutPackets, OutBytes: rs.OutBytes}
			out.Reals[i].CheckStats = checkStats[pool][netip.AddrPortFrom(r.Addr, r.Port).String()]
		}
		for i, r := range out.Removed {
			out.Removed[i].CheckStats = checkStats[pool][netip.AddrPortFrom(r.Addr, r.Port).String()]
		}
		snap.Totals.Conns += out.Stats.Conns
		snap.Totals.InPkts += out.Stats.InPkts
		snap.Totals.InBytes += out.Stats.InBytes
		snap.Totals.OutPkts += out.Stats.OutPkts
		snap.Totals.OutBytes += out.Stats.OutBytes
		snap.Services = append(snap.Services, out)
	}
	snap.VRRP = d.vrrpStatusLocked()
	snap.BGP = d.bgpStatusLocked()
	return snap
}

func checkerStats(c state.CheckerStatus) status.CheckerStats {
	st := c.Stats
	out := status.CheckerStats{Name: c.Name, Up: c.Up, Checked: st.Checked, Successes: st.Successes, Failures: st.Failures,
		Transitions: st.Transitions, LastLatency: st.LastLatency, LatencyCounts: st.LatencyCounts, LatencySum: st.LatencySum}
	if len(st.LatencyCounts) > 0 {
		out.LatencyBuckets = state.LatencyBuckets
	}
	if c.LastErr != nil {
		out.LastError = c.LastErr.Error()
	}
	return out
}

func addDrops(m map[string]uint64, d dataplane.Drops) {
	for k, v := range map[string]uint64{
		"no_real": d.NoReal, "real_missing": d.RealMissing, "no_table": d.NoTable,
		"encap": d.Encap, "redirect": d.Redirect,
	} {
		if v > 0 {
			m[k] += v
		}
	}
}

// Connections lists the data plane's connection table the way ipvsadm -Lnc
// shows IPVS's: protocol, state, time to expiry, client, virtual and real
// address (in DR the real server's port is the service's).
func (d *Director) Connections() []status.Connection {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dp == nil {
		return nil
	}
	conns, err := d.dp.Connections()
	if err != nil {
		d.log.Warn("read connection table", "err", err)
		return nil
	}
	out := make([]status.Connection, 0, len(conns))
	for _, c := range conns {
		out = append(out, connStatus(c))
	}
	return out
}

// StreamConnections calls fn for each connection of the data plane's
// table, without holding the director's lock or the data plane's while fn
// runs (a slow HTTP client must not hold up reloads or checks).
func (d *Director) StreamConnections(fn func(status.Connection)) error {
	d.mu.Lock()
	dp := d.dp
	d.mu.Unlock()
	if dp == nil {
		return nil
	}
	return dp.StreamConnections(func(c dataplane.Conn) { fn(connStatus(c)) })
}

// connStatus is a connection as ipvsadm -Lnc shows it.
func connStatus(c dataplane.Conn) status.Connection {
	sc := status.Connection{Protocol: status.Protocol(c.Protocol), Client: c.Client, Virtual: c.VIP,
		Real: netip.AddrPortFrom(c.Real, c.VIP.Port()), Expires: c.Expires}
	switch {
	case c.Protocol == dataplane.UDP:
		sc.State = "NONE"
	case c.Embryonic:
		sc.State = "SYN_RECV"
	case c.Closing:
		sc.State = "FIN_WAIT"
	default:
		sc.State = "ESTABLISHED"
	}
	return sc
}
