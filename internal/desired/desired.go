// Package desired turns a keepalived.conf model into the plan govs runs:
// the data plane's services, the health checkers, the VRRP instances, the
// interfaces XDP attaches to, and the diagnostics for everything in the file
// that govs cannot carry out as keepalived would. It is pure: `govs check`
// prints a plan, `govs run` and every reload apply exactly that plan, and a
// plan with errors is neither printed as runnable nor applied.
package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/govs/govs/internal/checkspec"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/config/diag"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/sched"
	"github.com/govs/govs/internal/vrrp"
)

// Options change what a plan may rely on.
type Options struct {
	// NoDataplane plans VRRP and checks only (`govs run --no-dataplane`):
	// virtual servers then need no interface to attach to.
	NoDataplane bool
	// InterfaceExists reports whether this host has an interface; nil
	// checks nothing (a plan built for another host).
	InterfaceExists func(name string) bool
	// MemTotal is this host's memory in bytes: table sizes that would take
	// more than half of it are refused. 0 checks nothing.
	MemTotal uint64
}

// Plan is everything one configuration runs.
type Plan struct {
	// Config is the model the plan was built from.
	Config *config.Config
	// Services are the data plane's virtual services, in file order; a
	// virtual_server_group contributes one per address.
	Services []Service
	// Checks are the health checkers, one entry per virtual_server.
	Checks []checkspec.VirtualServer
	// VRRP are the instances, sync groups and scripts.
	VRRP VRRP
	// Interfaces are the interfaces the data plane attaches to.
	Interfaces []string
	// BGP is the BGP speaker (govs_bgp), nil without one.
	BGP *BGP
	// LocalAddrs are the FullNAT local addresses govs puts on an interface
	// (a local_address_group line that names one), so real servers reach
	// them; the others the operator holds.
	LocalAddrs []LocalAddr
	// RealAddrs are the addresses frames may be forwarded to (real and
	// sorry servers), for neighbour resolution.
	RealAddrs []netip.Addr
	// Sync is the connection synchronisation setting (nil: none).
	Sync *config.LVSSyncDaemon
	// VRRPStartupDelay is vrrp_startup_delay: how long after govs starts
	// its VRRP instances do.
	VRRPStartupDelay time.Duration
	// VRRPFIFO is vrrp_notify_fifo (nil: none).
	VRRPFIFO *NotifyFIFO
	// Startup and Shutdown are startup_script and shutdown_script (nil:
	// none): run once, before govs starts anything and after it stopped.
	Startup, Shutdown *Hook
	// Static are static_ipaddress, static_routes and static_rules: held
	// while govs runs.
	Static Static
	// Tables are the data plane's table sizes, defaults resolved.
	Tables dpstate.TableSizes
	// NewFlowLimit is govs_new_flow_limit (0: none), for the data plane.
	NewFlowLimit uint32
	// Timeouts are lvs_timeouts, for the data plane (zero: its default).
	Timeouts dpstate.Timeouts
	// Suspensions are the virtual servers with ha_suspend: their checks
	// run only while one of the VRRP instances holding their address is
	// MASTER here.
	Suspensions []Suspension
	// Diagnostics are the configuration's own diagnostics followed by the
	// plan's: an error means the plan must not run.
	Diagnostics diag.List
}

// OK reports whether the plan has no error and may run.
func (p *Plan) OK() bool { return !p.Diagnostics.HasErrors() }

// Err returns the plan's errors as one error, or nil.
func (p *Plan) Err() error {
	errs := p.Diagnostics.Errors()
	if len(errs) == 0 {
		return nil
	}
	lines := make([]string, len(errs))
	for i, d := range errs {
		lines[i] = d.String()
	}
	return fmt.Errorf("%d error(s):\n%s", len(errs), strings.Join(lines, "\n"))
}

// RealKey identifies a real server within a service.
type RealKey struct {
	Addr netip.Addr
	Port uint16
}

func (k RealKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Service is one virtual service of the data plane.
type Service struct {
	Key dpstate.ServiceKey
	// Pos is the virtual_server block it comes from.
	Pos config.Pos
	// Pool is the health checker's name for the virtual server, which its
	// pool of weights is reported under (shared by a group's services).
	Pool               string
	Scheduler          sched.Kind
	Method             config.Method
	GUEPort            uint16
	PersistenceTimeout time.Duration
	// PersistenceBits is 0 for per-address persistence.
	PersistenceBits int
	// HashPort (sh-port, mh-port) and OnePacket (ops) are the scheduler
	// flags that change what the data plane does.
	HashPort  bool
	OnePacket bool
	// LocalAddrs are a FullNAT service's source addresses towards its
	// real servers (laddr_group_name).
	LocalAddrs []netip.Addr
	Reals      []Real
	Sorry      *Real
}

// LocalAddr is a FullNAT local address and the interface it goes on.
type LocalAddr struct {
	Addr      netip.Addr
	Interface string
}

// schedulerFlags reads a virtual server's scheduler flags as IPVS applies
// them: flag-1 and flag-2 are sh's and mh's fallback and port flags, and a
// flag the scheduler does not use is ignored (with a warning, as it
// changes nothing). ops was already dropped for TCP by the resolver.
func (p *planner) schedulerFlags(vs *config.VirtualServer, kind sched.Kind, at func(string) config.Pos) (hashPort, onePacket bool) {
	for _, f := range vs.SchedulerFlags {
		meaning := f
		if kind == sched.SourceHash || kind == sched.Maglev {
			prefix := "sh-"
			if kind == sched.Maglev {
				prefix = "mh-"
			}
			switch f {
			case "flag-1":
				meaning = prefix + "fallback"
			case "flag-2":
				meaning = prefix + "port"
			}
		}
		switch {
		case meaning == "ops":
			onePacket = true
		case kind == sched.SourceHash && meaning == "sh-port", kind == sched.Maglev && meaning == "mh-port":
			hashPort = true
		case kind == sched.SourceHash && meaning == "sh-fallback", kind == sched.Maglev && meaning == "mh-fallback":
			// govs's sh and mh tables never map a client to a server of
			// weight 0, which is what the fallback flag asks of IPVS.
		default:
			p.warnf(at(f), f, "virtual_server %s: scheduler flag %s has no meaning for lb_algo %s; ignored (as IPVS ignores it)", vs.Name(), f, kind)
		}
	}
	return hashPort, onePacket
}

// limits refuses what the data plane cannot hold, at the virtual server
// that goes beyond it: otherwise every apply would fail at run time and
// health verdicts would stop reaching the data plane.
func (p *planner) limits() {
	reals := 0
	for i, s := range p.plan.Services {
		if i == dpstate.MaxServices {
			p.errorf(s.Pos, "virtual_server", "virtual_server %v: the data plane holds at most %d services (each address of a virtual_server_group counts); this is number %d of %d",
				s.Key, dpstate.MaxServices, i+1, len(p.plan.Services))
		}
		n := len(s.Reals)
		if s.Sorry != nil {
			n++
		}
		if reals < dpstate.MaxRealIDs && reals+n > dpstate.MaxRealIDs {
			p.errorf(s.Pos, "real_server", "virtual_server %v: the data plane holds at most %d real servers over all services (sorry servers count); this one brings the total to %d", s.Key, dpstate.MaxRealIDs, reals+n)
		}
		reals += n
		// Weighted sequences are scaled to fit (sched.MaxSequence) and
		// Maglev tables have a fixed size, so only the schedulers that
		// scan the real servers have a per-service limit.
		if s.Scheduler.ScansReals() && len(s.Reals) > dpstate.MaxLeastConnReals {
			p.errorf(s.Pos, "lb_algo", "virtual_server %v: %s balances at most %d real servers, this one has %d", s.Key, s.Scheduler, dpstate.MaxLeastConnReals, len(s.Reals))
		}
	}
}

// Suspension puts a virtual server's checks on hold unless one of the
// instances is MASTER (keepalived's ha_suspend).
type Suspension struct {
	// VirtualServer is the checks' name for it (Service.Pool).
	VirtualServer string
	Instances     []string
}

// Suspended reports whether the checks are on hold given which
// instances are MASTER.
func (s Suspension) Suspended(master func(instance string) bool) bool {
	for _, in := range s.Instances {
		if master(in) {
			return false
		}
	}
	return true
}

// suspensions finds, for each virtual server with ha_suspend, the
// instances holding its addresses.
func (p *planner) suspensions() {
	for _, vs := range p.cfg.VirtualServers {
		if !vs.HASuspend {
			continue
		}
		name := vs.Name()
		addrs := map[netip.Addr]bool{}
		for _, s := range p.plan.Services {
			if s.Pool == name {
				addrs[s.Key.Addr] = true
			}
		}
		var holders []string
		for _, in := range p.cfg.Instances {
			for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
				if addrs[v.Prefix.Addr()] && !slices.Contains(holders, in.Name) {
					holders = append(holders, in.Name)
				}
			}
		}
		if len(holders) == 0 {
			p.warnf(vs.Keywords.Of("ha_suspend"), "ha_suspend", "ha_suspend: no vrrp_instance holds the address of virtual_server %s, so its checks always run", name)
			continue
		}
		p.plan.Suspensions = append(p.plan.Suspensions, Suspension{VirtualServer: name, Instances: holders})
	}
}

// Real is a real server as configured.
type Real struct {
	Key    RealKey
	Weight int
	Method config.Method
	// GUEPort is TUN's GUE port; 0 is IP-in-IP.
	GUEPort uint16
	// StartsDown is set when a checker has alpha: keepalived keeps the
	// server out until its first success.
	StartsDown bool
	// Checkers describe its health checkers, one line each.
	Checkers []string
}

// VRRP is the VRRP part of a plan.
type VRRP struct {
	Instances  []vrrp.InstanceConfig
	SyncGroups []vrrp.SyncGroup
	Scripts    []vrrp.TrackScript
	Files      []vrrp.TrackFile
}

// NotifyFIFO is a FIFO govs writes a line to per state change, owned by
// Owner when govs makes it, and the script (if any) that reads it, started
// with the FIFO's path as its last argument and stopped with govs.
type NotifyFIFO struct {
	Path     string
	Owner    vrrp.RunAs
	Script   string
	ScriptAs vrrp.RunAs
}

// Hook is a script govs runs once and waits for, killed past Timeout.
type Hook struct {
	Command string
	RunAs   vrrp.RunAs
	Timeout time.Duration
}

// Static is what keepalived sets at start and removes at stop, whatever
// the VRRP state: addresses first, then routes (which may need them), then
// rules.
type Static struct {
	Addresses []vrrp.VIP
	Routes    []vrrp.Route
	Rules     []vrrp.Rule
}

// maxGroupRange bounds how many VIPs one virtual_server_group range may
// expand to.
const maxGroupRange = 256

// planner collects a plan and its diagnostics.
type planner struct {
	cfg  *config.Config
	opts Options
	plan *Plan
}

func (p *planner) errorf(pos config.Pos, keyword, format string, args ...any) {
	p.plan.Diagnostics.Errorf(pos, keyword, format, args...)
}

func (p *planner) warnf(pos config.Pos, keyword, format string, args ...any) {
	p.plan.Diagnostics.Warnf(pos, keyword, format, args...)
}

// Build computes the plan of a configuration and the diagnostics parsing
// it gave. It never fails: what it cannot carry out is an error diagnostic.
func Build(cfg *config.Config, diags diag.List, opts Options) *Plan {
	p := &planner{cfg: cfg, opts: opts, plan: &Plan{Config: cfg, Diagnostics: slices.Clone(diags)}}
	if cfg == nil {
		return p.plan
	}
	p.services()
	p.limits()
	p.plan.Checks = checks(cfg)
	p.vrrp()
	p.static()
	p.suspensions()
	p.unsupportedVRRP()
	p.unsupportedChecks()
	p.mailAlerts()
	p.interfaces()
	p.bgp()
	p.hostInterfaces()
	p.scriptSecurity()
	p.plan.RealAddrs = realAddrs(cfg)
	if sd := cfg.Global.LVSSyncDaemon; sd != nil {
		c := *sd
		p.plan.Sync = &c
	}
	hook := func(c config.Command, timeout time.Duration) *Hook {
		if c.Cmd == "" {
			return nil
		}
		return &Hook{Command: c.Cmd, RunAs: runAs(cfg.Global, c), Timeout: timeout}
	}
	p.plan.VRRPStartupDelay = cfg.Global.VRRPStartupDelay
	if f := cfg.Global.VRRPNotifyFIFO; f.Cmd != "" {
		p.plan.VRRPFIFO = &NotifyFIFO{Path: f.Cmd, Owner: vrrp.RunAs{User: f.User, Group: f.Group}}
		if sc := cfg.Global.VRRPNotifyFIFOScript; sc.Cmd != "" {
			p.plan.VRRPFIFO.Script, p.plan.VRRPFIFO.ScriptAs = sc.Cmd, runAs(cfg.Global, sc)
		}
	} else if sc := cfg.Global.VRRPNotifyFIFOScript; sc.Cmd != "" {
		p.warnf(sc.Pos, "vrrp_notify_fifo_script", "vrrp_notify_fifo_script without vrrp_notify_fifo: nothing to read; ignored")
	}
	p.plan.Startup = hook(cfg.Global.StartupScript, cfg.Global.StartupTimeout)
	p.plan.Shutdown = hook(cfg.Global.ShutdownScript, cfg.Global.ShutdownTimeout)
	p.plan.NewFlowLimit = cfg.Global.NewFlowLimit
	p.plan.Timeouts = dpstate.Timeouts(cfg.Global.LVSTimeouts)
	p.plan.Tables = dpstate.TableSizes{Conns: dpstate.ConnTableSize, Embryos: dpstate.EmbryoTableSize}
	if n := cfg.Global.ConnTableSize; n > 0 {
		p.plan.Tables.Conns = n
	}
	if n := cfg.Global.EmbryoTableSize; n > 0 {
		p.plan.Tables.Embryos = n
	}
	if need := p.plan.Tables.Bytes(); p.opts.MemTotal > 0 && need > p.opts.MemTotal/2 && !p.opts.NoDataplane {
		kw := "govs_conn_table_size"
		pos := cfg.Global.Keywords.Of(kw)
		if !pos.IsValid() {
			kw, pos = "govs_embryo_table_size", cfg.Global.Keywords.Of("govs_embryo_table_size")
		}
		p.errorf(pos, kw, "%s: the connection tables (%d + %d entries) would take about %d MiB, more than half of this host's %d MiB",
			kw, p.plan.Tables.Conns, p.plan.Tables.Embryos, need>>20, p.opts.MemTotal>>20)
	}
	p.plan.Diagnostics.Sort()
	return p.plan
}

// services expands the virtual servers into data-plane services. Anything
// the data plane cannot forward as IPVS would is an error at the keyword.
func (p *planner) services() {
	cfg := p.cfg
	for _, vs := range cfg.VirtualServers {
		at := func(kw string) config.Pos {
			if pos := vs.Keywords.Of(kw); pos.IsValid() {
				return pos
			}
			return vs.Pos
		}
		name := vs.Name()
		bad := false
		fail := func(kw, format string, args ...any) {
			p.errorf(at(kw), kw, "virtual_server %s: %s", name, fmt.Sprintf(format, args...))
			bad = true
		}
		var proto dpstate.Protocol
		switch vs.Protocol {
		case config.TCP:
			proto = dpstate.TCP
		case config.UDP:
			proto = dpstate.UDP
		default:
			fail("protocol", "protocol %s is not balanced by the govs data plane (TCP and UDP are)", vs.Protocol)
		}
		kind, err := sched.ParseKind(vs.Scheduler)
		if err != nil {
			kw := "lb_algo"
			if vs.Keywords.Of("lvs_sched").IsValid() {
				kw = "lvs_sched"
			}
			fail(kw, "%v", err)
		}
		hashPort, onePacket := p.schedulerFlags(vs, kind, at)
		var addrs []netip.AddrPort
		// marks are the fwmark services' marks, each with its family's
		// unspecified address.
		type mark struct {
			mark uint32
			addr netip.Addr
			pos  config.Pos
		}
		var marks []mark
		switch {
		case vs.Fwmark != 0:
			marks = append(marks, mark{vs.Fwmark, fwmarkFamily(vs, vs.Family), at("fwmark")})
		case vs.Group != "":
			g := cfg.VirtualServerGroup(vs.Group)
			if g == nil {
				fail("virtual_server", "no virtual_server_group %q", vs.Group)
				break
			}
			for _, e := range g.Entries {
				if e.Fwmark != 0 {
					marks = append(marks, mark{e.Fwmark, fwmarkFamily(vs, e.Family), e.Pos})
					continue
				}
				n := 0
				for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
					if n++; n > maxGroupRange {
						p.errorf(e.Pos, "virtual_server_group", "virtual_server_group %s: range %s-%s has more than %d addresses", g.Name, e.First, e.Last, maxGroupRange)
						bad = true
						break
					}
					addrs = append(addrs, netip.AddrPortFrom(a, e.Port))
				}
			}
		default:
			addrs = []netip.AddrPort{netip.AddrPortFrom(vs.Addr, vs.Port)}
		}
		var reals []Real
		byAddr := map[netip.Addr]*config.RealServer{}
		for _, rs := range vs.RealServers {
			if o := byAddr[rs.Addr]; o != nil {
				// DR and TUN duplicates are dropped with a warning by
				// config; NAT ones differ in port.
				p.errorf(rs.Pos, "real_server", "real_server %s of virtual_server %s: the real server at %s has the same address; the govs data plane holds one entry per address and service, so NAT to two ports of one address is not supported", RealKey{rs.Addr, rs.Port}, name, o.Pos)
				bad = true
				continue
			}
			byAddr[rs.Addr] = rs
			for _, kw := range []string{"uthreshold", "lthreshold"} {
				if pos := rs.Keywords.Of(kw); pos.IsValid() {
					p.errorf(pos, kw, "real_server %s: %s (connection thresholds) is not implemented by the govs data plane", RealKey{rs.Addr, rs.Port}, kw)
					bad = true
				}
			}
			r := Real{Key: RealKey{rs.Addr, rs.Port}, Weight: rs.Weight, Method: rs.Method, GUEPort: rs.GUEPort}
			for _, ch := range rs.Checkers {
				r.StartsDown = r.StartsDown || ch.Alpha
				r.Checkers = append(r.Checkers, config.DescribeChecker(ch, rs))
			}
			reals = append(reals, r)
		}
		var sorry *Real
		if s := vs.SorryServer; s != nil {
			sorry = &Real{Key: RealKey{s.Addr, s.Port}, Weight: 1, Method: s.Method, GUEPort: s.GUEPort}
		}
		for _, m := range marks {
			if !p.fwmarkReals(vs, m.addr, m.pos) {
				bad = true
			}
		}
		laddrs, ok := p.localAddrs(vs, onePacket)
		if !ok {
			bad = true
		}
		if bad {
			continue
		}
		keys := make([]dpstate.ServiceKey, 0, len(addrs)+len(marks))
		for _, ap := range addrs {
			keys = append(keys, dpstate.ServiceKey{Addr: ap.Addr(), Port: ap.Port(), Proto: proto})
		}
		for _, m := range marks {
			keys = append(keys, dpstate.ServiceKey{Addr: m.addr, Fwmark: m.mark})
		}
		for _, key := range keys {
			svc := Service{
				Key:                key,
				Pos:                vs.Pos,
				Pool:               name,
				Scheduler:          kind,
				Method:             vs.Method,
				GUEPort:            vs.GUEPort,
				PersistenceTimeout: vs.PersistenceTimeout,
				HashPort:           hashPort,
				OnePacket:          onePacket,
				LocalAddrs:         laddrs,
				Reals:              reals,
				Sorry:              sorry,
			}
			if vs.PersistenceTimeout > 0 && vs.PersistenceGranularity < key.Addr.BitLen() {
				svc.PersistenceBits = vs.PersistenceGranularity
			}
			if i := slices.IndexFunc(p.plan.Services, func(o Service) bool { return o.Key == svc.Key }); i >= 0 {
				p.errorf(vs.Pos, "virtual_server", "virtual_server %s: %s is also a service of the virtual_server at %s", name, keyName(key), p.plan.Services[i].Pos)
				continue
			}
			p.plan.Services = append(p.plan.Services, svc)
		}
	}
}

// fwmarkFamily is a fwmark service's family as its unspecified address:
// ip_family when set, else that of the first real (or sorry) server, as
// keepalived takes it, else IPv4.
func fwmarkFamily(vs *config.VirtualServer, family string) netip.Addr {
	v6 := family == "inet6"
	if family == "" {
		switch {
		case len(vs.RealServers) > 0:
			v6 = vs.RealServers[0].Addr.Is6()
		case vs.SorryServer != nil:
			v6 = vs.SorryServer.Addr.Is6()
		}
	}
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// fwmarkReals checks the real servers of a fwmark service of family addr:
// DR needs the family of the marked packets, and NAT is not carried out
// for fwmark services (its replies would have to go back through the
// fwmark interface).
func (p *planner) fwmarkReals(vs *config.VirtualServer, addr netip.Addr, pos config.Pos) bool {
	type server struct {
		addr   netip.Addr
		method config.Method
		pos    config.Pos
		kind   config.Pos // its own lb_kind, if any
	}
	var servers []server
	for _, rs := range vs.RealServers {
		servers = append(servers, server{rs.Addr, rs.Method, rs.Pos, rs.Keywords.Of("lb_kind")})
	}
	if s := vs.SorryServer; s != nil {
		servers = append(servers, server{s.Addr, s.Method, s.Pos, config.Pos{}})
	}
	for _, rs := range servers {
		switch {
		case rs.method == config.NAT:
			at := rs.kind
			if !at.IsValid() {
				at = vs.Keywords.Of("lb_kind")
			}
			dflt := ""
			if !at.IsValid() {
				at, dflt = pos, " (keepalived's default without lb_kind)"
			}
			p.errorf(at, "lb_kind", "virtual_server %s: lb_kind NAT%s is not supported for fwmark services by the govs data plane (DR and TUN are): the NAT replies would have to leave through the fwmark interface", vs.Name(), dflt)
			return false
		case rs.method == config.DR && rs.addr.Is4() != addr.Is4():
			fam := "IPv4"
			if addr.Is6() {
				fam = "IPv6"
			}
			at := rs.pos
			if !at.IsValid() {
				at = pos
			}
			p.errorf(at, "real_server", "virtual_server %s: real server %s is not %s like the fwmark service (ip_family): DR keeps the packet's addresses", vs.Name(), rs.addr, fam)
			return false
		}
	}
	return true
}

// localAddrs expands a FullNAT virtual server's local_address_group (nil
// for the other methods) and records the addresses govs must hold.
func (p *planner) localAddrs(vs *config.VirtualServer, onePacket bool) ([]netip.Addr, bool) {
	g := p.cfg.LocalAddressGroup(vs.LocalAddressGroup)
	fnat := vs.SorryServer != nil && vs.SorryServer.Method == config.FNAT
	for _, rs := range vs.RealServers {
		fnat = fnat || rs.Method == config.FNAT
	}
	if !fnat {
		return nil, true
	}
	if g == nil {
		return nil, false // config reported it
	}
	at := vs.Keywords.Of("laddr_group_name")
	switch {
	case vs.Fwmark != 0 || vs.Group != "" && slices.ContainsFunc(p.cfg.VirtualServerGroup(vs.Group).Entries, func(e config.VSGroupEntry) bool { return e.Fwmark != 0 }):
		p.errorf(at, "lb_kind", "virtual_server %s: lb_kind FNAT is not supported for fwmark services by the govs data plane (DR and TUN are)", vs.Name())
		return nil, false
	case onePacket:
		p.errorf(vs.Keywords.Of("ops"), "ops", "virtual_server %s: ops (one-packet scheduling) with lb_kind FNAT would take a local port per datagram; not supported", vs.Name())
		return nil, false
	}
	var out []netip.Addr
	ok := true
	for _, e := range g.Entries {
		for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
			if vs.Addr.IsValid() && a.Is4() != vs.Addr.Is4() {
				p.errorf(e.Pos, "local_address_group", "local_address_group %s: %s is not of the family of virtual_server %s", g.Name, a, vs.Name())
				ok = false
				break
			}
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
			if e.Interface != "" && !slices.ContainsFunc(p.plan.LocalAddrs, func(l LocalAddr) bool { return l.Addr == a }) {
				p.plan.LocalAddrs = append(p.plan.LocalAddrs, LocalAddr{Addr: a, Interface: e.Interface})
			}
		}
	}
	if len(out) > dpstate.MaxLocalAddrs {
		p.errorf(at, "laddr_group_name", "laddr_group_name %s: %d local addresses, the govs data plane holds %d per service", g.Name, len(out), dpstate.MaxLocalAddrs)
		ok = false
	}
	return out, ok
}

// keyName names a service key in messages.
func keyName(k dpstate.ServiceKey) string {
	if k.Fwmark != 0 {
		return fmt.Sprintf("fwmark %d", k.Fwmark)
	}
	return netip.AddrPortFrom(k.Addr, k.Port).String()
}

// interfaces decides which interfaces the data plane attaches to: the
// interface of the vrrp_instance (or the VIP's own dev) holding each
// service's VIP, and govs_xdp_interface for VIPs not under VRRP.
func (p *planner) interfaces() {
	cfg := p.cfg
	owner := map[netip.Addr]string{}
	for _, in := range cfg.Instances {
		for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
			dev := in.Interface
			if v.Dev != "" {
				dev = v.Dev
			}
			owner[v.Prefix.Addr()] = dev
		}
	}
	seen := map[string]bool{}
	add := func(dev string) {
		if dev != "" && !seen[dev] {
			seen[dev] = true
			p.plan.Interfaces = append(p.plan.Interfaces, dev)
		}
	}
	reported := map[netip.Addr]bool{}
	for _, s := range p.plan.Services {
		if s.Key.Fwmark != 0 {
			continue // internal/fwmark's interface, attached by the director
		}
		if dev, ok := owner[s.Key.Addr]; ok {
			add(dev)
		} else if len(cfg.Global.XDPInterfaces) == 0 && !p.opts.NoDataplane && !reported[s.Key.Addr] {
			reported[s.Key.Addr] = true
			p.errorf(s.Pos, "virtual_server", "virtual_server %s: VIP %s is in no vrrp_instance's virtual_ipaddress and global_defs has no govs_xdp_interface: govs does not know where to attach the data plane", s.Pool, s.Key.Addr)
		}
	}
	for _, dev := range cfg.Global.XDPInterfaces {
		add(dev)
	}
	if p.opts.NoDataplane {
		p.plan.Interfaces = nil
	}
}

// realAddrs lists every address the data plane may forward to.
func realAddrs(cfg *config.Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			add(rs.Addr)
		}
		if vs.SorryServer != nil {
			add(vs.SorryServer.Addr)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// hostInterfaces checks that the interfaces the plan names exist here, as
// keepalived -t does: VRRP on a missing interface cannot start.
func (p *planner) hostInterfaces() {
	exists := p.opts.InterfaceExists
	if exists == nil {
		return
	}
	check := func(pos config.Pos, kw, name string) {
		if name != "" && !exists(name) {
			p.errorf(pos, kw, "%s: interface %s does not exist on this host", kw, name)
		}
	}
	for _, in := range p.cfg.Instances {
		check(in.Keywords.Of("interface"), "interface", in.Interface)
		for _, t := range in.TrackInterfaces {
			check(t.Pos, "track_interface", t.Name)
		}
		for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
			check(v.Pos, "virtual_ipaddress", v.Dev)
		}
		for _, r := range in.Routes {
			check(r.Pos, "virtual_routes", r.Dev)
		}
		for _, r := range in.Rules {
			check(r.Pos, "virtual_rules", r.IIF)
			check(r.Pos, "virtual_rules", r.OIF)
		}
	}
	for _, r := range p.cfg.StaticRules {
		check(r.Pos, "static_rules", r.IIF)
		check(r.Pos, "static_rules", r.OIF)
	}
	for _, v := range p.cfg.StaticAddresses {
		check(v.Pos, "static_ipaddress", v.Dev)
	}
	for _, r := range p.cfg.StaticRoutes {
		check(r.Pos, "static_routes", r.Dev)
	}
	if sd := p.cfg.Global.LVSSyncDaemon; sd != nil {
		check(sd.Pos, "lvs_sync_daemon", sd.Interface)
	}
	for _, dev := range p.cfg.Global.XDPInterfaces {
		check(p.cfg.Global.Keywords.Of("govs_xdp_interface"), "govs_xdp_interface", dev)
	}
	for _, g := range p.cfg.LocalAddressGroups {
		for _, e := range g.Entries {
			check(e.Pos, "local_address_group", e.Interface)
		}
	}
}

// scriptSecurity warns, as keepalived does, when scripts run as root
// without enable_script_security.
func (p *planner) scriptSecurity() {
	if p.cfg.Global.EnableScriptSecurity {
		return
	}
	var first config.Pos
	note := func(c config.Command) {
		if c.IsSet() && !first.IsValid() {
			first = c.Pos
		}
	}
	note(p.cfg.Global.StartupScript)
	note(p.cfg.Global.ShutdownScript)
	note(p.cfg.Global.VRRPNotifyFIFOScript)
	for _, s := range p.cfg.Scripts {
		note(s.Cmd)
	}
	for _, in := range p.cfg.Instances {
		for _, c := range []config.Command{in.Notify.Master, in.Notify.Backup, in.Notify.Fault, in.Notify.Stop, in.Notify.Any, in.Notify.MasterRxLowerPri} {
			note(c)
		}
	}
	for _, vs := range p.cfg.VirtualServers {
		note(vs.QuorumUp)
		note(vs.QuorumDown)
		for _, rs := range vs.RealServers {
			note(rs.NotifyUp)
			note(rs.NotifyDown)
			for _, ch := range rs.Checkers {
				if ch.Misc != nil {
					note(ch.Misc.Path)
				}
			}
		}
	}
	if first.IsValid() {
		p.plan.Diagnostics.Warnf(first, "enable_script_security", "scripts run as root and enable_script_security is not set in global_defs (keepalived warns about this too); govs runs them as root")
	}
}
