package check

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// vsPlan is one virtual server of an update, validated and ready to apply.
type vsPlan struct {
	// fresh is the virtual server built from scratch, with its jobs: what
	// NewRunner runs, and what an update uses for new virtual servers and
	// for real servers whose checkers changed.
	fresh *vsEntry
	// old is the running virtual server of the same name (nil if new), and
	// origins map fresh's real servers onto old's.
	old     *vsEntry
	origins []state.Origin
}

// update is an Update handed to the Runner's goroutine.
type update struct {
	plan []vsPlan
	done chan struct{}
}

// errStopped is returned by Update once the Runner has stopped.
var errStopped = errors.New("update health checks: runner stopped")

// Update applies a new set of virtual servers as a change to the running
// ones, matched by Name, their real servers by Addr:
//
//   - a real server whose checkers are unchanged (same Specs after defaults,
//     same order) keeps its state: up or down, retry count, next probe time.
//     Its weight, inhibit_on_failure and notify scripts take effect at once;
//     an event comes only if its pool entry changes.
//   - a real server whose checkers changed, and a new one, start afresh as
//     at Start (alpha honoured).
//   - a real server no longer configured leaves the pool; like keepalived,
//     notify_down runs if it was alive.
//   - quorum, hysteresis, sorry server, omega and quorum scripts take effect;
//     quorum is evaluated again and reported only if its verdict changed.
//   - a new virtual server starts as at Start; a removed one reports its
//     alive real servers down (notify_down), quorum_down if it had quorum,
//     and a last event with Removed set and empty Dests.
//
// Results of probes in flight for removed or changed checkers are dropped.
// Update validates everything first: on error nothing changes. It works
// before Start (the new set simply replaces the old) and while running; after
// Stop it fails. It must not be called from OnEvent.
func (r *Runner) Update(vss []VirtualServer) error {
	r.updateMu.Lock()
	defer r.updateMu.Unlock()
	r.mu.Lock()
	plan, err := r.plan(vss)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if r.done == nil {
		r.mu.Lock()
		r.vss = r.vss[:0]
		for _, p := range plan {
			r.vss = append(r.vss, p.fresh)
		}
		r.mu.Unlock()
		return nil
	}
	u := &update{plan: plan, done: make(chan struct{})}
	select {
	case r.updates <- u:
	case <-r.done:
		return errStopped
	}
	<-u.done
	return nil
}

// plan validates vss, builds their probers and matches them with the
// running virtual servers (callers hold r.mu, or own r).
func (r *Runner) plan(vss []VirtualServer) ([]vsPlan, error) {
	byName := make(map[string]*vsEntry, len(r.vss))
	for _, v := range r.vss {
		byName[v.cfg.Name] = v
	}
	seen := make(map[string]bool, len(vss))
	out := make([]vsPlan, 0, len(vss))
	for _, v := range vss {
		if seen[v.Name] {
			return nil, fmt.Errorf("virtual server %s: configured twice", v.Name)
		}
		seen[v.Name] = true
		fresh, err := r.build(v)
		if err != nil {
			return nil, err
		}
		p := vsPlan{fresh: fresh, old: byName[v.Name]}
		if p.old != nil {
			p.origins = matchRealServers(p.old, fresh)
		}
		out = append(out, p)
	}
	return out, nil
}

// build validates one virtual server and makes its state and jobs.
func (r *Runner) build(v VirtualServer) (*vsEntry, error) {
	e := &vsEntry{cfg: v}
	sc := state.VirtualServerConfig{Name: v.Name, Quorum: v.Quorum, Hysteresis: v.Hysteresis, Omega: v.Omega}
	if v.Sorry != nil {
		sc.Sorry = &state.SorryServerConfig{Name: v.Sorry.Addr.String(), Weight: v.Sorry.Weight, Inhibit: v.Sorry.Inhibit}
	}
	for ri, rs := range v.RealServers {
		rc := state.RealServerConfig{Name: rs.Addr.String(), Weight: rs.Weight, Inhibit: rs.Inhibit}
		var specs []resolved
		var jobs []*job
		for ci, spec := range rs.Checkers {
			res, err := resolve(spec, rs.Addr, v.DelayLoop)
			if err != nil {
				return nil, fmt.Errorf("virtual server %s real server %s checker %d: %w", v.Name, rs.Addr, ci+1, err)
			}
			p, err := r.mk(res)
			if err != nil {
				return nil, fmt.Errorf("virtual server %s real server %s checker %d: %w", v.Name, rs.Addr, ci+1, err)
			}
			rc.Checkers = append(rc.Checkers, res.checkerConfig())
			specs = append(specs, res)
			jobs = append(jobs, &job{rs: ri, chk: ci, prober: p, timeout: res.timeout(), every: res.DelayLoop, index: -1})
		}
		sc.RealServers = append(sc.RealServers, rc)
		e.specs = append(e.specs, specs)
		e.jobs = append(e.jobs, jobs)
	}
	st, err := state.NewVirtualServer(sc, r.opt.Log.With("component", "check"))
	if err != nil {
		return nil, err
	}
	e.state = st
	return e, nil
}

// matchRealServers maps the real servers of fresh onto those of old by
// address (a repeated address matches its occurrences in order); a real
// server keeps its checkers when their resolved Specs are the same, in the
// same order.
func matchRealServers(old, fresh *vsEntry) []state.Origin {
	idx := make(map[netip.AddrPort][]int, len(old.cfg.RealServers))
	for i, rs := range old.cfg.RealServers {
		idx[rs.Addr] = append(idx[rs.Addr], i)
	}
	origins := make([]state.Origin, len(fresh.cfg.RealServers))
	for i, rs := range fresh.cfg.RealServers {
		olds := idx[rs.Addr]
		if len(olds) == 0 {
			origins[i] = state.Origin{Old: -1}
			continue
		}
		o := olds[0]
		idx[rs.Addr] = olds[1:]
		origins[i] = state.Origin{Old: o, KeepCheckers: reflect.DeepEqual(old.specs[o], fresh.specs[i])}
	}
	return origins
}

// startLocked starts virtual server v, now number vi: initial state and
// first probes.
func (r *Runner) startLocked(now time.Time, vi int, v *vsEntry) []state.Event {
	events, probes := v.state.Start(now, r.opt.Rand)
	for _, p := range probes {
		j := v.jobs[p.RealServer][p.Checker]
		j.vs, j.at = vi, p.At
		heap.Push(&r.sched, j)
	}
	return events
}

// retireLocked takes jobs out of the schedule; a probe in flight for one of
// them is dropped when it completes.
func (r *Runner) retireLocked(jobs [][]*job) {
	for _, js := range jobs {
		for _, j := range js {
			j.retired = true
			if j.index >= 0 {
				heap.Remove(&r.sched, j.index)
			}
		}
	}
}

// apply runs on the Runner's goroutine: it swaps in the planned virtual
// servers and emits the events of the change.
func (r *Runner) apply(ctx context.Context, u *update) {
	type emission struct {
		cfg    VirtualServer
		events []state.Event
	}
	var out []emission
	r.mu.Lock()
	now := r.opt.Clock.Now()
	kept := make(map[*vsEntry]bool, len(u.plan))
	for _, p := range u.plan {
		if p.old != nil {
			kept[p.old] = true
		}
	}
	for _, v := range r.vss {
		if !kept[v] {
			r.retireLocked(v.jobs)
			out = append(out, emission{v.cfg, v.state.Remove()})
		}
	}
	next := make([]*vsEntry, 0, len(u.plan))
	for vi, p := range u.plan {
		if p.old == nil {
			out = append(out, emission{p.fresh.cfg, r.startLocked(now, vi, p.fresh)})
			next = append(next, p.fresh)
			continue
		}
		old := p.old
		events, probes, err := old.state.Update(now, p.fresh.state.Config(), p.origins, r.opt.Rand)
		if err != nil {
			// plan validated this update; reaching here is a bug, and the
			// virtual server keeps running on its old configuration.
			r.log.Error("update virtual server", "vs", old.cfg.Name, "err", err)
			old.jobs = reindex(old.jobs, vi)
			next = append(next, old)
			continue
		}
		used := make([]bool, len(old.jobs))
		jobs := make([][]*job, len(p.origins))
		for i, o := range p.origins {
			if o.Old >= 0 {
				used[o.Old] = true
			}
			if o.Old >= 0 && o.KeepCheckers {
				jobs[i] = old.jobs[o.Old]
				continue
			}
			if o.Old >= 0 {
				r.retireLocked(old.jobs[o.Old : o.Old+1])
			}
			jobs[i] = p.fresh.jobs[i]
		}
		for i, isUsed := range used {
			if !isUsed {
				r.retireLocked(old.jobs[i : i+1])
			}
		}
		for ri, js := range jobs {
			for _, j := range js {
				j.vs, j.rs = vi, ri
			}
		}
		for _, pr := range probes {
			j := jobs[pr.RealServer][pr.Checker]
			j.at = pr.At
			heap.Push(&r.sched, j)
		}
		// Removed real servers' notify scripts are in the old configuration.
		var gone, rest []state.Event
		for _, e := range events {
			if e.Removed {
				gone = append(gone, e)
			} else {
				rest = append(rest, e)
			}
		}
		out = append(out, emission{old.cfg, gone})
		old.cfg, old.specs, old.jobs = p.fresh.cfg, p.fresh.specs, jobs
		out = append(out, emission{old.cfg, rest})
		next = append(next, old)
	}
	r.vss = next
	r.mu.Unlock()
	for _, e := range out {
		r.emit(ctx, e.cfg, e.events)
	}
}

func reindex(jobs [][]*job, vi int) [][]*job {
	for _, js := range jobs {
		for _, j := range js {
			j.vs = vi
		}
	}
	return jobs
}
