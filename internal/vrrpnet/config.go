package vrrpnet

import (
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// FromConfig maps a keepalived.conf model's vrrp_instance, vrrp_sync_group
// and vrrp_script blocks onto Run's arguments, with keepalived's semantics:
// a track_script entry without a weight takes the script's, "reverse" on the
// script and on the entry combine, a sync group's tracked objects apply to
// every member with weight 0 (keepalived ignores weights there), zero GARP
// settings mean "none", PASS authentication applies to VRRPv2 only, and the
// instance family is that of its first virtual address.
func FromConfig(cfg *config.Config) ([]vrrp.InstanceConfig, []vrrp.SyncGroup, []vrrp.TrackScript) {
	var out struct {
		Instances  []vrrp.InstanceConfig
		SyncGroups []vrrp.SyncGroup
		Scripts    []vrrp.TrackScript
	}
	scripts := map[string]*config.Script{}
	for _, s := range cfg.Scripts {
		scripts[s.Name] = s
		out.Scripts = append(out.Scripts, vrrp.TrackScript{Name: s.Name, Command: s.Cmd.Cmd, Interval: s.Interval,
			Timeout: s.Timeout, Rise: s.Rise, Fall: s.Fall, Weight: s.Weight, InitFail: s.InitFail})
	}
	groups := map[string]*config.SyncGroup{}
	for _, g := range cfg.SyncGroups {
		groups[g.Name] = g
		out.SyncGroups = append(out.SyncGroups, vrrp.SyncGroup{Name: g.Name, Instances: g.Instances, Notify: notifyFrom(g.Notify)})
	}
	for _, in := range cfg.Instances {
		c := vrrp.InstanceConfig{
			Name: in.Name, Interface: in.Interface, VRID: uint8(in.VRID), Priority: in.Priority,
			Interval: in.AdvertInt, Version: in.Version, InitialMaster: in.State == config.StateMaster,
			NoPreempt: in.NoPreempt, PreemptDelay: in.PreemptDelay,
			UnicastSrc: in.UnicastSrcIP, Notify: notifyFrom(in.Notify), SyncGroup: in.SyncGroup,
			VIPs: vipsFrom(in.VIPs), ExcludedVIPs: vipsFrom(in.ExcludedVIPs),
		}
		if len(c.VIPs) > 0 {
			c.IPv6 = c.VIPs[0].Prefix.Addr().Is6()
		}
		if in.Version == 2 {
			switch in.Auth.Type {
			case config.AuthPass:
				c.AuthPass = in.Auth.Pass
			case config.AuthAH:
				c.AuthAH = true
			}
		}
		for _, p := range in.UnicastPeers {
			c.UnicastPeers = append(c.UnicastPeers, p.Addr)
		}
		// keepalived's GARP model says 0 for "none"; the runner's zero means
		// "default", so "none" becomes negative.
		g := in.GARP
		c.GARP = vrrp.GARP{MasterDelay: g.MasterDelay, MasterRepeat: g.MasterRepeat, MasterRefresh: g.MasterRefresh,
			MasterRefreshRepeat: g.MasterRefreshRepeat, LowerPrioRepeat: g.LowerPrioRepeat}
		if g.MasterDelay == 0 {
			c.GARP.MasterDelay = -1
		}
		if g.LowerPrioRepeat == 0 {
			c.GARP.LowerPrioRepeat = -1
		}
		for _, t := range in.TrackInterfaces {
			c.TrackInterfaces = append(c.TrackInterfaces, vrrp.Track{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
		}
		for _, t := range in.TrackScripts {
			c.TrackScripts = append(c.TrackScripts, scriptTrack(t, scripts[t.Name]))
		}
		// A sync group's tracked objects apply to every member; keepalived
		// ignores their weights there, so they can only force FAULT.
		if g, ok := groups[in.SyncGroup]; ok {
			for _, t := range g.TrackInterfaces {
				c.TrackInterfaces = append(c.TrackInterfaces, vrrp.Track{Name: t.Name, Reverse: t.Reverse})
			}
			for _, t := range g.TrackScripts {
				st := scriptTrack(t, scripts[t.Name])
				st.Weight = 0
				c.TrackScripts = append(c.TrackScripts, st)
			}
		}
		out.Instances = append(out.Instances, c)
	}
	return out.Instances, out.SyncGroups, out.Scripts
}

func scriptTrack(t config.TrackScript, s *config.Script) vrrp.Track {
	tr := vrrp.Track{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}
	if s != nil {
		if !t.WeightSet {
			tr.Weight = s.Weight
		}
		tr.Reverse = t.Reverse != s.Reverse
	}
	return tr
}

func notifyFrom(n config.Notify) vrrp.Notify {
	return vrrp.Notify{Master: n.Master.Cmd, Backup: n.Backup.Cmd, Fault: n.Fault.Cmd, Stop: n.Stop.Cmd, Any: n.Any.Cmd}
}

func vipsFrom(vs []config.VIP) []vrrp.VIP {
	var out []vrrp.VIP
	for _, v := range vs {
		out = append(out, vrrp.VIP{Prefix: v.Prefix, Dev: v.Dev, Scope: v.Scope, Label: v.Label})
	}
	return out
}
