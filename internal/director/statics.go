package director

import (
	"reflect"

	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// Statics holds static_ipaddress, static_routes and static_rules entries. Add reports
// whether the entry was added (false: the kernel had it already, and it is
// not govs's to remove); Remove takes one away.
type Statics interface {
	AddAddress(vrrp.VIP) (added bool, err error)
	RemoveAddress(vrrp.VIP) error
	AddRoute(vrrp.Route) (added bool, err error)
	RemoveRoute(vrrp.Route) error
	AddRule(vrrp.Rule) (added bool, err error)
	RemoveRule(vrrp.Rule) error
}

// kernelStatics is Statics through netlink.
type kernelStatics struct{}

func (kernelStatics) AddAddress(v vrrp.VIP) (bool, error) { return vrrpnet.AddAddress(v) }
func (kernelStatics) RemoveAddress(v vrrp.VIP) error      { return vrrpnet.RemoveAddress(v) }
func (kernelStatics) AddRoute(r vrrp.Route) (bool, error) { return vrrpnet.AddRoute(r) }
func (kernelStatics) RemoveRoute(r vrrp.Route) error      { return vrrpnet.RemoveRoute(r) }
func (kernelStatics) AddRule(r vrrp.Rule) (bool, error)   { return vrrpnet.AddRule(r) }
func (kernelStatics) RemoveRule(r vrrp.Rule) error        { return vrrpnet.RemoveRule(r) }

// heldStatic is a static entry the director holds (an address, a route
// or a rule: one of the three is set), and whether it added it.
type heldStatic struct {
	addr  *vrrp.VIP
	route *vrrp.Route
	rule  *vrrp.Rule
	added bool
}

func (h heldStatic) is(o heldStatic) bool {
	return reflect.DeepEqual(h.addr, o.addr) && reflect.DeepEqual(h.route, o.route) && reflect.DeepEqual(h.rule, o.rule)
}

// kind orders the entries: addresses are added first, rules last.
func (h heldStatic) kind() int {
	switch {
	case h.addr != nil:
		return 0
	case h.route != nil:
		return 1
	}
	return 2
}

// applyStaticsLocked holds the plan's static addresses, routes and rules, as
// keepalived sets them at start: entries the running plan has stay as
// they are, new ones are added (addresses first: a route may need one),
// and those the plan dropped are removed if govs added them. A failure is
// logged, as keepalived does, and the rest goes on: one unreachable
// gateway must not keep the director from starting.
func (d *Director) applyStaticsLocked(s desired.Static) {
	var want []heldStatic
	for _, v := range s.Addresses {
		want = append(want, heldStatic{addr: &v})
	}
	for _, r := range s.Routes {
		want = append(want, heldStatic{route: &r})
	}
	for _, r := range s.Rules {
		want = append(want, heldStatic{rule: &r})
	}
	var kept, gone []heldStatic
	for _, h := range d.statics {
		if containsStatic(want, h) {
			kept = append(kept, h)
		} else {
			gone = append(gone, h)
		}
	}
	d.removeStaticsLocked(gone)
	for _, w := range want {
		if containsStatic(kept, w) {
			continue
		}
		var err error
		switch {
		case w.addr != nil:
			w.added, err = d.opts.Statics.AddAddress(*w.addr)
		case w.route != nil:
			w.added, err = d.opts.Statics.AddRoute(*w.route)
		default:
			w.added, err = d.opts.Statics.AddRule(*w.rule)
		}
		if err != nil {
			d.log.Error("static address, route or rule not set", "err", err)
			continue
		}
		kept = append(kept, w)
	}
	d.statics = kept
}

func containsStatic(list []heldStatic, h heldStatic) bool {
	for _, o := range list {
		if o.is(h) {
			return true
		}
	}
	return false
}

// removeStaticsLocked removes the entries govs added among list: rules,
// then routes, then addresses, each last first.
func (d *Director) removeStaticsLocked(list []heldStatic) {
	for kind := 2; kind >= 0; kind-- {
		for i := len(list) - 1; i >= 0; i-- {
			h := list[i]
			if !h.added || h.kind() != kind {
				continue
			}
			var err error
			switch kind {
			case 2:
				err = d.opts.Statics.RemoveRule(*h.rule)
			case 1:
				err = d.opts.Statics.RemoveRoute(*h.route)
			default:
				err = d.opts.Statics.RemoveAddress(*h.addr)
			}
			if err != nil {
				d.log.Warn("remove static address, route or rule", "err", err)
			}
		}
	}
}
