package state

import (
	"fmt"
	"time"
)

// Origin says where a real server of an updated configuration comes from.
type Origin struct {
	// Old is the real server's index in the running configuration, or -1
	// for a real server the update adds.
	Old int
	// KeepCheckers carries the checkers' state over (up/down, retry
	// count, dynamic weight); the caller sets it only when the checkers are
	// the same, in the same order. Without it the real server starts afresh,
	// as at Start (alpha honoured).
	KeepCheckers bool
}

// poolEntry is how a real server appears in the pool, sorry server aside.
type poolEntry struct {
	in     bool
	weight int
}

func (rs *realServer) entry() poolEntry {
	switch {
	case rs.alive:
		return poolEntry{true, rs.weight}
	case rs.cfg.Inhibit:
		return poolEntry{true, 0}
	}
	return poolEntry{}
}

// Update replaces the configuration of a started virtual server. origins has
// one entry per real server of cfg. Real servers that keep their checkers
// keep their state and produce an event only when their pool entry changes
// (a new weight, inhibit_on_failure switched); the others start afresh and
// report their initial state. Real servers missing from origins leave the
// pool; like keepalived, notify_down runs for those that were alive. Quorum
// is evaluated again and reported only if its verdict changed.
//
// It returns the events and the first probe of every fresh checker; probes
// of kept checkers stay as scheduled. On error nothing changes.
func (vs *VirtualServer) Update(now time.Time, cfg VirtualServerConfig, origins []Origin, rnd func() float64) ([]Event, []Probe, error) {
	if cfg.Quorum == 0 {
		cfg.Quorum = 1
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if cfg.Name != vs.cfg.Name {
		return nil, nil, fmt.Errorf("update virtual server %s: name changed to %s", vs.cfg.Name, cfg.Name)
	}
	if len(origins) != len(cfg.RealServers) {
		return nil, nil, fmt.Errorf("update virtual server %s: %d origins for %d real servers", cfg.Name, len(origins), len(cfg.RealServers))
	}
	used := make([]bool, len(vs.rs))
	for i, o := range origins {
		if o.Old < 0 {
			continue
		}
		if o.Old >= len(vs.rs) || used[o.Old] {
			return nil, nil, fmt.Errorf("update virtual server %s: real server %s: bad or repeated origin %d", cfg.Name, cfg.RealServers[i].Name, o.Old)
		}
		used[o.Old] = true
		if o.KeepCheckers && len(vs.rs[o.Old].checkers) != len(cfg.RealServers[i].Checkers) {
			return nil, nil, fmt.Errorf("update virtual server %s: real server %s: cannot keep %d checkers for %d",
				cfg.Name, cfg.RealServers[i].Name, len(vs.rs[o.Old].checkers), len(cfg.RealServers[i].Checkers))
		}
	}

	// Validated: from here on nothing fails.
	oldDests := vs.Dests()
	var events []Event
	for i, rs := range vs.rs {
		if used[i] {
			continue
		}
		vs.log.Info("removing real server, no longer configured", "rs", rs.cfg.Name, "alive", rs.alive)
		if rs.entry().in {
			events = append(events, Event{Kind: RealServerDown, RealServer: i, RealServerName: rs.cfg.Name,
				Reason: "removed from the configuration", Notify: rs.alive, Removed: true})
		}
	}
	next := make([]*realServer, len(cfg.RealServers))
	var probes []Probe
	for i, rc := range cfg.RealServers {
		o := origins[i]
		if o.Old >= 0 && o.KeepCheckers {
			rs := vs.rs[o.Old]
			before := rs.entry()
			rs.cfg = rc
			// The checkers' own configuration is unchanged, but take the
			// new names (they may only differ cosmetically).
			for j, c := range rs.checkers {
				c.cfg = rc.Checkers[j]
			}
			rs.weight = rs.effectiveWeight()
			after := rs.entry()
			next[i] = rs
			if after == before {
				continue
			}
			kind := WeightChanged
			reason := fmt.Sprintf("configured weight %d", rc.Weight)
			if !rs.alive {
				kind = RealServerDown
				reason = "inhibit_on_failure changed"
			} else if before.in != after.in {
				kind = RealServerUp
				reason = "back in the pool"
			}
			vs.log.Info("real server changed by reload", "rs", rc.Name, "weight", after.weight, "in_pool", after.in)
			events = append(events, Event{Kind: kind, RealServer: i, RealServerName: rc.Name, Weight: rs.weight, Reason: reason})
			continue
		}
		rs := newRealServer(rc)
		rs.alive = rs.failed() == 0
		rs.weight = rs.effectiveWeight()
		next[i] = rs
		for j, c := range rs.checkers {
			probes = append(probes, Probe{RealServer: i, Checker: j, At: c.First(now, rnd())})
		}
		reason := "added by reload"
		var before poolEntry
		if o.Old >= 0 {
			reason = "checkers changed, restarted"
			before = vs.rs[o.Old].entry()
		}
		if o.Old >= 0 && before == rs.entry() {
			continue
		}
		kind := RealServerUp
		if !rs.alive {
			kind = RealServerDown
		}
		vs.log.Info("real server (re)started by reload", "rs", rc.Name, "alive", rs.alive, "reason", reason)
		events = append(events, Event{Kind: kind, RealServer: i, RealServerName: rc.Name, Weight: rs.weight, Reason: reason})
	}

	vs.cfg, vs.rs = cfg, next
	// The sorry server follows its configuration: gone with it, and in
	// when it is added to a virtual server that has no quorum.
	switch {
	case cfg.Sorry == nil:
		vs.sorryOn = false
	case !vs.quorumUp:
		vs.sorryOn = true
	}
	events = append(events, vs.updateQuorum()...)
	for i := range events {
		events[i].Reload = true
	}
	if len(events) == 0 && !sameDests(oldDests, vs.Dests()) {
		// Only the sorry server's configuration moved the pool.
		events = append(events, Event{Kind: WeightChanged, RealServer: -1, Weight: vs.liveWeight(),
			Reason: "sorry server changed", Reload: true})
	}
	return vs.finish(events), probes, nil
}

// Remove reports a virtual server taken out of the configuration: like
// keepalived, notify_down runs for its alive real servers and quorum_down if
// it had quorum. The last event has empty Dests.
func (vs *VirtualServer) Remove() []Event {
	var events []Event
	for i, rs := range vs.rs {
		if !rs.entry().in {
			continue
		}
		events = append(events, Event{Kind: RealServerDown, RealServer: i, RealServerName: rs.cfg.Name,
			Weight: rs.weight, Reason: "virtual server removed from the configuration", Notify: rs.alive})
		rs.alive = false
	}
	events = append(events, Event{Kind: QuorumDown, RealServer: -1, Reason: "virtual server removed from the configuration",
		Notify: vs.quorumUp})
	vs.quorumUp, vs.sorryOn = false, false
	for i := range events {
		events[i].VirtualServer = vs.cfg.Name
		events[i].Reload = true
		events[i].Removed = true
	}
	return events
}

func sameDests(a, b []Dest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
