package config

import (
	"fmt"
	"net/netip"
	"time"
)

// resolve fills inherited settings and keepalived's defaults, then checks
// what can only be checked across blocks.
func (b *builder) resolve() {
	b.resolveInstances()
	b.resolveSyncGroups()
	b.resolveVirtualServers()
}

func (b *builder) resolveInstances() {
	g := &b.cfg.Global
	type vridKey struct {
		iface string
		v6    bool
		vrid  int
	}
	seen := map[vridKey]*VRRPInstance{}
	for _, in := range b.cfg.Instances {
		st := b.inst[in]
		if in.Interface == "" {
			in.Interface = g.DefaultInterface
		}
		if !st.version {
			in.Version = g.VRRPVersion
		}
		if !st.accept {
			in.Accept = !g.VRRPStrict
		}
		b.resolveGARP(in, st)

		v6 := false
		for i, v := range in.VIPs {
			if i == 0 {
				v6 = v.Prefix.Addr().Is6()
			} else if v.Prefix.Addr().Is6() != v6 {
				b.d.Warnf(v.Pos, "virtual_ipaddress", "virtual_ipaddress: %s is not the same address family as %s; all addresses of an instance must be, so it is treated as virtual_ipaddress_excluded",
					v.Prefix.Addr(), in.VIPs[0].Prefix.Addr())
			}
		}
		if v6 && in.Version == 2 {
			if st.version {
				b.d.Warnf(in.Pos, "version", "vrrp_instance %s: IPv6 addresses need VRRP version 3; using 3", in.Name)
			}
			in.Version = 3
		}
		if adv := st.advNode; adv != nil && in.Version == 2 && in.AdvertInt%time.Second != 0 {
			rounded := (in.AdvertInt + time.Second - 1).Truncate(time.Second)
			b.warnf(adv, "VRRP version 2 counts whole seconds; %s rounded up to %s", in.AdvertInt, rounded)
			in.AdvertInt = rounded
		}
		if in.Version == 3 && in.AdvertInt > 40950*time.Millisecond {
			b.d.Errorf(in.Pos, "advert_int", "advert_int: %s too long for VRRP version 3 (at most 40.95s)", in.AdvertInt)
		}
		if in.Version == 3 && in.Auth.Type != AuthNone {
			b.d.Warnf(in.Auth.Pos, "authentication", "authentication: VRRP version 3 has no authentication; ignored")
		}
		if in.NoPreempt && in.State == StateMaster && st.noPreemptNode != nil {
			b.warnf(st.noPreemptNode, "has no effect with state MASTER (keepalived requires state BACKUP)")
		}
		if in.PreemptDelay > 0 && in.State == StateMaster && st.preemptDelayNode != nil {
			b.warnf(st.preemptDelayNode, "has no effect with state MASTER (keepalived requires state BACKUP)")
		}

		vips := map[netip.Addr]Pos{}
		for _, list := range [][]VIP{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				if first, dup := vips[v.Prefix.Addr()]; dup {
					b.d.Warnf(v.Pos, "virtual_ipaddress", "virtual_ipaddress: %s already listed at %s", v.Prefix.Addr(), first)
					continue
				}
				vips[v.Prefix.Addr()] = v.Pos
			}
		}

		for i, ts := range in.TrackScripts {
			s := b.cfg.Script(ts.Name)
			if s == nil {
				b.d.Warnf(ts.Pos, "track_script", "track_script: vrrp_script '%s' is not defined; ignored", ts.Name)
				continue
			}
			if !ts.WeightSet {
				in.TrackScripts[i].Weight = s.Weight
				if !in.TrackScripts[i].Reverse {
					in.TrackScripts[i].Reverse = s.Reverse
				}
			}
		}

		// Instances sharing a VRID must not share an interface and family
		// when they advertise by multicast: their packets are
		// indistinguishable.
		if in.VRID != 0 && len(in.UnicastPeers) == 0 && !in.McastDstIP.IsValid() {
			k := vridKey{in.Interface, v6, in.VRID}
			if other, dup := seen[k]; dup {
				b.d.Errorf(in.Pos, "virtual_router_id", "virtual_router_id: %d on %s already used by vrrp_instance %s at %s",
					in.VRID, in.Interface, other.Name, other.Pos)
			} else {
				seen[k] = in
			}
		}
	}
}

func (b *builder) resolveGARP(in *VRRPInstance, st *instanceSet) {
	def := b.cfg.Global.GARP
	g := &in.GARP
	if !st.garpMasterDelay {
		g.MasterDelay = def.MasterDelay
	}
	if !st.garpMasterRepeat {
		g.MasterRepeat = def.MasterRepeat
	}
	if !st.garpMasterRefresh {
		g.MasterRefresh = def.MasterRefresh
	}
	if !st.garpMasterRefreshRep {
		g.MasterRefreshRepeat = def.MasterRefreshRepeat
	}
	if !st.garpLowerPrioDelay {
		if st.garpMasterDelay {
			g.LowerPrioDelay = g.MasterDelay
		} else {
			g.LowerPrioDelay = def.LowerPrioDelay
		}
	}
	if !st.garpLowerPrioRepeat {
		if st.garpMasterRepeat {
			g.LowerPrioRepeat = g.MasterRepeat
		} else {
			g.LowerPrioRepeat = def.LowerPrioRepeat
		}
	}
	if !st.garpInterval {
		g.Interval = def.Interval
	}
	if !st.gnaInterval {
		g.NAInterval = def.NAInterval
	}
}

func (b *builder) resolveSyncGroups() {
	member := map[string]string{}
	for _, g := range b.cfg.SyncGroups {
		kept := g.Instances[:0]
		for _, name := range g.Instances {
			in := b.cfg.Instance(name)
			if in == nil {
				b.d.Warnf(g.Pos, "vrrp_sync_group", "vrrp_sync_group %s: vrrp_instance %s is not defined; ignored", g.Name, name)
				continue
			}
			if other, dup := member[name]; dup {
				b.d.Errorf(g.Pos, "vrrp_sync_group", "vrrp_sync_group %s: vrrp_instance %s already belongs to vrrp_sync_group %s", g.Name, name, other)
				continue
			}
			member[name] = g.Name
			in.SyncGroup = g.Name
			kept = append(kept, name)
		}
		g.Instances = kept
		for _, ts := range g.TrackScripts {
			if b.cfg.Script(ts.Name) == nil {
				b.d.Warnf(ts.Pos, "track_script", "track_script: vrrp_script '%s' is not defined; ignored", ts.Name)
			}
		}
	}
}

type serviceKey struct {
	addr   netip.Addr
	port   uint16
	fwmark uint32
	group  string
	proto  Protocol
}

func (b *builder) resolveVirtualServers() {
	seen := map[serviceKey]*VirtualServer{}
	for _, vs := range b.cfg.VirtualServers {
		if vs.Scheduler == "" {
			vs.Scheduler = "wlc" // what IPVS uses when none is given
		}
		vs.Alpha = vs.Checks.Alpha
		vs.DelayLoop = defaultDelayLoop
		if vs.Checks.set.delayLoop {
			vs.DelayLoop = vs.Checks.DelayLoop
		}
		family := 0
		switch {
		case vs.Addr.IsValid():
			family = vs.Addr.BitLen()
		case vs.Family == "inet6":
			family = 128
		case vs.Family == "inet":
			family = 32
		}
		if vs.Group != "" {
			g := b.cfg.VirtualServerGroup(vs.Group)
			if g == nil {
				b.d.Errorf(vs.Pos, "virtual_server", "virtual_server: virtual_server_group '%s' is not defined", vs.Group)
			} else {
				for _, e := range g.Entries {
					if e.First.IsValid() {
						family = e.First.BitLen()
						break
					}
				}
			}
		}
		if vs.PersistenceGranularity < 0 {
			vs.PersistenceGranularity = family
			if family == 0 {
				vs.PersistenceGranularity = 32
			}
		} else if family == 32 && vs.PersistenceGranularity > 32 {
			b.d.Errorf(vs.Pos, "persistence_granularity", "persistence_granularity: /%d is longer than an IPv4 address", vs.PersistenceGranularity)
		}
		if vs.Addr.IsValid() && vs.Port == 0 && !vs.Persistent() {
			b.d.Errorf(vs.Pos, "virtual_server", "virtual_server %s: port 0 (all ports) needs persistence_timeout", vs.Name())
		}
		if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
			b.d.Warnf(vs.Pos, "hysteresis", "hysteresis: %d is not below quorum %d", vs.Hysteresis, vs.Quorum)
		}
		if ss := vs.SorryServer; ss != nil && ss.Method < 0 {
			ss.Method = vs.Method
		}
		k := serviceKey{vs.Addr, vs.Port, vs.Fwmark, vs.Group, vs.Protocol}
		if other, dup := seen[k]; dup {
			b.d.Errorf(vs.Pos, "virtual_server", "virtual_server %s %s: already defined at %s", vs.Protocol, vs.Name(), other.Pos)
		} else {
			seen[k] = vs
		}
		b.resolveRealServers(vs, family)
	}
}

func (b *builder) resolveRealServers(vs *VirtualServer, family int) {
	seen := map[netip.AddrPort]Pos{}
	for _, rs := range vs.RealServers {
		if rs.Method < 0 {
			rs.Method = vs.Method
		}
		if !rs.inhibitSet {
			rs.InhibitOnFailure = vs.InhibitOnFailure
		}
		if rs.VirtualHost == "" {
			rs.VirtualHost = vs.VirtualHost
		}
		where := fmt.Sprintf("real_server %s", hostPort(rs.Addr, rs.Port))
		if rs.Method != TUN && family != 0 && rs.Addr.BitLen() != family {
			b.d.Errorf(rs.Pos, "real_server", "%s: address family differs from virtual_server %s (only TUN can mix families)", where, vs.Name())
		}
		if rs.Method == DR && vs.Port != 0 && rs.Port != 0 && rs.Port != vs.Port {
			b.d.Warnf(rs.Pos, "real_server", "%s: DR forwards to the virtual server's port %d; port %d is only used by checkers", where, vs.Port, rs.Port)
		}
		if rs.Port == 0 && vs.Port != 0 {
			rs.Port = vs.Port
		}
		ap := netip.AddrPortFrom(rs.Addr, rs.Port)
		if first, dup := seen[ap]; dup {
			b.d.Errorf(rs.Pos, "real_server", "%s: already defined at %s", where, first)
		} else {
			seen[ap] = rs.Pos
		}
		for _, c := range rs.Checkers {
			resolveChecker(c, vs, rs)
		}
	}
}

// resolveChecker applies keepalived's inheritance: checker settings win,
// then the real server's, then the virtual server's, then the defaults of
// the checker type.
func resolveChecker(c *Checker, vs *VirtualServer, rs *RealServer) {
	levels := []*CheckDefaults{&c.checks, &rs.Checks, &vs.Checks}
	c.DelayLoop = inherit(levels, defaultDelayLoop, func(d *CheckDefaults) (time.Duration, bool) { return d.DelayLoop, d.set.delayLoop })
	c.ConnectTimeout = inherit(levels, 5*time.Second, func(d *CheckDefaults) (time.Duration, bool) { return d.ConnectTimeout, d.set.connectTimeout })
	defRetry, defDelay := 1, time.Second
	switch c.Type {
	case DNSCheck:
		defRetry, defDelay = 3, c.DelayLoop
	case MiscCheck:
		defRetry = 0
	case HTTPGet, SSLGet:
		defDelay = 3 * time.Second
	}
	c.DelayBeforeRetry = inherit(levels, defDelay, func(d *CheckDefaults) (time.Duration, bool) { return d.DelayBeforeRetry, d.set.delayBeforeRetry })
	c.Warmup = inherit(levels, c.DelayLoop, func(d *CheckDefaults) (time.Duration, bool) { return d.Warmup, d.set.warmup })
	c.Retry = inherit(levels, defRetry, func(d *CheckDefaults) (int, bool) { return d.Retry, d.set.retry })
	c.Alpha = inherit(levels, false, func(d *CheckDefaults) (bool, bool) { return d.Alpha, d.set.alpha })
	if !c.ConnectIP.IsValid() {
		c.ConnectIP = rs.Addr
	}
	if c.ConnectPort == 0 {
		c.ConnectPort = rs.Port
	}
	if c.HTTP != nil && c.HTTP.VirtualHost == "" {
		c.HTTP.VirtualHost = rs.VirtualHost
	}
	if c.SMTP != nil {
		for i := range c.SMTP.Hosts {
			h := &c.SMTP.Hosts[i]
			if !h.ConnectIP.IsValid() {
				h.ConnectIP = rs.Addr
			}
			if h.ConnectPort == 0 {
				h.ConnectPort = c.ConnectPort
			}
		}
	}
}

// inherit returns the first level's value that was written, else def.
func inherit[T any](levels []*CheckDefaults, def T, get func(*CheckDefaults) (T, bool)) T {
	for _, l := range levels {
		if v, ok := get(l); ok {
			return v
		}
	}
	return def
}
