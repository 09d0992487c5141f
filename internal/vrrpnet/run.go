package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/govs/govs/internal/vipfilter"
	"github.com/govs/govs/internal/vrrp"
)

// StateChange is reported for every state transition of an instance.
type StateChange struct {
	Instance string
	Old, New vrrp.State
	Reason   string
	Priority int
	Time     time.Time
}

// Options tunes Run. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// OnState, when set, is called (from Run's goroutine) on every transition.
	OnState func(StateChange)
	// Scripts are the vrrp_script definitions instances may track.
	Scripts []vrrp.TrackScript
	// Files are the track_file definitions instances may track.
	Files []vrrp.TrackFile
	// InterfacePoll is how often interface state is checked (default 200 ms).
	InterfacePoll time.Duration
	// LogInterval limits repeated receive-error logs per instance and reason (default 10 s).
	LogInterval time.Duration
	// Status, when set, is kept up to date with every instance's state.
	Status *Status
	// Siblings are this process's instances that other Runs drive: their
	// adverts are not foreign (not logged as dropped).
	Siblings []vrrp.InstanceConfig
	// VIPFilter drops traffic to the VIPs of NoAccept instances while they
	// are MASTER; nil opens the nftables one when an instance needs it.
	VIPFilter VIPFilter
	// Resume starts an instance whose VIPs are all still on its interface
	// with vrrp.Machine.Resume rather than Start: the caller knows the
	// previous process died as MASTER while its data plane went on
	// forwarding (it adopted a pinned one), so the VIP need not move.
	Resume bool
	// NotifyFIFO, when set, takes keepalived's notify FIFO line for every
	// instance and sync group transition (`INSTANCE "VI_1" MASTER 100`).
	NotifyFIFO func(line string)
	// StartupDelay holds the instances in INIT that long before they start
	// (vrrp_startup_delay): adverts are not sent or heard before.
	StartupDelay time.Duration
	// PreemptHold, when set, is asked before each received advert whether
	// an instance may preempt a lower-priority master now
	// (vrrp.Machine.SetPreemptHold): the director holds the connection
	// sync instance until the master's connections have arrived.
	PreemptHold func(instance string) bool
}

// VIPFilter drops packets addressed to VIPs (accept mode off).
type VIPFilter interface {
	Drop([]netip.Addr) error
	Accept([]netip.Addr) error
}

// allAddresses are an instance's advertised and excluded VIPs.
func allAddresses(c vrrp.InstanceConfig) []netip.Addr {
	var out []netip.Addr
	for _, v := range allVIPs(c) {
		out = append(out, v.Prefix.Addr())
	}
	return out
}

type instance struct {
	m    *vrrp.Machine
	cfg  vrrp.InstanceConfig
	conn *conn
	// lastLog rate-limits receive errors by reason.
	lastLog map[string]time.Time
	garp    announcer
}

type rxEvent struct {
	idx int
	pkt packet
}

// start takes an instance out of INIT, resuming MASTER when Options.Resume
// says so and its VIPs are still there.
func (r *runner) start(in *instance, now time.Time) []vrrp.Action {
	if !r.opts.Resume {
		return in.m.Start(now)
	}
	present, err := hasVIPs(in.cfg)
	if err != nil {
		r.log.Warn("cannot tell whether the VIPs are still there: starting as usual", "instance", in.cfg.Name, "err", err)
	}
	if !present {
		return in.m.Start(now)
	}
	r.log.Info("VIPs still present after a restart with the data plane forwarding: resuming MASTER unless another master is heard",
		"instance", in.cfg.Name, "window", in.m.ResumeWindow())
	return in.m.Resume(now)
}

// runner owns every machine; only its goroutine touches them.
type runner struct {
	opts     Options
	log      *slog.Logger
	insts    []*instance
	byName   map[string]*instance
	groups   map[string]*vrrp.Group
	groupCfg map[string]vrrp.SyncGroup
	// vrids lists the (interface, VRID) pairs this process serves, so an
	// advert for one of our other instances is not logged as foreign.
	vrids   map[string]bool
	scripts sync.WaitGroup
	ctx     context.Context
}

// Run starts every instance and drives it until ctx ends; then each instance
// shuts down as keepalived does on SIGTERM (a MASTER sends a priority 0
// advert and removes its addresses) and Run returns nil. Configuration and
// socket errors are returned before anything is started.
func Run(ctx context.Context, insts []vrrp.InstanceConfig, groups []vrrp.SyncGroup, opts Options) error {
	if opts.VIPFilter == nil && slices.ContainsFunc(insts, func(c vrrp.InstanceConfig) bool { return c.NoAccept }) {
		f, err := vipfilter.Open()
		if err != nil {
			return fmt.Errorf("no_accept: %w", err)
		}
		defer f.Close()
		opts.VIPFilter = f
	}
	r, err := newRunner(ctx, insts, groups, opts)
	if err != nil {
		return err
	}
	return r.loop(ctx)
}

func newRunner(ctx context.Context, cfgs []vrrp.InstanceConfig, groups []vrrp.SyncGroup, opts Options) (*runner, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.InterfacePoll <= 0 {
		opts.InterfacePoll = 200 * time.Millisecond
	}
	if opts.LogInterval <= 0 {
		opts.LogInterval = 10 * time.Second
	}
	r := &runner{opts: opts, log: opts.Logger, byName: map[string]*instance{}, groups: map[string]*vrrp.Group{},
		groupCfg: map[string]vrrp.SyncGroup{}, vrids: map[string]bool{}}
	inGroup := map[string]string{}
	for _, g := range groups {
		r.groupCfg[g.Name] = g
		for _, n := range g.Instances {
			inGroup[n] = g.Name
		}
	}
	var errs []error
	for _, c := range cfgs {
		if g, ok := inGroup[c.Name]; ok && c.SyncGroup == "" {
			c.SyncGroup = g
		}
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := r.byName[c.Name]; dup {
			errs = append(errs, fmt.Errorf("instance %s declared twice", c.Name))
			continue
		}
		in := &instance{cfg: c, lastLog: map[string]time.Time{}}
		r.byName[c.Name] = in
		r.insts = append(r.insts, in)
		r.vrids[vridKey(c.Interface, c.IPv6, c.VRID)] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configure VRRP: %w", err)
	}
	for _, c := range opts.Siblings {
		c = c.WithDefaults()
		r.vrids[vridKey(c.Interface, c.IPv6, c.VRID)] = true
	}
	for _, in := range r.insts {
		if err := r.open(ctx, in); err != nil {
			r.closeAll()
			return nil, err
		}
	}
	for name, g := range r.groupCfg {
		grp := &vrrp.Group{Name: name}
		for _, n := range g.Instances {
			in, ok := r.byName[n]
			if !ok {
				r.closeAll()
				return nil, fmt.Errorf("configure VRRP: sync group %s: unknown instance %s", name, n)
			}
			grp.Members = append(grp.Members, in.m)
		}
		r.groups[name] = grp
	}
	return r, nil
}

func vridKey(dev string, v6 bool, vrid uint8) string {
	return fmt.Sprintf("%s/%v/%d", dev, v6, vrid)
}

func (r *runner) open(ctx context.Context, in *instance) error {
	ifi, err := net.InterfaceByName(in.cfg.Interface)
	if err != nil {
		return fmt.Errorf("instance %s: find interface: %w", in.cfg.Name, err)
	}
	if in.cfg.PromoteSecondaries {
		if err := promoteSecondaries(in.cfg.Interface); err != nil {
			return fmt.Errorf("instance %s: promote_secondaries: %w", in.cfg.Name, err)
		}
	}
	src, err := primaryAddr(in.cfg, ifi)
	if err != nil {
		return fmt.Errorf("instance %s: %w", in.cfg.Name, err)
	}
	m, err := vrrp.NewMachine(in.cfg, src)
	if err != nil {
		return err
	}
	c, err := openConn(ctx, in.cfg, ifi, src)
	if err != nil {
		return fmt.Errorf("instance %s: %w", in.cfg.Name, err)
	}
	in.m, in.conn = m, c
	return nil
}

func (r *runner) closeAll() {
	for _, in := range r.insts {
		if in.conn != nil {
			in.conn.Close()
		}
	}
}

func (r *runner) loop(ctx context.Context) error {
	// Sub-goroutines get their own context so that shutdown (which needs
	// the sockets) happens before they are torn down.
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.ctx = subCtx
	var wg sync.WaitGroup
	defer func() {
		for _, in := range r.insts {
			in.garp.stop()
		}
		r.scripts.Wait() // notify_stop scripts finish before we go
		cancel()
		r.closeAll()
		wg.Wait()
	}()

	rx := make(chan rxEvent, 64)
	track := make(chan trackEvent, 16)
	for i, in := range r.insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				p, err := in.conn.read(buf)
				if err != nil {
					if subCtx.Err() == nil {
						r.log.Error("VRRP socket read failed", "instance", in.cfg.Name, "err", err)
					}
					return
				}
				if p.rx.Packet != nil {
					// The buffer is reused: keep only decoded values.
					p.rx.Packet.Addresses = append([]netip.Addr(nil), p.rx.Packet.Addresses...)
				}
				send(subCtx, rx, rxEvent{idx: i, pkt: p})
			}
		}()
	}
	ifaces := map[string]bool{}
	scripts := map[string]bool{}
	for _, in := range r.insts {
		ifaces[in.cfg.Interface] = true
		for _, t := range in.cfg.TrackInterfaces {
			ifaces[t.Name] = true
		}
		for _, t := range in.cfg.TrackScripts {
			scripts[t.Name] = true
		}
	}
	var names []string
	ifState := map[string]bool{}
	for n := range ifaces {
		names = append(names, n)
		ifState[n] = true // machines start assuming their interfaces are up
	}
	ifTick := time.NewTicker(r.opts.InterfacePoll)
	defer ifTick.Stop()
	for _, s := range r.opts.Scripts {
		if !scripts[s.Name] {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); watchScript(subCtx, s, r.log, track) }()
	}

	// Tracked files: watched before the first read, so that no change
	// falls between the two.
	files := make(chan fileEvent, 16)
	if used := r.trackedFiles(); len(used) > 0 {
		for _, f := range used {
			if err := initTrackFile(f); err != nil {
				r.log.Error("VRRP track_file", "err", err)
			}
		}
		fw, err := watchFiles(used)
		if err != nil {
			r.log.Error("VRRP track_file: changes will not be seen", "err", err)
		} else {
			wg.Add(1)
			go func() { defer wg.Done(); fw.run(subCtx, r.log, files) }()
		}
		now := time.Now()
		for _, f := range used {
			v := readTrackFile(f.Path)
			for _, in := range r.insts {
				in.m.SetTrackFile(now, f.Name, v) // no effect before Start
			}
		}
	}

	now := time.Now()
	for _, s := range r.opts.Scripts {
		if s.InitFail {
			for _, in := range r.insts {
				in.m.SetTrack(now, false, s.Name, false) // no effect before Start
			}
		}
	}
	if d := r.opts.StartupDelay; d > 0 {
		r.log.Info("VRRP instances start after vrrp_startup_delay", "delay", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil
		}
		now = time.Now()
	}
	for _, in := range r.insts {
		r.apply(in, now, r.start(in, now))
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if r.opts.Status != nil {
			r.opts.Status.update(r.insts)
		}
		var next time.Time
		for _, in := range r.insts {
			if d := in.m.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			now := time.Now()
			for _, in := range r.insts {
				r.apply(in, now, in.m.Shutdown(now))
			}
			if r.opts.Status != nil {
				r.opts.Status.update(r.insts)
			}
			return nil
		case ev := <-rx:
			r.receive(r.insts[ev.idx], ev.pkt)
		case ev := <-track:
			r.track(ev)
		case ev := <-files:
			now := time.Now()
			for _, in := range r.insts {
				r.apply(in, now, in.m.SetTrackFile(now, ev.name, ev.value))
			}
		case <-ifTick.C:
			for _, ev := range pollInterfaces(ifState, names) {
				r.log.Info("tracked interface changed", "interface", ev.name, "up", ev.up)
				r.track(ev)
			}
			r.trackSources()
		case <-timer.C:
			now := time.Now()
			for _, in := range r.insts {
				if d := in.m.Deadline(); !d.IsZero() && !now.Before(d) {
					r.apply(in, now, in.m.Tick(now))
				}
			}
		}
	}
}

// trackSources reports to each track_src_ip instance whether its source
// address is still on its interface.
func (r *runner) trackSources() {
	now := time.Now()
	for _, in := range r.insts {
		if in.cfg.TrackSrcIP {
			r.apply(in, now, in.m.SetSourcePresent(now, hasAddr(in.cfg.Interface, in.m.Primary())))
		}
	}
}

// hasAddr reports whether addr is on the interface (an interface that is
// gone has none).
func hasAddr(ifname string, addr netip.Addr) bool {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == addr {
			return true
		}
	}
	return false
}

// trackedFiles are the track_file definitions some instance tracks.
func (r *runner) trackedFiles() []vrrp.TrackFile {
	var out []vrrp.TrackFile
	for _, f := range r.opts.Files {
		if slices.ContainsFunc(r.insts, func(in *instance) bool {
			return slices.ContainsFunc(in.cfg.TrackFiles, func(t vrrp.Track) bool { return t.Name == f.Name })
		}) {
			out = append(out, f)
		}
	}
	return out
}

func (r *runner) track(ev trackEvent) {
	now := time.Now()
	for _, in := range r.insts {
		if ev.iface && ev.name == in.cfg.Interface && !in.cfg.DontTrackPrimary {
			r.apply(in, now, in.m.SetInterface(now, ev.up))
		}
		r.apply(in, now, in.m.SetTrack(now, ev.iface, ev.name, ev.up))
	}
}

func (r *runner) receive(in *instance, p packet) {
	now := time.Now()
	if p.err != nil {
		in.m.CountDecodeError(p.err)
		r.logDrop(in, now, "decode", fmt.Errorf("(%s) drop packet from %v: %w", in.cfg.Name, p.rx.Src, p.err))
		return
	}
	if r.opts.PreemptHold != nil {
		in.m.SetPreemptHold(r.opts.PreemptHold(in.cfg.Name))
	}
	acts, err := in.m.Receive(now, p.rx)
	if err != nil {
		if errors.Is(err, vrrp.ErrOtherVRID) && r.vrids[vridKey(in.cfg.Interface, in.cfg.IPv6, p.rx.Packet.VRID)] {
			return // one of our other instances handles it
		}
		if errors.Is(err, vrrp.ErrNotRunning) {
			return
		}
		r.logDrop(in, now, rootReason(err), err)
		return
	}
	r.apply(in, now, acts)
}

func rootReason(err error) string {
	for _, e := range []error{vrrp.ErrOtherVRID, vrrp.ErrTTL, vrrp.ErrWrongVersion, vrrp.ErrAuthType, vrrp.ErrAuthPass,
		vrrp.ErrInterval, vrrp.ErrUnicast, vrrp.ErrUnknownPeer, vrrp.ErrOwnAdvert} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

// logDrop logs a dropped advert at most once per LogInterval and reason, as
// keepalived rate-limits these messages.
func (r *runner) logDrop(in *instance, now time.Time, reason string, err error) {
	if last, ok := in.lastLog[reason]; ok && now.Sub(last) < r.opts.LogInterval {
		return
	}
	in.lastLog[reason] = now
	r.log.Warn("VRRP advert dropped", "instance", in.cfg.Name, "reason", reason, "err", err)
}

// apply carries out a machine's actions and lets its sync group follow.
func (r *runner) apply(in *instance, now time.Time, acts []vrrp.Action) {
	r.applyActs(in, now, acts, true)
}

// applyActs carries out actions; follow is false for actions a sync group
// forced on a member, so that a forced change does not propagate again.
func (r *runner) applyActs(in *instance, now time.Time, acts []vrrp.Action, follow bool) {
	for _, a := range acts {
		switch a := a.(type) {
		case vrrp.SendAdvert:
			if err := in.conn.send(a.Priority); err != nil {
				r.log.Warn("VRRP advert not sent", "instance", in.cfg.Name, "err", err)
			}
		case vrrp.AddVIPs:
			if in.cfg.NoAccept {
				// Before the addresses exist, so nothing reaches them.
				if err := r.opts.VIPFilter.Drop(allAddresses(in.cfg)); err != nil {
					r.log.Error("VRRP no_accept", "instance", in.cfg.Name, "err", err)
				}
			}
			if err := addVIPs(in.cfg); err != nil {
				r.log.Error("VRRP add virtual addresses", "instance", in.cfg.Name, "err", err)
			}
			if err := addRoutes(in.cfg); err != nil {
				r.log.Error("VRRP add virtual routes", "instance", in.cfg.Name, "err", err)
			}
			if err := addRules(in.cfg); err != nil {
				r.log.Error("VRRP add virtual rules", "instance", in.cfg.Name, "err", err)
			}
		case vrrp.RemoveVIPs:
			in.garp.stop()
			if err := removeRules(in.cfg); err != nil {
				r.log.Error("VRRP remove virtual rules", "instance", in.cfg.Name, "err", err)
			}
			if err := removeRoutes(in.cfg); err != nil {
				r.log.Error("VRRP remove virtual routes", "instance", in.cfg.Name, "err", err)
			}
			if err := removeVIPs(in.cfg); err != nil {
				r.log.Error("VRRP remove virtual addresses", "instance", in.cfg.Name, "err", err)
			}
			if in.cfg.NoAccept {
				if err := r.opts.VIPFilter.Accept(allAddresses(in.cfg)); err != nil {
					r.log.Error("VRRP no_accept", "instance", in.cfg.Name, "err", err)
				}
			}
		case vrrp.SendGARP:
			in.garp.start(r.ctx, in.cfg, a.Repeat, r.log)
		case vrrp.Log:
			r.log.Info(a.Msg, "instance", in.cfg.Name)
		case vrrp.PriorityChanged:
			if in.cfg.NotifyPriorityChanges && r.opts.NotifyFIFO != nil {
				r.opts.NotifyFIFO(`INSTANCE "` + in.cfg.Name + `" ` + a.State.String() + "_PRIORITY " + strconv.Itoa(a.Priority))
			}
		case vrrp.HeardLowerPriority:
			if c := in.cfg.Notify.MasterRxLowerPri; c != "" {
				r.runNotify(in.cfg.Name, notifyCommand{c, in.cfg.Notify.RunAs["master_rx_lower_pri"]})
			}
		case vrrp.Transition:
			r.transition(in, now, a, follow)
		}
	}
}

func (r *runner) transition(in *instance, now time.Time, t vrrp.Transition, follow bool) {
	r.log.Info(fmt.Sprintf("(%s) Entering %v STATE", in.cfg.Name, t.To), "instance", in.cfg.Name, "from", t.From.String(),
		"to", t.To.String(), "reason", t.Reason, "priority", t.Priority)
	r.notify(in.cfg.Notify, "INSTANCE", in.cfg.Name, t.To, t.Priority)
	if r.opts.Status != nil {
		r.opts.Status.update(r.insts) // before OnState, so a callback sees the new state
	}
	if r.opts.OnState != nil {
		r.opts.OnState(StateChange{Instance: in.cfg.Name, Old: t.From, New: t.To, Reason: t.Reason, Priority: t.Priority, Time: now})
	}
	g, ok := r.groups[in.cfg.SyncGroup]
	if !ok || !follow {
		return
	}
	before := r.groupState(g)
	for _, mem := range g.Follow(now, in.m, t) {
		r.applyActs(r.byName[mem.Machine.Config().Name], now, mem.Actions, false)
	}
	if after := r.groupState(g); after != before && after != vrrp.StateInit {
		r.notify(r.groupCfg[g.Name].Notify, "GROUP", g.Name, after, 0)
	}
}

// groupState is the common state of a sync group's members, or INIT when they differ.
func (r *runner) groupState(g *vrrp.Group) vrrp.State {
	s := g.Members[0].State()
	for _, m := range g.Members[1:] {
		if m.State() != s {
			return vrrp.StateInit
		}
	}
	return s
}

func (r *runner) notify(n vrrp.Notify, kind, name string, to vrrp.State, prio int) {
	if r.opts.NotifyFIFO != nil {
		r.opts.NotifyFIFO(kind + ` "` + name + `" ` + to.String() + " " + strconv.Itoa(prio))
	}
	for _, c := range notifyCommands(n, kind, name, to, prio) {
		r.runNotify(name, c)
	}
}

// runNotify runs a notify script beside the event loop.
func (r *runner) runNotify(name string, c notifyCommand) {
	r.scripts.Add(1)
	go func() {
		defer r.scripts.Done()
		if err := RunScript(r.ctx, c.cmd, c.as, 30*time.Second); err != nil {
			r.log.Warn("VRRP notify script failed", "instance", name, "err", err)
		}
	}()
}

// promoteSecondaries turns the interface's promote_secondaries on (for the
// network namespace of the calling thread), as keepalived does for
// promote_secondaries: a primary address that goes takes its subnet's
// secondary addresses with it otherwise.
func promoteSecondaries(ifname string) error {
	return os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", ifname, "promote_secondaries"), []byte("1\n"), 0o644)
}
