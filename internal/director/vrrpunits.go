package director

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/vipfilter"
	"github.com/govs/govs/internal/vrrp"
)

// A vrrpUnit is what of the VRRP plan must run together: a sync group and
// its instances, or an instance on its own, with the scripts they track.
// A reload restarts only the units whose part of the plan changed, so
// editing one instance moves no other instance's VIPs.
type vrrpUnit struct {
	key  string
	plan desired.VRRP
}

// vrrpUnits splits a VRRP plan into units, in the plan's instance order.
func vrrpUnits(v desired.VRRP) []vrrpUnit {
	groupOf := map[string]int{}
	for gi, g := range v.SyncGroups {
		for _, in := range g.Instances {
			groupOf[in] = gi
		}
	}
	scripts := func(insts []vrrp.InstanceConfig) []vrrp.TrackScript {
		var out []vrrp.TrackScript
		for _, s := range v.Scripts {
			for _, in := range insts {
				if slices.ContainsFunc(in.TrackScripts, func(t vrrp.Track) bool { return t.Name == s.Name }) {
					out = append(out, s)
					break
				}
			}
		}
		return out
	}
	files := func(insts []vrrp.InstanceConfig) []vrrp.TrackFile {
		var out []vrrp.TrackFile
		for _, f := range v.Files {
			for _, in := range insts {
				if slices.ContainsFunc(in.TrackFiles, func(t vrrp.Track) bool { return t.Name == f.Name }) {
					out = append(out, f)
					break
				}
			}
		}
		return out
	}
	var units []vrrpUnit
	seen := map[int]bool{}
	for _, in := range v.Instances {
		gi, grouped := groupOf[in.Name]
		if !grouped {
			insts := []vrrp.InstanceConfig{in}
			units = append(units, vrrpUnit{key: "instance " + in.Name, plan: desired.VRRP{Instances: insts, Scripts: scripts(insts), Files: files(insts)}})
			continue
		}
		if seen[gi] {
			continue
		}
		seen[gi] = true
		g := v.SyncGroups[gi]
		var insts []vrrp.InstanceConfig
		for _, other := range v.Instances {
			if slices.Contains(g.Instances, other.Name) {
				insts = append(insts, other)
			}
		}
		units = append(units, vrrpUnit{key: "group " + g.Name, plan: desired.VRRP{Instances: insts, SyncGroups: []vrrp.SyncGroup{g}, Scripts: scripts(insts), Files: files(insts)}})
	}
	return units
}

// runningUnit is a started unit; gen tags its state reports.
type runningUnit struct {
	plan desired.VRRP
	v    VRRP
	gen  int
}

// applyVRRPLocked makes the running units those of plan: a unit whose
// part of the plan is unchanged keeps running; changed and removed ones
// stop first (giving their VIPs up), then changed and new ones start.
func (d *Director) applyVRRPLocked(ctx context.Context, plan desired.VRRP) error {
	want := vrrpUnits(plan)
	keep := map[string]bool{}
	for _, u := range want {
		if r, ok := d.units[u.key]; ok && reflect.DeepEqual(r.plan, u.plan) {
			keep[u.key] = true
		}
	}
	// The plans of the units stopped here, to restart one whose new plan
	// fails to start: a failed reload must not leave a VIP unowned.
	previous := map[string]desired.VRRP{}
	for _, key := range d.unitOrder {
		if !keep[key] {
			previous[key] = d.units[key].plan
			d.stopUnitLocked(key)
		}
	}
	factory := d.opts.VRRP
	if factory == nil {
		factory = defaultVRRP
	}
	if d.vipFilter == nil && slices.ContainsFunc(plan.Instances, func(c vrrp.InstanceConfig) bool { return c.NoAccept }) {
		open := d.opts.OpenVIPFilter
		if open == nil {
			open = func() (VIPFilter, error) { return vipfilter.Open() }
		}
		f, err := open()
		if err != nil {
			return fmt.Errorf("no_accept: %w", err)
		}
		d.vipFilter = f
	}
	start := func(key string, up desired.VRRP) error {
		d.vrrpGen++
		gen := d.vrrpGen
		var siblings []vrrp.InstanceConfig
		for _, in := range plan.Instances {
			if !slices.ContainsFunc(up.Instances, func(c vrrp.InstanceConfig) bool { return c.Name == in.Name }) {
				siblings = append(siblings, in)
			}
		}
		unit := VRRPUnit{Plan: up, Siblings: siblings, Resume: d.resumeVRRP, PreemptHold: d.preemptHold, OnState: func(instance string, st vrrp.State) {
			d.vrrpChanges.push(vrrpChange{unit: key, instance: instance, state: st, gen: gen})
		}, StartupDelay: max(d.vrrpStartAt.Sub(d.opts.Clock.Now()), 0)}
		if d.vipFilter != nil {
			unit.VIPFilter = d.vipFilter
		}
		if d.fifo != nil {
			unit.NotifyFIFO = d.fifo.Write
		}
		v, err := factory(ctx, unit, d.log)
		if err != nil {
			return err
		}
		d.units[key] = &runningUnit{plan: up, v: v, gen: gen}
		return nil
	}
	d.unitOrder = d.unitOrder[:0]
	var errs []error
	for _, u := range want {
		d.unitOrder = append(d.unitOrder, u.key)
		if keep[u.key] {
			continue
		}
		err := start(u.key, u.plan)
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("vrrp %s: %w", u.key, err))
		if old, ok := previous[u.key]; ok {
			if rerr := start(u.key, old); rerr != nil {
				d.log.Error("vrrp: the previous configuration does not start again either", "unit", u.key, "err", rerr)
			} else {
				d.log.Warn("vrrp: new configuration failed to start; the previous one runs again", "unit", u.key, "err", err)
			}
		}
	}
	d.unitOrder = slices.DeleteFunc(d.unitOrder, func(k string) bool { return d.units[k] == nil })
	d.publishMastersLocked()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// stopUnitLocked stops a unit and forgets its instances' states.
func (d *Director) stopUnitLocked(key string) {
	r, ok := d.units[key]
	if !ok {
		return
	}
	r.v.Stop()
	for _, in := range r.plan.Instances {
		delete(d.vrrpStates, in.Name)
	}
	delete(d.units, key)
}

// stopVRRPLocked stops every unit.
func (d *Director) stopVRRPLocked() {
	for _, key := range d.unitOrder {
		d.stopUnitLocked(key)
	}
	d.unitOrder = nil
	d.publishMastersLocked()
}

// vrrpStatusLocked is every running instance's state, in plan order.
func (d *Director) vrrpStatusLocked() []status.VRRPInstance {
	var out []status.VRRPInstance
	for _, key := range d.unitOrder {
		out = append(out, d.units[key].v.Status()...)
	}
	return out
}
