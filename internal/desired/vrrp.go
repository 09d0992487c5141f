package desired

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// vrrp maps the vrrp_instance, vrrp_sync_group and vrrp_script blocks onto
// the VRRP runner's configuration, with keepalived's semantics: a sync
// group's tracked objects apply to every member with weight 0 (keepalived
// ignores weights there), zero GARP settings mean "none", PASS
// authentication applies to VRRPv2 only, and the instance family is that of
// its first virtual address. A track_script entry's weight and reverse are
// resolved by the config package (the entry's, else the script's) and are
// copied here as they are. Every instance is validated with its defaults,
// so what the runner would refuse is an error of the plan.
func (p *planner) vrrp() {
	cfg := p.cfg
	out := &p.plan.VRRP
	for _, s := range cfg.Scripts {
		out.Scripts = append(out.Scripts, vrrp.TrackScript{Name: s.Name, Command: s.Cmd.Cmd, RunAs: runAs(cfg.Global, s.Cmd), Interval: s.Interval,
			Timeout: s.Timeout, Rise: s.Rise, Fall: s.Fall, Weight: s.Weight, InitFail: s.InitFail})
	}
	for _, f := range cfg.TrackFiles {
		out.Files = append(out.Files, vrrp.TrackFile{Name: f.Name, Path: f.Path, Init: f.Init, InitOverwrite: f.InitOverwrite})
	}
	groups := map[string]*config.SyncGroup{}
	for _, g := range cfg.SyncGroups {
		groups[g.Name] = g
		out.SyncGroups = append(out.SyncGroups, vrrp.SyncGroup{Name: g.Name, Instances: g.Instances, Notify: notifyFrom(cfg.Global, g.Notify)})
	}
	for _, in := range cfg.Instances {
		c := vrrp.InstanceConfig{
			Name: in.Name, Interface: in.Interface, VRID: uint8(in.VRID), Priority: in.Priority,
			Interval: in.AdvertInt, Version: in.Version, InitialMaster: in.State == config.StateMaster,
			NoPreempt: in.NoPreempt, PreemptDelay: in.PreemptDelay,
			UnicastSrc: in.UnicastSrcIP, Notify: notifyFrom(cfg.Global, in.Notify), SyncGroup: in.SyncGroup,
			VIPs: p.vips("virtual_ipaddress", in.VIPs), ExcludedVIPs: p.vips("virtual_ipaddress_excluded", in.ExcludedVIPs), Routes: p.routes("virtual_routes", in.Routes),
			Rules:      p.rules("virtual_rules", in.Rules),
			McastGroup: in.McastDstIP,
		}
		if len(c.VIPs) > 0 {
			c.IPv6 = c.VIPs[0].Prefix.Addr().Is6()
		}
		if !c.McastGroup.IsValid() {
			c.McastGroup = cfg.Global.VRRPMcastGroup4
			if c.IPv6 {
				c.McastGroup = cfg.Global.VRRPMcastGroup6
			}
		}
		if in.Version == 2 {
			switch in.Auth.Type {
			case config.AuthPass:
				c.AuthPass = in.Auth.Pass
			case config.AuthAH:
				c.AuthAH = true
			}
		}
		for _, peer := range in.UnicastPeers {
			c.UnicastPeers = append(c.UnicastPeers, peer.Addr)
			if peer.MinTTL > 0 || peer.MaxTTL < vrrp.TTL {
				if c.PeerTTL == nil {
					c.PeerTTL = map[netip.Addr]vrrp.TTLRange{}
				}
				c.PeerTTL[peer.Addr] = vrrp.TTLRange{Min: peer.MinTTL, Max: peer.MaxTTL}
			}
		}
		// keepalived's GARP model says 0 for "none"; the runner's zero means
		// "default", so "none" becomes negative.
		g := in.GARP
		c.GARP = vrrp.GARP{MasterDelay: g.MasterDelay, MasterRepeat: g.MasterRepeat, MasterRefresh: g.MasterRefresh,
			MasterRefreshRepeat: g.MasterRefreshRepeat, LowerPrioRepeat: g.LowerPrioRepeat, Interval: g.Interval, NAInterval: g.NAInterval}
		if g.MasterDelay == 0 {
			c.GARP.MasterDelay = -1
		}
		if g.LowerPrioRepeat == 0 {
			c.GARP.LowerPrioRepeat = -1
		}
		c.DontTrackPrimary = in.DontTrackPrimary
		c.DownTimerAdverts = in.Adverts.DownTimerAdverts
		c.LowerPrioNoAdvert = in.Adverts.LowerPrioNoAdvert
		c.HigherPrioSendAdvert = in.Adverts.HigherPrioSendAdvert
		c.UnicastTTL = in.UnicastTTL
		c.PromoteSecondaries = in.PromoteSecondaries
		c.CheckUnicastSrc = in.CheckUnicastSrc
		c.FaultNoPeer = in.UnicastFaultNoPeer
		c.TrackSrcIP = in.TrackSrcIP
		c.NotifyPriorityChanges = in.NotifyPriorityChanges
		c.NoAccept = !in.Accept
		// keepalived ignores the weights of a sync group member's tracked
		// objects unless the group has sync_group_tracking_weight: an
		// interface then only faults the instance, a weighted script or
		// file is not tracked at all. So does govs, and says so.
		sg, grouped := groups[in.SyncGroup]
		weightless := func(pos config.Pos, kw, what string, weight int) bool {
			if !grouped || sg.TrackingWeight || weight == 0 {
				return false
			}
			p.warnf(pos, kw, "vrrp_instance %s: %s: %s, as keepalived does, because the instance is in vrrp_sync_group %s (sync_group_tracking_weight keeps weights)", in.Name, kw, what, sg.Name)
			return true
		}
		for _, t := range in.TrackInterfaces {
			w := t.Weight
			if weightless(t.Pos, "track_interface", "the weight of "+t.Name+" is ignored: it only faults the instance", w) {
				w = 0
			}
			c.TrackInterfaces = append(c.TrackInterfaces, vrrp.Track{Name: t.Name, Weight: w, Reverse: t.Reverse})
		}
		for _, t := range in.TrackScripts {
			if cfg.Script(t.Name) != nil && !weightless(t.Pos, "track_script", "script "+t.Name+" has a weight and is not tracked", t.Weight) {
				c.TrackScripts = append(c.TrackScripts, vrrp.Track{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
			}
		}
		for _, t := range in.TrackFiles {
			if cfg.TrackFile(t.Name) != nil && !weightless(t.Pos, "track_file", "file "+t.Name+" has a weight and is not tracked", t.Weight) {
				c.TrackFiles = append(c.TrackFiles, vrrp.Track{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
			}
		}
		// A sync group's tracked objects apply to every member; keepalived
		// ignores their weights there, so they can only force FAULT.
		if grouped {
			for _, t := range sg.TrackInterfaces {
				c.TrackInterfaces = append(c.TrackInterfaces, vrrp.Track{Name: t.Name, Reverse: t.Reverse})
			}
			for _, t := range sg.TrackScripts {
				if cfg.Script(t.Name) != nil {
					c.TrackScripts = append(c.TrackScripts, vrrp.Track{Name: t.Name, Reverse: t.Reverse})
				}
			}
			for _, t := range sg.TrackFiles {
				if cfg.TrackFile(t.Name) != nil {
					c.TrackFiles = append(c.TrackFiles, vrrp.Track{Name: t.Name, Reverse: t.Reverse})
				}
			}
		}
		if err := c.WithDefaults().Validate(); err != nil {
			p.errorf(in.Pos, "vrrp_instance", "vrrp_instance %s: %v", in.Name, err)
		}
		out.Instances = append(out.Instances, c)
	}
}

func notifyFrom(g config.Global, n config.Notify) vrrp.Notify {
	out := vrrp.Notify{Master: n.Master.Cmd, Backup: n.Backup.Cmd, Fault: n.Fault.Cmd, Stop: n.Stop.Cmd, Any: n.Any.Cmd, MasterRxLowerPri: n.MasterRxLowerPri.Cmd}
	for kind, c := range map[string]config.Command{"master": n.Master, "backup": n.Backup, "fault": n.Fault, "stop": n.Stop, "notify": n.Any, "master_rx_lower_pri": n.MasterRxLowerPri} {
		if as := runAs(g, c); c.Cmd != "" && as != (vrrp.RunAs{}) {
			if out.RunAs == nil {
				out.RunAs = map[string]vrrp.RunAs{}
			}
			out.RunAs[kind] = as
		}
	}
	return out
}

// runAs is whom a script runs as: its own user, else global_defs'
// script_user, else root (keepalived would first try a keepalived_script
// user; govs does not look users up while planning).
func runAs(g config.Global, c config.Command) vrrp.RunAs {
	switch {
	case c.User != "":
		return vrrp.RunAs{User: c.User, Group: c.Group}
	case g.ScriptUser != "":
		return vrrp.RunAs{User: g.ScriptUser, Group: g.ScriptGroup}
	}
	return vrrp.RunAs{}
}

// vips converts virtual_ipaddress entries; options govs cannot carry out
// are errors at their line.
func (p *planner) vips(kw string, vs []config.VIP) []vrrp.VIP {
	var out []vrrp.VIP
	for _, v := range vs {
		rv := vrrp.VIP{Prefix: v.Prefix, Dev: v.Dev, Scope: v.Scope, Label: v.Label, Broadcast: v.Brd, Peer: v.Peer}
		for _, opt := range v.Options {
			name, val, _ := strings.Cut(opt, " ")
			switch name {
			case "home":
				rv.Flags.Home = true
			case "nodad", "-nodad":
				rv.Flags.NoDAD = true
			case "mngtmpaddr":
				rv.Flags.ManageTempAddr = true
			case "noprefixroute":
				rv.Flags.NoPrefixRoute = true
			case "autojoin":
				rv.Flags.AutoJoin = true
			case "no_track":
				// govs never tracks its VIPs' removal by others, which is
				// what no_track asks keepalived for.
			case "preferred_lft":
				lft := uint32(0xffffffff)
				if val != "forever" {
					n, err := strconv.ParseUint(val, 10, 32)
					if err != nil {
						p.errorf(v.Pos, kw, "%s %s: invalid preferred_lft '%s' (want seconds or forever)", kw, v.Prefix, val)
						continue
					}
					lft = uint32(n)
				}
				rv.PreferredLft = &lft
			default:
				// track_group, use_vmac
				p.errorf(v.Pos, kw, "%s %s: option %s is not implemented by govs", kw, v.Prefix, name)
			}
		}
		out = append(out, rv)
	}
	return out
}

// routes converts route entries; one the kernel could not take, or that
// cannot mean what it says, is an error at its line and left out.
func (p *planner) routes(kw string, rs []config.Route) []vrrp.Route {
	var out []vrrp.Route
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			p.errorf(r.Pos, kw, "%s: %v", kw, err)
			continue
		}
		out = append(out, r.Route)
	}
	return out
}

// static plans static_ipaddress, static_routes and static_rules. keepalived needs an
// interface for a static address (there is no instance to take it from).
func (p *planner) static() {
	for _, v := range p.cfg.StaticAddresses {
		if v.Dev == "" {
			p.errorf(v.Pos, "static_ipaddress", "static_ipaddress %s: no dev: a static address needs its interface", v.Prefix)
		}
	}
	addrs := p.vips("static_ipaddress", slices.DeleteFunc(slices.Clone(p.cfg.StaticAddresses), func(v config.VIP) bool { return v.Dev == "" }))
	p.plan.Static = Static{Addresses: addrs, Routes: p.routes("static_routes", p.cfg.StaticRoutes), Rules: p.rules("static_rules", p.cfg.StaticRules)}
}

// defaultRulePriority is what keepalived gives a rule without one (and
// warns about): the kernel's own choice would depend on the rules already
// there.
const defaultRulePriority = 16384

// rules converts rule entries as routes converts routes.
func (p *planner) rules(kw string, rs []config.Rule) []vrrp.Rule {
	var out []vrrp.Rule
	for _, r := range rs {
		if err := r.Validate(); err != nil {
			p.errorf(r.Pos, kw, "%s: %v", kw, err)
			continue
		}
		if r.Priority == 0 {
			p.warnf(r.Pos, kw, "%s: a rule without priority (preference) gets %d, as keepalived gives it (and warns); set one", kw, defaultRulePriority)
			r.Priority = defaultRulePriority
		}
		out = append(out, r.Rule)
	}
	return out
}
