package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/govs/govs/internal/checkspec"
)

// resolve fills inherited settings and keepalived's defaults, then checks
// what can only be checked across blocks.
func (b *builder) resolve() {
	b.resolveInstances()
	b.resolveSyncGroups()
	b.resolveSyncDaemon()
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
		in.NotifyPriorityChanges = g.NotifyPriorityChanges
		if st.notifyPrio != nil {
			in.NotifyPriorityChanges = *st.notifyPrio
		}
		if !st.downTimer {
			in.Adverts.DownTimerAdverts = g.Adverts.DownTimerAdverts
		}
		if !st.lowerPrio {
			in.Adverts.LowerPrioNoAdvert = g.Adverts.LowerPrioNoAdvert
		}
		if !st.higherPrio {
			in.Adverts.HigherPrioSendAdvert = g.Adverts.HigherPrioSendAdvert
		}
		// strict_mode is the instance's own vrrp_strict.
		strict := g.VRRPStrict
		if st.strict != nil {
			strict = *st.strict
		}
		if strict {
			b.strict(in, st.accept)
		} else if !st.accept {
			in.Accept = true
		}
		b.resolveGARP(in, st)

		v6 := false
		if len(in.VIPs) > 0 {
			v6 = in.VIPs[0].Prefix.Addr().Is6()
			kept := in.VIPs[:1]
			for _, v := range in.VIPs[1:] {
				if v.Prefix.Addr().Is6() == v6 {
					kept = append(kept, v)
					continue
				}
				b.d.Warnf(v.Pos, "virtual_ipaddress", "virtual_ipaddress: %s is not the same address family as %s; all addresses of an instance must be; ignored (use virtual_ipaddress_excluded to mix families)",
					v.Prefix.Addr(), in.VIPs[0].Prefix.Addr())
			}
			in.VIPs = kept
		}
		if v6 && in.Version == 2 {
			if st.version {
				b.d.Warnf(in.Pos, "version", "vrrp_instance %s: IPv6 addresses need VRRP version 3; using 3", in.Name)
			}
			in.Version = 3
		}
		if adv := st.advNode; adv != nil && in.Version == 2 && in.AdvertInt%time.Second != 0 {
			rounded := (in.AdvertInt + time.Second - 1).Truncate(time.Second)
			b.warnf(adv, "VRRP version 2 counts whole seconds; %s rounded up to %s", Seconds(in.AdvertInt), Seconds(rounded))
			in.AdvertInt = rounded
		}
		if adv := st.advNode; adv != nil && in.Version == 3 && in.AdvertInt%(10*time.Millisecond) != 0 {
			rounded := in.AdvertInt.Round(10 * time.Millisecond)
			if rounded == 0 {
				rounded = 10 * time.Millisecond
			}
			b.warnf(adv, "VRRP version 3 counts centiseconds; %s rounded to %s", Seconds(in.AdvertInt), Seconds(rounded))
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

		// keepalived checks a unicast advert's source when told to, or when
		// a peer bounds its TTL.
		if g.CheckUnicastSrc || slices.ContainsFunc(in.UnicastPeers, func(p UnicastPeer) bool { return p.MinTTL > 0 || p.MaxTTL < 255 }) {
			in.CheckUnicastSrc = true
		}
		if n := st.unicastNode; n != nil && len(n.Body) == 0 && len(in.UnicastPeers) == 0 && !in.UnicastFaultNoPeer {
			b.d.Warnf(n.Pos, "unicast_peer", "vrrp_instance %s: unicast_peer without peers: multicast, as keepalived does (deprecated there; unicast_fault_no_peer keeps the instance in FAULT instead)", in.Name)
		}
		if in.UnicastFaultNoPeer && len(in.UnicastPeers) > 0 {
			in.UnicastFaultNoPeer = false // it has peers: nothing to fault on
		}
		if in.UnicastTTL > 0 && len(in.UnicastPeers) == 0 {
			b.d.Warnf(in.Keywords.Of("unicast_ttl"), "unicast_ttl", "vrrp_instance %s: unicast_ttl without unicast_peer: ignored (multicast adverts carry 255), as keepalived does", in.Name)
			in.UnicastTTL = 0
		}

		// keepalived tracks an object once: a repeated entry is ignored.
		in.TrackInterfaces = firstOf(b, in.TrackInterfaces, "track_interface", func(t TrackInterface) (string, Pos) { return t.Name, t.Pos })
		in.TrackScripts = firstOf(b, in.TrackScripts, "track_script", func(t TrackScript) (string, Pos) { return t.Name, t.Pos })
		in.TrackFiles = firstOf(b, in.TrackFiles, "track_file", func(t TrackScript) (string, Pos) { return t.Name, t.Pos })

		// The entry's weight and reverse replace the definition's together
		// (reverse can only be written after a weight).
		b.inheritTracks(in.TrackScripts, "track_script", "vrrp_script", b.scriptDefault, true)
		b.inheritTracks(in.TrackFiles, "track_file", "track_file", b.fileDefault, true)

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
	// Only global_defs sets the pacing (keepalived 2.2 has no per-instance one).
	g.Interval, g.NAInterval = def.Interval, def.NAInterval
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
		if len(kept) == 1 {
			b.d.Warnf(g.Pos, "vrrp_sync_group", "vrrp_sync_group %s has only one vrrp_instance; keepalived warns about this too", g.Name)
		}
		// A group's entries only fault: their reverse counts, not weights.
		b.inheritTracks(g.TrackScripts, "track_script", "vrrp_script", b.scriptDefault, false)
		b.inheritTracks(g.TrackFiles, "track_file", "track_file", b.fileDefault, false)
	}
}

type serviceKey struct {
	addr   netip.Addr
	port   uint16
	fwmark uint32
	group  string
	proto  Protocol
	family int // fwmark services: IPVS tells them by mark and family only
}

func (b *builder) resolveVirtualServers() {
	seen := map[serviceKey]*VirtualServer{}
	kept := b.cfg.VirtualServers[:0]
	for _, vs := range b.cfg.VirtualServers {
		if b.resolveVirtualServer(vs, seen) {
			kept = append(kept, vs)
		}
	}
	b.cfg.VirtualServers = kept
}

// resolveVirtualServer fills defaults and makes the corrections keepalived
// makes (each with a warning). It reports false when keepalived would drop
// the service.
func (b *builder) resolveVirtualServer(vs *VirtualServer, seen map[serviceKey]*VirtualServer) bool {
	warn := func(keyword, format string, args ...any) {
		b.d.Warnf(vs.Pos, keyword, "virtual_server %s: "+format, append([]any{vs.Name()}, args...)...)
	}
	vs.Alpha = vs.Checks.Alpha
	vs.DelayLoop = checkspec.DefaultDelayLoop
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
	hasAddrs := vs.Addr.IsValid()
	var group *VirtualServerGroup
	if vs.Group != "" {
		group = b.cfg.VirtualServerGroup(vs.Group)
		if group == nil {
			// keepalived -t accepts this and runs nothing for it.
			b.d.Warnf(vs.Pos, "virtual_server", "virtual_server: virtual_server_group '%s' is not defined; the virtual server is ignored (as keepalived does)", vs.Group)
			return false
		} else {
			for _, e := range group.Entries {
				if e.First.IsValid() {
					family, hasAddrs = e.First.BitLen(), true
					break
				}
			}
		}
	}
	if len(vs.RealServers) == 0 {
		warn("virtual_server", "no real servers; ignored (as keepalived does)")
		return false
	}
	_, protoSet := vs.Keywords["protocol"]
	switch {
	case hasAddrs && !protoSet:
		warn("protocol", "no protocol given; defaulting to UDP like keepalived (write 'protocol TCP' for web services)")
		vs.Protocol = UDP
	case !hasAddrs && protoSet && vs.Fwmark != 0:
		warn("protocol", "protocol is ignored for fwmark services")
	}
	if _, set := vs.Keywords["lb_algo"]; !set {
		if _, set := vs.Keywords["lvs_sched"]; !set {
			warn("lb_algo", "no scheduler given; using wlc")
		}
	}
	if vs.Scheduler == "" {
		vs.Scheduler = "wlc"
	}
	if hasAddrs && vs.Protocol != UDP {
		for i, f := range vs.SchedulerFlags {
			if f == "ops" {
				warn("ops", "one-packet scheduling (ops) needs UDP; ignored")
				vs.SchedulerFlags = append(vs.SchedulerFlags[:i:i], vs.SchedulerFlags[i+1:]...)
				break
			}
		}
	}
	if vs.HASuspend && !hasAddrs {
		warn("ha_suspend", "ha_suspend cannot be used with fwmarks; ignored")
		vs.HASuspend = false
	}
	if !vs.Persistent() {
		zeroPort := vs.Addr.IsValid() && vs.Port == 0
		if group != nil {
			for _, e := range group.Entries {
				zeroPort = zeroPort || (e.First.IsValid() && e.Port == 0)
			}
		}
		if zeroPort {
			warn("persistence_timeout", "port 0 (all ports) only works persistent; using persistence_timeout %d", int(defaultPersistence/time.Second))
			vs.PersistenceTimeout = defaultPersistence
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
	_, methodSet := vs.Keywords["lb_kind"]
	if _, set := vs.Keywords["lvs_method"]; set {
		methodSet = true
	}
	if ss := vs.SorryServer; ss != nil {
		if ss.Method < 0 {
			ss.Method, ss.GUEPort = vs.Method, vs.GUEPort
		}
		if ss.Method != NAT && ss.Method != FNAT {
			ss.Port = b.fixPort(vs, ss.Pos, "sorry_server", "sorry_server "+ss.Addr.String(), ss.Port)
		} else if ss.Port == 0 {
			ss.Port = vs.Port
		}
	}
	k := serviceKey{vs.Addr, vs.Port, vs.Fwmark, vs.Group, vs.Protocol, 0}
	if vs.Fwmark != 0 {
		k.proto, k.family = 0, family
		if family == 0 && len(vs.RealServers) > 0 {
			k.family = vs.RealServers[0].Addr.BitLen()
		}
	}
	if other, dup := seen[k]; dup {
		b.d.Errorf(vs.Pos, "virtual_server", "virtual_server %s %s: already defined at %s", vs.Protocol, vs.Name(), other.Pos)
	} else {
		seen[k] = vs
	}
	b.resolveRealServers(vs, family, methodSet)
	b.resolveLocalAddrs(vs)

	weights := 0
	for _, rs := range vs.RealServers {
		weights += rs.Weight
	}
	if vs.Quorum > weights {
		warn("quorum", "quorum %d exceeds the total weight %d of the real servers; using %d", vs.Quorum, weights, weights)
		vs.Quorum = weights
	}
	if vs.Quorum > 0 && vs.Hysteresis >= vs.Quorum {
		warn("hysteresis", "hysteresis %d is not below quorum %d; using %d", vs.Hysteresis, vs.Quorum, vs.Quorum-1)
		vs.Hysteresis = vs.Quorum - 1
	}
	return true
}

// resolveLocalAddrs checks laddr_group_name: FNAT needs it, and it must
// name a local_address_group; the other methods do not use it.
func (b *builder) resolveLocalAddrs(vs *VirtualServer) {
	fnat := vs.SorryServer != nil && vs.SorryServer.Method == FNAT
	for _, rs := range vs.RealServers {
		fnat = fnat || rs.Method == FNAT
	}
	pos := vs.Keywords.Of("laddr_group_name")
	switch {
	case vs.LocalAddressGroup != "" && b.cfg.LocalAddressGroup(vs.LocalAddressGroup) == nil:
		b.d.Errorf(pos, "laddr_group_name", "laddr_group_name: no local_address_group %q", vs.LocalAddressGroup)
	case fnat && vs.LocalAddressGroup == "":
		at := vs.Keywords.Of("lb_kind")
		if !at.IsValid() {
			at = vs.Pos
		}
		b.d.Errorf(at, "lb_kind", "virtual_server %s: lb_kind FNAT needs laddr_group_name (the local_address_group its packets to the real servers come from)", vs.Name())
	case !fnat && vs.LocalAddressGroup != "":
		b.d.Warnf(pos, "laddr_group_name", "laddr_group_name: only lb_kind FNAT uses local addresses; ignored for %s", vs.Method)
	}
}

// fixPort applies the rule that only NAT can change ports: a DR or TUN
// real (or sorry) server uses the service port, and none with fwmarks.
func (b *builder) fixPort(vs *VirtualServer, pos Pos, keyword, what string, port uint16) uint16 {
	switch {
	case vs.Fwmark != 0:
		if port != 0 {
			b.d.Warnf(pos, keyword, "%s: port %d ignored: a fwmark service keeps the packet's port", what, port)
		}
		return 0
	case vs.Group != "":
		return port // each group entry has its own port
	case port == 0:
		return vs.Port
	case port != vs.Port:
		b.d.Warnf(pos, keyword, "%s: port %d differs from the virtual server's port %d; only NAT and FNAT can change ports, so %d is used",
			what, port, vs.Port, vs.Port)
		return vs.Port
	}
	return port
}

func (b *builder) resolveRealServers(vs *VirtualServer, family int, methodSet bool) {
	seen := map[netip.AddrPort]Pos{}
	kept := vs.RealServers[:0]
	warnedMethod := false
	for _, rs := range vs.RealServers {
		if rs.Method < 0 {
			if !methodSet && !warnedMethod {
				b.d.Warnf(vs.Pos, "lb_kind", "virtual_server %s: no forwarding method given; using NAT", vs.Name())
				warnedMethod = true
			}
			rs.Method, rs.GUEPort = vs.Method, vs.GUEPort
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
		if rs.Method == NAT || rs.Method == FNAT {
			if rs.Port == 0 && vs.Fwmark == 0 {
				rs.Port = vs.Port
			}
		} else {
			rs.Port = b.fixPort(vs, rs.Pos, "real_server", where, rs.Port)
		}
		ap := netip.AddrPortFrom(rs.Addr, rs.Port)
		if first, dup := seen[ap]; dup {
			b.d.Warnf(rs.Pos, "real_server", "%s: duplicate of the real server at %s; ignored", where, first)
			continue
		}
		seen[ap] = rs.Pos
		for _, c := range rs.Checkers {
			resolveChecker(c, vs, rs)
			b.checkPort(c)
		}
		kept = append(kept, rs)
	}
	vs.RealServers = kept
}

// checkPort gives DNS and SMTP checks their well-known port when neither
// the checker nor the real server has one, and reports checkers left
// without a port.
func (b *builder) checkPort(c *Checker) {
	if c.ConnectPort != 0 {
		return
	}
	switch c.Type {
	case DNSCheck:
		c.ConnectPort = 53
	case SMTPCheck:
		c.ConnectPort = 25
	case PingCheck, MiscCheck:
	default:
		b.d.Errorf(c.Pos, c.Type.String(), "%s: no port to connect to (the real server has none); set connect_port", c.Type)
	}
	if c.SMTP != nil {
		for i := range c.SMTP.Hosts {
			if c.SMTP.Hosts[i].ConnectPort == 0 {
				c.SMTP.Hosts[i].ConnectPort = c.ConnectPort
			}
		}
	}
}

// resolveChecker applies keepalived's inheritance: checker settings win,
// then the real server's, then the virtual server's, then the defaults of
// the checker type.
func resolveChecker(c *Checker, vs *VirtualServer, rs *RealServer) {
	levels := []*CheckDefaults{&c.checks, &rs.Checks, &vs.Checks}
	c.DelayLoop = inherit(levels, checkspec.DefaultDelayLoop, func(d *CheckDefaults) (time.Duration, bool) { return d.DelayLoop, d.set.delayLoop })
	c.ConnectTimeout = inherit(levels, checkspec.DefaultConnectTimeout, func(d *CheckDefaults) (time.Duration, bool) { return d.ConnectTimeout, d.set.connectTimeout })
	def := checkspec.DefaultTiming(checkspec.Type(c.Type.String()), c.DelayLoop)
	c.DelayBeforeRetry = inherit(levels, def.DelayBeforeRetry, func(d *CheckDefaults) (time.Duration, bool) { return d.DelayBeforeRetry, d.set.delayBeforeRetry })
	c.Warmup = inherit(levels, def.Warmup, func(d *CheckDefaults) (time.Duration, bool) { return d.Warmup, d.set.warmup })
	c.Retry = inherit(levels, def.Retry, func(d *CheckDefaults) (int, bool) { return d.Retry, d.set.retry })
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

// strict applies vrrp_strict to an instance as keepalived 2.2 does, saying
// what it changes: the address owner (priority 255) and only it starts as
// MASTER, there is no authentication and no preempt_delay, accept mode
// is off below priority 255 unless set (VRRPv2 cannot set it), a MASTER
// does not answer lower-priority adverts nor send one before it yields.
func (b *builder) strict(in *VRRPInstance, acceptSet bool) {
	owner := in.Priority == 255
	if (in.State == StateMaster) != owner {
		pos := in.Keywords.Of("state")
		if !pos.IsValid() {
			pos = in.Pos
		}
		want := map[bool]VRRPState{true: StateMaster, false: StateBackup}[owner]
		b.d.Warnf(pos, "state", "vrrp_instance %s: with vrrp_strict, state MASTER goes with being the address owner (priority 255), as keepalived requires; starting as %s", in.Name, map[VRRPState]string{StateMaster: "MASTER", StateBackup: "BACKUP"}[want])
		in.State = want
	}
	if in.Auth.Type != AuthNone {
		b.d.Warnf(in.Keywords.Of("authentication"), "authentication", "vrrp_instance %s: vrrp_strict does not allow authentication; ignored, as keepalived does", in.Name)
		in.Auth = Auth{}
	}
	if in.PreemptDelay > 0 {
		b.d.Warnf(in.Keywords.Of("preempt_delay"), "preempt_delay", "vrrp_instance %s: preempt_delay is incompatible with vrrp_strict; reset to 0, as keepalived does", in.Name)
		in.PreemptDelay = 0
	}
	if len(in.UnicastPeers) > 0 {
		b.d.Errorf(in.Keywords.Of("unicast_peer"), "unicast_peer", "vrrp_instance %s: vrrp_strict does not allow unicast peers", in.Name)
	}
	if !in.Adverts.LowerPrioNoAdvert {
		if pos := in.Keywords.Of("lower_prio_no_advert"); pos.IsValid() {
			b.d.Warnf(pos, "lower_prio_no_advert", "vrrp_instance %s: vrrp_strict keeps lower_prio_no_advert on (the RFC's rule), as keepalived does", in.Name)
		}
		in.Adverts.LowerPrioNoAdvert = true
	}
	if in.Adverts.HigherPrioSendAdvert {
		pos := in.Keywords.Of("higher_prio_send_advert")
		if !pos.IsValid() {
			pos = b.cfg.Global.Keywords.Of("vrrp_higher_prio_send_advert")
		}
		b.d.Warnf(pos, "higher_prio_send_advert", "vrrp_instance %s: higher_prio_send_advert is off with vrrp_strict, as keepalived has it", in.Name)
		in.Adverts.HigherPrioSendAdvert = false
	}
	switch {
	case !acceptSet:
		in.Accept = owner
	case in.Accept && in.Version == 2:
		b.d.Warnf(in.Keywords.Of("accept"), "accept", "vrrp_instance %s: accept mode cannot be set for VRRPv2 with vrrp_strict; off, as keepalived does", in.Name)
		in.Accept = false
	}
}

// firstOf keeps the first entry of each name, warning about the others.
func firstOf[T any](b *builder, list []T, kw string, key func(T) (string, Pos)) []T {
	seen := map[string]Pos{}
	var out []T
	for _, e := range list {
		name, pos := key(e)
		if first, dup := seen[name]; dup {
			b.d.Warnf(pos, kw, "%s: %s already tracked at %s; ignored (keepalived ignores it too)", kw, name, first)
			continue
		}
		seen[name] = pos
		out = append(out, e)
	}
	return out
}

// inheritTracks gives track entries that set no weight their definition's
// reverse (and weight, withWeight), and warns about entries whose
// definition is missing (they are ignored later).
func (b *builder) inheritTracks(entries []TrackScript, kw, def string, lookup func(string) (weight int, reverse, ok bool), withWeight bool) {
	for i, e := range entries {
		w, rev, ok := lookup(e.Name)
		if !ok {
			b.d.Warnf(e.Pos, kw, "%s: %s '%s' is not defined; ignored", kw, def, e.Name)
			continue
		}
		if !e.WeightSet {
			if withWeight {
				entries[i].Weight = w
			}
			entries[i].Reverse = rev
		}
	}
}

func (b *builder) scriptDefault(name string) (int, bool, bool) {
	if s := b.cfg.Script(name); s != nil {
		return s.Weight, s.Reverse, true
	}
	return 0, false, false
}

func (b *builder) fileDefault(name string) (int, bool, bool) {
	if f := b.cfg.TrackFile(name); f != nil {
		return f.Weight, f.Reverse, true
	}
	return 0, false, false
}
