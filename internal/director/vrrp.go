package director

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// vrrpConfig maps the configuration's vrrp_instance, vrrp_sync_group and
// vrrp_script blocks onto the VRRP runner's model. A sync group's tracked
// interfaces and scripts apply to each of its instances, as in keepalived.
func vrrpConfig(cfg *config.Config) ([]vrrp.InstanceConfig, []vrrp.SyncGroup, []vrrp.TrackScript) {
	groupOf := map[string]*config.SyncGroup{}
	var groups []vrrp.SyncGroup
	for _, g := range cfg.SyncGroups {
		for _, name := range g.Instances {
			groupOf[name] = g
		}
		groups = append(groups, vrrp.SyncGroup{Name: g.Name, Instances: g.Instances, Notify: notify(g.Notify)})
	}
	var scripts []vrrp.TrackScript
	for _, s := range cfg.Scripts {
		scripts = append(scripts, vrrp.TrackScript{
			Name: s.Name, Command: s.Cmd.Cmd, Interval: s.Interval, Timeout: s.Timeout,
			Rise: s.Rise, Fall: s.Fall, Weight: s.Weight,
		})
	}
	var insts []vrrp.InstanceConfig
	for _, in := range cfg.Instances {
		ic := vrrp.InstanceConfig{
			Name:          in.Name,
			Interface:     in.Interface,
			VRID:          uint8(in.VRID),
			Priority:      in.Priority,
			Interval:      in.AdvertInt,
			Version:       in.Version,
			InitialMaster: in.State == config.StateMaster,
			NoPreempt:     in.NoPreempt,
			PreemptDelay:  in.PreemptDelay,
			AuthAH:        in.Auth.Type == config.AuthAH,
			UnicastSrc:    in.UnicastSrcIP,
			Notify:        notify(in.Notify),
			GARP: vrrp.GARP{
				MasterDelay:         in.GARP.MasterDelay,
				MasterRepeat:        in.GARP.MasterRepeat,
				MasterRefresh:       in.GARP.MasterRefresh,
				MasterRefreshRepeat: in.GARP.MasterRefreshRepeat,
				LowerPrioRepeat:     in.GARP.LowerPrioRepeat,
			},
		}
		if ic.GARP.MasterDelay == 0 {
			ic.GARP.MasterDelay = -1 // keepalived's garp_master_delay 0: no second burst
		}
		if in.Auth.Type == config.AuthPass {
			ic.AuthPass = in.Auth.Pass
		}
		for _, v := range in.VIPs {
			ic.VIPs = append(ic.VIPs, vrrpVIP(v))
		}
		for _, v := range in.ExcludedVIPs {
			ic.ExcludedVIPs = append(ic.ExcludedVIPs, vrrpVIP(v))
		}
		if len(ic.VIPs) > 0 {
			ic.IPv6 = ic.VIPs[0].Prefix.Addr().Is6()
		}
		for _, p := range in.UnicastPeers {
			ic.UnicastPeers = append(ic.UnicastPeers, p.Addr)
		}
		tracks := in.TrackInterfaces
		scriptTracks := in.TrackScripts
		if g := groupOf[in.Name]; g != nil {
			ic.SyncGroup = g.Name
			tracks = append(append([]config.TrackInterface(nil), tracks...), g.TrackInterfaces...)
			scriptTracks = append(append([]config.TrackScript(nil), scriptTracks...), g.TrackScripts...)
		}
		for _, t := range tracks {
			ic.TrackInterfaces = append(ic.TrackInterfaces, vrrp.Track{Name: t.Name, Weight: t.Weight})
		}
		for _, t := range scriptTracks {
			w := 0
			if t.WeightSet {
				w = t.Weight
			}
			ic.TrackScripts = append(ic.TrackScripts, vrrp.Track{Name: t.Name, Weight: w})
		}
		insts = append(insts, ic)
	}
	return insts, groups, scripts
}

func vrrpVIP(v config.VIP) vrrp.VIP {
	return vrrp.VIP{Prefix: v.Prefix, Dev: v.Dev, Scope: v.Scope, Label: v.Label}
}

func notify(n config.Notify) vrrp.Notify {
	return vrrp.Notify{Master: n.Master.Cmd, Backup: n.Backup.Cmd, Fault: n.Fault.Cmd, Stop: n.Stop.Cmd, Any: n.Any.Cmd}
}

// vrrpGroup runs the VRRP instances in the background and remembers their
// states for `govs list`.
type vrrpGroup struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	insts  []vrrp.InstanceConfig
	states map[string]vrrpnet.StateChange
}

// defaultVRRP starts the instances with the kernel (raw sockets, netlink).
func defaultVRRP(ctx context.Context, cfg *config.Config, log *slog.Logger) (VRRP, error) {
	insts, groups, scripts := vrrpConfig(cfg)
	for i := range insts {
		insts[i] = insts[i].WithDefaults()
		if err := insts[i].Validate(); err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", insts[i].Name, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &vrrpGroup{cancel: cancel, done: make(chan struct{}), insts: insts, states: map[string]vrrpnet.StateChange{}}
	errc := make(chan error, 1)
	go func() {
		defer close(g.done)
		errc <- vrrpnet.Run(ctx, insts, groups, vrrpnet.Options{Logger: log, Scripts: scripts, OnState: g.onState})
	}()
	// Run reports configuration and socket errors before it starts anything;
	// give it a moment to do so, so `govs run` fails loudly on them.
	select {
	case err := <-errc:
		cancel()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("vrrp stopped at start")
	case <-g.started():
	}
	return g, nil
}

// started is closed once every instance has reported its first state, or
// after a short grace period.
func (g *vrrpGroup) started() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for range 50 {
			g.mu.Lock()
			n := len(g.states)
			g.mu.Unlock()
			if n >= len(g.insts) {
				return
			}
			select {
			case <-g.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return ch
}

func (g *vrrpGroup) onState(c vrrpnet.StateChange) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.states[c.Instance] = c
}

// Status reports every instance's state.
func (g *vrrpGroup) Status() []status.VRRPInstance {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]status.VRRPInstance, 0, len(g.insts))
	for _, in := range g.insts {
		st := status.VRRPInstance{Name: in.Name, Interface: in.Interface, VRID: in.VRID, State: "INIT", Priority: in.Priority, EffectivePriority: in.Priority}
		if c, ok := g.states[in.Name]; ok {
			st.State = c.New.String()
			st.EffectivePriority = c.Priority
		}
		for _, v := range in.VIPs {
			st.VIPs = append(st.VIPs, v.Prefix.Addr())
		}
		if st.State == "MASTER" && in.UnicastSrc.IsValid() {
			st.Master = in.UnicastSrc
		}
		out = append(out, st)
	}
	return out
}

// Stop leaves cleanly and waits for the instances to finish.
func (g *vrrpGroup) Stop() {
	g.cancel()
	<-g.done
}
