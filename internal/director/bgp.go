package director

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"time"

	"github.com/govs/govs/internal/announce"
	"github.com/govs/govs/internal/bgp"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/status"
)

// BGPSpeaker announces VIPs (*bgp.Speaker; a fake in tests).
type BGPSpeaker interface {
	Config() desired.BGP
	Announce(vips []netip.Addr) error
	Announced() []netip.Prefix
	Peers(ctx context.Context) ([]bgp.Peer, error)
	Stop()
}

// BGPFactory starts a speaker.
// restarting says govs restarted over a pinned data plane (bgp.Start).
type BGPFactory func(ctx context.Context, cfg desired.BGP, restarting bool, log *slog.Logger) (BGPSpeaker, error)

func defaultBGP(ctx context.Context, cfg desired.BGP, restarting bool, log *slog.Logger) (BGPSpeaker, error) {
	return bgp.Start(ctx, cfg, restarting, log)
}

// sessionConfig is what a running speaker cannot change without a
// restart: everything but the VIPs, which Announce changes.
func sessionConfig(b desired.BGP) desired.BGP {
	b.VIPs, b.Damping, b.SyncWait = nil, announce.Policy{}, 0
	return b
}

// applyBGPLocked runs the plan's speaker: started, restarted when its
// sessions' configuration changed (a VIP list change is only an
// announcement change), stopped when the plan has none.
func (d *Director) applyBGPLocked(ctx context.Context, plan *desired.Plan) error {
	if d.speaker != nil && (plan.BGP == nil || !reflect.DeepEqual(sessionConfig(d.speaker.Config()), sessionConfig(*plan.BGP))) {
		d.speaker.Stop()
		d.speaker = nil
		d.log.Info("BGP speaker stopped")
	}
	// New checkers have no results yet.
	d.bgpSettled.Store(false)
	if plan.BGP == nil || d.speaker != nil {
		d.announceLocked()
		return nil
	}
	if plan.BGP.GracefulRestart > 0 && d.dp != nil && d.opts.PinDir == "" {
		// Graceful restart tells the routers the forwarding state survives
		// a restart; only a pinned data plane does.
		return fmt.Errorf("BGP: graceful_restart needs govs run --pin-dir: without a pinned data plane nothing forwards while govs restarts")
	}
	sp, err := d.opts.BGP(ctx, *plan.BGP, d.bgpAdopted, d.log)
	if err != nil {
		return fmt.Errorf("BGP: %w", err)
	}
	d.speaker = sp
	d.log.Info("BGP speaker started", "as", plan.BGP.LocalAS, "router_id", plan.BGP.RouterID, "neighbors", len(plan.BGP.Neighbors))
	d.announceLocked()
	return nil
}

// announceLocked announces the VIPs that are ready and withdraws the
// others, through the damping of internal/announce. A VIP is ready when
// the data plane is attached and its interfaces are up, connection sync
// (govs_bgp's connection_sync) has the peers' tables, every checker of
// the virtual server has a result, it has a real server the data plane can
// send to (weight above 0, MAC resolved), its quorum holds and this
// director is not drained.
func (d *Director) announceLocked() {
	if d.speaker == nil || d.plan == nil || d.plan.BGP == nil {
		d.bgpSettled.Store(true) // nothing to announce: no pokes
		return
	}
	now := d.opts.Clock.Now()
	reasons, settled, wake := d.readinessLocked(now)
	d.bgpSettled.Store(settled)
	if settled {
		d.bgpAdopted = false
	}
	if d.announcer == nil {
		d.announcer = announce.New(d.plan.BGP.Damping)
	}
	dec := d.announcer.Step(now, reasons)
	was := map[netip.Addr]bool{}
	for _, v := range d.bgpVIPs {
		was[v.Addr] = v.Announced
	}
	for _, v := range dec.VIPs {
		switch {
		case v.Announced && !was[v.Addr]:
			d.bgpAnnouncements++
		case !v.Announced && was[v.Addr]:
			d.bgpWithdrawals++
		}
	}
	d.bgpVIPs = dec.VIPs
	if !dec.Wake.IsZero() && (wake.IsZero() || dec.Wake.Before(wake)) {
		wake = dec.Wake
	}
	d.wakeBGPLocked(now, wake)
	for _, v := range dec.VIPs {
		if v.Reason != announce.Ready && d.bgpReasons[v.Addr] != v.Reason {
			d.log.Info("BGP: VIP not ready", "vip", v.Addr, "reason", v.Reason.String(), "announced", v.Announced)
		}
	}
	d.bgpReasons = map[netip.Addr]announce.Reason{}
	for _, v := range dec.VIPs {
		d.bgpReasons[v.Addr] = v.Reason
	}
	if err := d.speaker.Announce(dec.Announce); err != nil {
		d.log.Error("BGP announcements", "err", err)
	}
}

// syncPoll is how often a director waiting for its peers' tables looks
// whether they arrived.
const syncPoll = 200 * time.Millisecond

// readinessLocked is every VIP's readiness (announce.Reason), whether
// every checker has a result, and when sync's wait ends (zero: not
// waiting).
func (d *Director) readinessLocked(now time.Time) (map[netip.Addr]announce.Reason, bool, time.Time) {
	var (
		self     = announce.Ready
		syncWait time.Time
	)
	switch {
	case d.dp == nil || d.lastApply != nil:
		self = announce.NoDataPlane
	case !d.linksUpLocked():
		self = announce.InterfaceDown
	}
	if g := d.syncGate.Load(); self == announce.Ready && g != nil && g.instance == "" && !g.released.Load() {
		switch until := g.since.Add(d.plan.BGP.SyncWait); {
		case g.sync.Complete():
			g.released.Store(true)
			d.log.Info("connection sync complete: BGP may announce", "after", now.Sub(g.since).Round(time.Millisecond))
		case !now.Before(until):
			g.released.Store(true)
			d.log.Warn("connection sync not complete after the wait: BGP may announce", "wait", d.plan.BGP.SyncWait)
		default:
			// Nothing says when the dump is complete: look again soon.
			self, syncWait = announce.SyncPending, now.Add(syncPoll)
			if until.Before(syncWait) {
				syncWait = until
			}
		}
	}
	// checked: every checker has a result (a director that just started
	// does not draw traffic on its servers' configured state alone).
	checked := map[string]bool{}
	quorum := map[string]bool{}
	settled := true
	if d.checks != nil {
		for _, vs := range d.checks.Status() {
			ok := true
			for _, rs := range vs.RealServers {
				for _, c := range rs.Checkers {
					ok = ok && c.Stats.Checked
				}
			}
			settled = settled && ok
			checked[vs.Name], quorum[vs.Name] = ok, vs.QuorumUp
		}
	}
	usable := map[dpstate.ServiceKey]bool{}
	for _, s := range d.applied.Services {
		for _, r := range s.Reals {
			if r.Weight > 0 && len(r.MAC) > 0 {
				usable[s.Key()] = true
			}
		}
	}
	out := map[netip.Addr]announce.Reason{}
	for _, v := range d.plan.BGP.VIPs {
		// The VIP takes the best reason of its services (one ready
		// service is enough), each service its first failing test.
		best := announce.Reason(255)
		for _, s := range d.plan.Services {
			if s.Key.Addr != v || s.Key.Fwmark != 0 {
				continue
			}
			r := self
			switch {
			case r != announce.Ready:
			case !checked[s.Pool] && !d.bgpAdopted:
				// (After a restart over a pinned data plane the previous
				// govs's checks still stand: the routers kept the routes.)
				r = announce.ChecksPending
			case !usable[s.Key]:
				r = announce.NoUsableReal
			case !quorum[s.Pool]:
				r = announce.QuorumLost
			case d.drained:
				r = announce.Drained
			}
			best = min(best, r)
		}
		if best == 255 {
			best = announce.NoUsableReal
		}
		out[v] = best
	}
	return out, settled, syncWait
}

// linksUpLocked reports whether every interface the data plane forwards
// on is up.
func (d *Director) linksUpLocked() bool {
	for _, name := range d.plan.Interfaces {
		up, err := d.opts.Links.Up(name)
		if err != nil || !up {
			return false
		}
	}
	return true
}

// wakeBGPLocked makes sure the announcements are evaluated again at wake
// (a hold-down ends, sync's wait runs out) although nothing else happens.
func (d *Director) wakeBGPLocked(now, wake time.Time) {
	if wake.IsZero() || (!d.bgpWakeAt.IsZero() && !wake.Before(d.bgpWakeAt) && d.bgpWakeAt.After(now)) {
		return
	}
	d.bgpWakeAt = wake
	after := d.opts.Clock.After(wake.Sub(now))
	ctx := d.ctx
	go func() {
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
		d.pokeBGP()
	}()
}

// pokeBGP asks applyBGPPokes to evaluate the announcements again.
func (d *Director) pokeBGP() {
	select {
	case d.bgpPoke <- struct{}{}:
	default:
	}
}

// stopBGPLocked withdraws every announcement and closes the sessions, but
// for a planned restart (--keep-dataplane with graceful_restart): then the
// sessions close with the process, without a NOTIFICATION, so the routers
// keep the routes for the restart time while the pinned data plane goes on
// forwarding, and the next govs takes them over.
func (d *Director) stopBGPLocked() {
	if d.speaker != nil && d.opts.KeepDataplane && d.opts.PinDir != "" && d.speaker.Config().GracefulRestart > 0 {
		d.log.Info("BGP sessions left to close with the process: the routers keep the routes for graceful_restart",
			"restart_time", d.speaker.Config().GracefulRestart)
		d.speaker = nil
		return
	}
	if d.speaker != nil {
		d.speaker.Stop()
		d.speaker = nil
	}
}

// bgpStatusLocked is the speaker's part of the status snapshot.
func (d *Director) bgpStatusLocked() *status.BGP {
	if d.speaker == nil {
		return nil
	}
	cfg := d.speaker.Config()
	out := &status.BGP{LocalAS: cfg.LocalAS, RouterID: cfg.RouterID, Announced: d.speaker.Announced(),
		Announcements: d.bgpAnnouncements, Withdrawals: d.bgpWithdrawals}
	for _, v := range d.bgpVIPs {
		sv := status.BGPVIP{VIP: v.Addr, Announced: v.Announced, Reason: v.Reason.String(), Flaps: v.Flaps}
		if !v.HeldUntil.IsZero() {
			h := v.HeldUntil
			sv.HeldUntil = &h
		}
		out.VIPs = append(out.VIPs, sv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	peers, err := d.speaker.Peers(ctx)
	if err != nil {
		d.log.Warn("BGP peers", "err", err)
	}
	for _, p := range peers {
		out.Peers = append(out.Peers, status.BGPPeer{Addr: p.Addr, RemoteAS: p.RemoteAS, State: p.State, Established: p.Established})
	}
	return out
}

// SetBGPDrain withdraws every BGP announcement (drain) or lets the ready
// VIPs be announced again. The data plane keeps forwarding what still
// reaches this director, so established flows finish while the routers
// move new ones to the other directors; a reload keeps the drain. With
// stopAfter above 0 the director stops once that drain period has passed
// (as on SIGTERM), unless undrained or drained again meanwhile.
func (d *Director) SetBGPDrain(drain bool, stopAfter time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.plan == nil || d.plan.BGP == nil {
		return fmt.Errorf("no govs_bgp block in the running configuration")
	}
	if d.drained != drain {
		d.log.Info("BGP drain", "drained", drain)
	}
	d.drained = drain
	d.drainGen++
	d.announceLocked()
	if drain && stopAfter > 0 {
		var done <-chan struct{} // before Run: none
		if d.ctx != nil {
			done = d.ctx.Done()
		}
		gen, fire := d.drainGen, d.opts.Clock.After(stopAfter)
		d.log.Info("BGP drain: stopping after the drain period", "period", stopAfter)
		go func() {
			select {
			case <-fire:
			case <-done:
				return
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.drainGen == gen && d.drained {
				select {
				case d.stopRequest <- struct{}{}:
				default:
				}
			}
		}()
	}
	return nil
}

// onCheckResult wraps the checkers' OnResult: until every checker has a
// result, each result asks for the announcements again.
func (d *Director) onCheckResult(next func(vs, rs, chk int, res state.Result)) func(vs, rs, chk int, res state.Result) {
	return func(vs, rs, chk int, res state.Result) {
		if next != nil {
			next(vs, rs, chk, res)
		}
		if !d.bgpSettled.Load() {
			d.pokeBGP()
		}
	}
}

// applyBGPPokes re-evaluates the announcements when poked, until ctx ends.
func (d *Director) applyBGPPokes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.bgpPoke:
		}
		d.mu.Lock()
		d.announceLocked()
		d.mu.Unlock()
	}
}
