package director

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
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
	snap := status.Snapshot{Time: time.Now(), Version: d.opts.Version, Drops: map[string]uint64{}}

	type svcKey struct {
		addr  netip.Addr
		port  uint16
		proto dataplane.Protocol
	}
	stats := map[svcKey]dataplane.ServiceStats{}
	if d.dp != nil {
		if st, err := d.dp.Stats(); err != nil {
			d.log.Warn("read data plane counters", "err", err)
		} else {
			for _, ss := range st.Services {
				stats[svcKey{ss.Service.Addr, ss.Service.Port, ss.Service.Protocol}] = ss
			}
		}
	}
	health := map[string]map[string]bool{}
	if d.checks != nil {
		for _, vs := range d.checks.Status() {
			h := map[string]bool{}
			for _, rs := range vs.RealServers {
				h[rs.Name] = rs.Alive
			}
			health[vs.Name] = h
		}
	}
	for _, s := range d.svcs {
		out := status.Service{
			Protocol:  status.Protocol(s.proto),
			VIP:       s.addr,
			Port:      s.port,
			Scheduler: string(s.sched),
			Method:    methodName(s.vs.Method),
		}
		if s.vs.PersistenceTimeout > 0 {
			out.Persistent = s.vs.PersistenceTimeout
			if s.vs.PersistenceGranularity < s.addr.BitLen() {
				out.PersistenceBits = s.vs.PersistenceGranularity
			}
		}
		ss := stats[svcKey{s.addr, s.port, s.proto}]
		out.Stats = status.Counters{Conns: ss.NewConns, InPkts: ss.Packets, InBytes: ss.Bytes}
		addDrops(snap.Drops, ss.Drops)
		realStats := map[netip.Addr]dataplane.RealStats{}
		for _, rs := range ss.Reals {
			realStats[rs.Addr] = rs
		}
		pool, ok := d.pools[s.checkName]
		if !ok {
			pool = configuredPool(s.vs)
		}
		for _, dest := range pool {
			ap, err := netip.ParseAddrPort(dest.Name)
			if err != nil {
				continue
			}
			method := s.vs.Method
			if rs := realServerOf(s.vs, ap); rs != nil {
				method = rs.Method
			}
			rs := realStats[ap.Addr()]
			alive, known := health[s.checkName][dest.Name]
			out.Reals = append(out.Reals, status.Real{
				Addr:       ap.Addr(),
				Port:       ap.Port(),
				Method:     methodName(method),
				Weight:     dest.Weight,
				ActiveConn: uint64(max(rs.ActiveConns, 0)),
				Healthy:    alive || !known,
				Stats:      status.Counters{Conns: rs.NewConns, InPkts: rs.Packets, InBytes: rs.Bytes},
			})
		}
		snap.Totals.Conns += out.Stats.Conns
		snap.Totals.InPkts += out.Stats.InPkts
		snap.Totals.InBytes += out.Stats.InBytes
		snap.Services = append(snap.Services, out)
	}
	if d.vrrp != nil {
		snap.VRRP = d.vrrp.Status()
	}
	return snap
}

func methodName(m config.Method) status.Method {
	switch m {
	case config.TUN:
		return status.Tunnel
	case config.NAT:
		return status.Masq
	}
	return status.Route
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
