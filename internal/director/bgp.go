package director

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"time"

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
type BGPFactory func(ctx context.Context, cfg desired.BGP, log *slog.Logger) (BGPSpeaker, error)

func defaultBGP(ctx context.Context, cfg desired.BGP, log *slog.Logger) (BGPSpeaker, error) {
	return bgp.Start(ctx, cfg, log)
}

// sessionConfig is what a running speaker cannot change without a
// restart: everything but the VIPs, which Announce changes.
func sessionConfig(b desired.BGP) desired.BGP {
	b.VIPs = nil
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
	sp, err := d.opts.BGP(ctx, *plan.BGP, d.log)
	if err != nil {
		return fmt.Errorf("BGP: %w", err)
	}
	d.speaker = sp
	d.log.Info("BGP speaker started", "as", plan.BGP.LocalAS, "router_id", plan.BGP.RouterID, "neighbors", len(plan.BGP.Neighbors))
	d.announceLocked()
	return nil
}

// announceLocked announces the VIPs that are ready and withdraws the
// others. A VIP is ready when the data plane holds one of its services
// with a real server it can send to (weight above 0, its MAC resolved),
// every checker of that virtual server has a result, and its quorum holds.
func (d *Director) announceLocked() {
	if d.speaker == nil || d.plan == nil || d.plan.BGP == nil {
		d.bgpSettled.Store(true) // nothing to announce: no pokes
		return
	}
	// ready: quorum holds and every checker has a result (a director
	// that just started does not draw traffic on its servers' configured
	// state alone).
	quorum := map[string]bool{}
	settled := true
	if d.checks != nil {
		for _, vs := range d.checks.Status() {
			checked := true
			for _, rs := range vs.RealServers {
				for _, c := range rs.Checkers {
					checked = checked && c.Stats.Checked
				}
			}
			settled = settled && checked
			quorum[vs.Name] = vs.QuorumUp && checked
		}
	}
	d.bgpSettled.Store(settled)
	usable := map[dpstate.ServiceKey]bool{}
	for _, s := range d.applied.Services {
		for _, r := range s.Reals {
			if r.Weight > 0 && len(r.MAC) > 0 {
				usable[s.Key()] = true
			}
		}
	}
	var ready []netip.Addr
	for _, v := range d.plan.BGP.VIPs {
		for _, s := range d.plan.Services {
			if s.Key.Addr == v && s.Key.Fwmark == 0 && usable[s.Key] && quorum[s.Pool] && !d.drained {
				ready = append(ready, v)
				break
			}
		}
	}
	if err := d.speaker.Announce(ready); err != nil {
		d.log.Error("BGP announcements", "err", err)
	}
}

// stopBGPLocked withdraws every announcement and closes the sessions.
func (d *Director) stopBGPLocked() {
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
	out := &status.BGP{LocalAS: cfg.LocalAS, RouterID: cfg.RouterID, Announced: d.speaker.Announced()}
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
// move new ones to the other directors; a reload keeps the drain.
func (d *Director) SetBGPDrain(drain bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.plan == nil || d.plan.BGP == nil {
		return fmt.Errorf("no govs_bgp block in the running configuration")
	}
	if d.drained != drain {
		d.log.Info("BGP drain", "drained", drain)
	}
	d.drained = drain
	d.announceLocked()
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
			select {
			case d.bgpPoke <- struct{}{}:
			default:
			}
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
