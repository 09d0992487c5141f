package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// runRun is "govs run -f FILE": parse a keepalived.conf and run what it
// declares until SIGTERM/SIGINT. This build runs the VRRP part (every
// vrrp_instance, vrrp_sync_group and vrrp_script); a file with only vrrp
// blocks needs nothing else.
func runRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file`")
	fs.StringVar(file, "use-file", "/etc/keepalived/keepalived.conf", "same as -f")
	id := fs.String("config-id", defaultConfigID(), "configuration `id` selecting @id lines (default: short host name, like keepalived)")
	fs.StringVar(id, "i", defaultConfigID(), "same as --config-id")
	debug := fs.Bool("debug", false, "log debug messages")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: govs run [-f FILE] [--config-id ID] [--debug]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs run: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	cfg, diags := config.ParseFile(*file, config.Options{ConfigID: *id})
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if errs := diags.Errors(); len(errs) > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s); not started\n", *file, len(errs), len(diags)-len(errs))
		return 1
	}
	if len(cfg.VirtualServers) > 0 {
		fmt.Fprintf(stderr, "govs run: %d virtual_server block(s) are not run by this command yet; running VRRP only\n", len(cfg.VirtualServers))
	}
	if len(cfg.Instances) == 0 {
		fmt.Fprintf(stderr, "govs run: %s declares no vrrp_instance; nothing to run\n", *file)
		return 1
	}
	return runVRRP(vrrpFromConfig(cfg), *debug, stderr)
}

// vrrpFromConfig maps the keepalived.conf model onto the VRRP runner's types.
func vrrpFromConfig(cfg *config.Config) vrrpRunFile {
	var out vrrpRunFile
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
	return out
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
