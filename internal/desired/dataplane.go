package desired

import (
	"net"
	"net/netip"
	"slices"

	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/status"
)

// Neighbour is where frames for a real server go: its MAC (DR) or the next
// hop's (TUN), and the egress interface. Src is the address the kernel's
// route to the server prefers as source: TUN's outer source, as IPVS takes
// it from the route.
type Neighbour struct {
	MAC     net.HardwareAddr
	Ifindex int
	Src     netip.Addr
}

// Pools are the health checkers' verdicts: each virtual server's real
// servers with their current weights, by Service.Pool. A pool not reported
// yet is the configured one.
type Pools map[string][]state.Dest

// pool returns the weights a service forwards with now.
func (s Service) pool(pools Pools) []state.Dest {
	if ws, ok := pools[s.Pool]; ok {
		return ws
	}
	return s.ConfiguredPool()
}

// ConfiguredPool is a service's pool before its first health report: every
// real server at its configured weight, except those whose checkers start
// down (alpha), which keepalived also keeps out until a first success.
func (s Service) ConfiguredPool() []state.Dest {
	var out []state.Dest
	for _, r := range s.Reals {
		if !r.StartsDown {
			out = append(out, state.Dest{Name: r.Key.String(), Weight: r.Weight})
		}
	}
	return out
}

// real returns the configured real (or sorry) server a pool entry names.
func (s Service) real(d state.Dest) (Real, bool) {
	ap, err := netip.ParseAddrPort(d.Name)
	if err != nil {
		return Real{}, false
	}
	k := RealKey{ap.Addr(), ap.Port()}
	if d.Sorry && s.Sorry != nil && s.Sorry.Key == k {
		return *s.Sorry, true
	}
	if i := slices.IndexFunc(s.Reals, func(r Real) bool { return r.Key == k }); i >= 0 {
		return s.Reals[i], true
	}
	if s.Sorry != nil && s.Sorry.Key == k {
		return *s.Sorry, true
	}
	return Real{Key: k, Method: s.Method, GUEPort: s.GUEPort}, true
}

func dpMethod(m config.Method) dpstate.Method {
	switch m {
	case config.TUN:
		return dpstate.TUN
	case config.NAT:
		return dpstate.NAT
	case config.FNAT:
		return dpstate.FNAT
	}
	return dpstate.DR
}

// Dataplane computes the data plane's content from the health checkers'
// pools and the resolved neighbours. Real servers whose MAC is not known yet
// are left out and listed in unresolved, so the caller can apply again when
// the neighbour table answers.
func (p *Plan) Dataplane(pools Pools, neigh map[netip.Addr]Neighbour) (st dpstate.State, unresolved []netip.Addr) {
	missing := map[netip.Addr]bool{}
	st.NewFlowLimit = p.NewFlowLimit
	st.Timeouts = p.Timeouts
	for _, s := range p.Services {
		ds := dpstate.Service{
			Addr:               s.Key.Addr,
			Port:               s.Key.Port,
			Protocol:           s.Key.Proto,
			Fwmark:             s.Key.Fwmark,
			Scheduler:          s.Scheduler,
			PersistenceTimeout: s.PersistenceTimeout,
			PersistenceBits:    s.PersistenceBits,
			HashPort:           s.HashPort,
			OnePacket:          s.OnePacket,
			LocalAddrs:         s.LocalAddrs,
		}
		for _, d := range s.pool(pools) {
			r, ok := s.real(d)
			if !ok {
				continue
			}
			n, ok := neigh[r.Key.Addr]
			if !ok {
				missing[r.Key.Addr] = true
				continue
			}
			if r.Method == config.TUN {
				// One outer source per family: the first TUN server's
				// route's (a director has one address per family on
				// the network its tunnels leave from).
				src := &st.TunnelSource4
				if r.Key.Addr.Is6() {
					src = &st.TunnelSource6
				}
				if !src.IsValid() && n.Src.IsValid() && n.Src.Is4() == r.Key.Addr.Is4() {
					*src = n.Src
				}
				if !src.IsValid() {
					missing[r.Key.Addr] = true
					continue
				}
			}
			ds.Reals = append(ds.Reals, dpstate.Real{
				Addr:    r.Key.Addr,
				Port:    r.Key.Port,
				Weight:  uint32(max(d.Weight, 0)),
				Method:  dpMethod(r.Method),
				GUEPort: r.GUEPort,
				MAC:     n.MAC,
				Ifindex: n.Ifindex,
			})
		}
		st.Services = append(st.Services, ds)
	}
	for a := range missing {
		unresolved = append(unresolved, a)
	}
	slices.SortFunc(unresolved, func(a, b netip.Addr) int { return a.Compare(b) })
	return st, unresolved
}

// MethodName is how ipvsadm names a forwarding method.
func MethodName(m config.Method) status.Method {
	switch m {
	case config.TUN:
		return status.Tunnel
	case config.NAT:
		return status.Masq
	case config.FNAT:
		return status.FullNat
	}
	return status.Route
}

// Fwmarks are the marks the plan's fwmark services take, which the kernel
// must route to the balancer (internal/fwmark).
func (p *Plan) Fwmarks() []dpstate.Fwmark {
	var out []dpstate.Fwmark
	for _, s := range p.Services {
		if s.Key.Fwmark != 0 {
			out = append(out, dpstate.Fwmark{Mark: s.Key.Fwmark, IPv6: s.Key.Addr.Is6()})
		}
	}
	return out
}

// StatusServices is the status view of the plan with the given pools: the
// table `govs list` prints, without counters. `govs check` prints it with
// the configured pools (nil).
func (p *Plan) StatusServices(pools Pools) []status.Service {
	out := make([]status.Service, 0, len(p.Services))
	for _, s := range p.Services {
		out = append(out, s.Status(pools))
	}
	return out
}

// Status is the service's status view with the given pools.
func (s Service) Status(pools Pools) status.Service {
	ss := status.Service{
		Protocol:  status.Protocol(s.Key.Proto),
		VIP:       s.Key.Addr,
		Port:      s.Key.Port,
		Fwmark:    s.Key.Fwmark,
		Scheduler: string(s.Scheduler),
		Method:    MethodName(s.Method),
		OnePacket: s.OnePacket,
	}
	if s.Key.Fwmark != 0 {
		ss.VIP, ss.Protocol, ss.IPv6 = netip.Addr{}, 0, s.Key.Addr.Is6()
	}
	if s.HashPort {
		ss.SchedFlags = []string{string(s.Scheduler) + "-port"}
	}
	if s.PersistenceTimeout > 0 {
		ss.Persistent = s.PersistenceTimeout
		ss.PersistenceBits = s.PersistenceBits
	}
	for _, d := range s.pool(pools) {
		r, ok := s.real(d)
		if !ok {
			continue
		}
		ss.Reals = append(ss.Reals, status.Real{
			Addr:     r.Key.Addr,
			Port:     r.Key.Port,
			Method:   MethodName(r.Method),
			Weight:   d.Weight,
			Healthy:  true,
			Checkers: r.Checkers,
		})
	}
	for _, r := range s.Reals {
		listed := slices.ContainsFunc(ss.Reals, func(l status.Real) bool { return l.Addr == r.Key.Addr && l.Port == r.Key.Port })
		if !listed {
			ss.Removed = append(ss.Removed, status.Real{Addr: r.Key.Addr, Port: r.Key.Port, Method: MethodName(r.Method), Checkers: r.Checkers})
		}
	}
	return ss
}
