package realserver

import (
	"fmt"
	"net/netip"
	"slices"
)

// LinkState is an observed network device.
type LinkState struct {
	Up bool
}

// Observed is the part of a host's state that a Spec talks about.
type Observed struct {
	// Links maps device name to state; a missing device has no entry.
	Links map[string]LinkState
	// Addrs maps device name to its addresses.
	Addrs map[string][]netip.Prefix
	// Sysctls maps key to current value; a sysctl that does not exist (yet:
	// a tunnel device's settings appear with the device) has no entry.
	Sysctls map[string]string
	// Decaps maps an interface to the govs decapsulation program attached
	// to it (its VIPs and GUE ports); an interface without one has no
	// entry.
	Decaps map[string]Decap
}

func (o Observed) hasDecap(d Decap) bool {
	have, ok := o.Decaps[d.Interface]
	return ok && sameSet(have.VIPs, d.VIPs) && sameSet(have.GUEPorts, d.GUEPorts)
}

func sameSet[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

func (o Observed) hasAddr(dev string, p netip.Prefix) bool {
	return slices.Contains(o.Addrs[dev], p)
}

// ActionKind says what an Action changes.
type ActionKind int

// Action kinds, in the order Plan emits them.
const (
	CreateTunnel ActionKind = iota + 1
	LinkUp
	AddAddr
	SetSysctl
	AttachDecap
	DelAddr
	LinkDown
	DetachDecap
)

// Action is one change to the host.
type Action struct {
	Kind    ActionKind
	Tunnel  Tunnel  // CreateTunnel, LinkUp, LinkDown (Tunnel.Name)
	Addr    Address // AddAddr, DelAddr
	Setting Setting // SetSysctl
	Decap   Decap   // AttachDecap (the VIPs it serves), DetachDecap (Decap.Interface)
}

func (a Action) String() string {
	switch a.Kind {
	case CreateTunnel:
		kind := "ipip"
		if a.Tunnel.IPv6 {
			kind = "ip6tnl"
		}
		return fmt.Sprintf("create %s device %s", kind, a.Tunnel.Name)
	case LinkUp:
		return fmt.Sprintf("set %s up", a.Tunnel.Name)
	case LinkDown:
		return fmt.Sprintf("set %s down", a.Tunnel.Name)
	case AddAddr:
		return fmt.Sprintf("add %s to %s", a.Addr.Prefix, a.Addr.Dev)
	case DelAddr:
		return fmt.Sprintf("remove %s from %s", a.Addr.Prefix, a.Addr.Dev)
	case SetSysctl:
		return fmt.Sprintf("set %s = %s", Name(a.Setting.Key), a.Setting.Value)
	case AttachDecap:
		if len(a.Decap.GUEPorts) > 0 {
			return fmt.Sprintf("attach XDP decapsulation to %s for %v (ipip, and GUE on UDP %v)", a.Decap.Interface, a.Decap.VIPs, a.Decap.GUEPorts)
		}
		return fmt.Sprintf("attach XDP decapsulation to %s for %v", a.Decap.Interface, a.Decap.VIPs)
	case DetachDecap:
		return fmt.Sprintf("detach XDP decapsulation from %s", a.Decap.Interface)
	}
	return fmt.Sprintf("unknown action %d", a.Kind)
}

// Plan returns the actions that bring a host in state obs to spec, in an order
// that works: devices first, then addresses, then sysctls (a device's sysctls
// exist only once the device does). An empty plan means the host is ready.
func Plan(spec Spec, obs Observed) []Action {
	var acts []Action
	for _, t := range spec.Tunnels {
		l, ok := obs.Links[t.Name]
		if !ok {
			acts = append(acts, Action{Kind: CreateTunnel, Tunnel: t})
		}
		if !l.Up {
			acts = append(acts, Action{Kind: LinkUp, Tunnel: t})
		}
	}
	for _, a := range spec.Addrs {
		if !obs.hasAddr(a.Dev, a.Prefix) {
			acts = append(acts, Action{Kind: AddAddr, Addr: a})
		}
	}
	for _, s := range spec.Sysctls {
		if v, ok := obs.Sysctls[s.Key]; !ok || v != s.Value {
			acts = append(acts, Action{Kind: SetSysctl, Setting: s})
		}
	}
	// Last: packets are decapsulated only once the VIP can take them.
	for _, d := range spec.Decaps {
		if !obs.hasDecap(d) {
			acts = append(acts, Action{Kind: AttachDecap, Decap: d})
		}
	}
	return acts
}

// Item is one line of a readiness report.
type Item struct {
	What string // e.g. "address 198.18.0.100/32 on lo"
	Want string
	Have string
	OK   bool
}

// Check reports, for every part of spec, whether obs satisfies it.
func Check(spec Spec, obs Observed) []Item {
	var items []Item
	for _, t := range spec.Tunnels {
		l, ok := obs.Links[t.Name]
		have := "missing"
		if ok {
			have = "down"
			if l.Up {
				have = "up"
			}
		}
		items = append(items, Item{What: "device " + t.Name, Want: "up", Have: have, OK: ok && l.Up})
	}
	for _, a := range spec.Addrs {
		ok := obs.hasAddr(a.Dev, a.Prefix)
		have := "absent"
		if ok {
			have = "present"
		}
		items = append(items, Item{What: fmt.Sprintf("address %s on %s", a.Prefix, a.Dev), Want: "present", Have: have, OK: ok})
	}
	for _, s := range spec.Sysctls {
		v, ok := obs.Sysctls[s.Key]
		if !ok {
			v = "missing"
		}
		items = append(items, Item{What: Name(s.Key), Want: s.Value, Have: v, OK: ok && v == s.Value})
	}
	for _, d := range spec.Decaps {
		have := "absent"
		if o, ok := obs.Decaps[d.Interface]; ok {
			have = fmt.Sprintf("for %v, GUE ports %v", o.VIPs, o.GUEPorts)
		}
		items = append(items, Item{What: "XDP decapsulation on " + d.Interface, Want: fmt.Sprintf("for %v, GUE ports %v", d.VIPs, d.GUEPorts), Have: have, OK: obs.hasDecap(d)})
	}
	return items
}

// Ready reports whether every item is OK.
func Ready(items []Item) bool {
	for _, it := range items {
		if !it.OK {
			return false
		}
	}
	return true
}

// DefaultSysctl is the value Down restores when the state file is lost: the
// kernel's default for arp_ignore, arp_announce and rp_filter.
const DefaultSysctl = "0"

// PlanDown returns the actions that undo Up for the VIPs remove (all of the
// record's VIPs when remove is empty), and the record left afterwards.
//
// Settings still needed by the VIPs that remain stay. A setting the record
// holds is restored to its previous value; with no record (state file lost),
// remove's VIPs are taken as the whole set and their settings go back to
// DefaultSysctl. Tunnel devices are only set down, never deleted: they are the
// kernel's fallback devices, which cannot be deleted.
func PlanDown(rec *Record, remove []VIP, obs Observed) ([]Action, Record) {
	var next Record
	var removed []VIP
	if rec == nil {
		removed = remove
	} else {
		next = rec.clone()
		if len(remove) == 0 {
			removed, next.VIPs = next.VIPs, nil
		} else {
			for _, r := range remove {
				i := slices.IndexFunc(next.VIPs, func(v VIP) bool { return v.Addr == r.Addr })
				if i < 0 {
					// Not ours according to the record, but the caller asked:
					// remove it from where its mode puts it.
					removed = append(removed, r)
					continue
				}
				removed = append(removed, next.VIPs[i])
				next.VIPs = slices.Delete(next.VIPs, i, i+1)
			}
		}
	}
	keep := Desired(next.VIPs)
	gone := Desired(removed)

	var acts []Action
	// First: no packet is decapsulated for a VIP that goes.
	for _, d := range gone.Decaps {
		if _, ok := obs.Decaps[d.Interface]; !ok {
			continue
		}
		if i := slices.IndexFunc(keep.Decaps, func(k Decap) bool { return k.Interface == d.Interface }); i >= 0 {
			if !obs.hasDecap(keep.Decaps[i]) {
				acts = append(acts, Action{Kind: AttachDecap, Decap: keep.Decaps[i]})
			}
			continue
		}
		acts = append(acts, Action{Kind: DetachDecap, Decap: Decap{Interface: d.Interface}})
	}
	for _, a := range gone.Addrs {
		if obs.hasAddr(a.Dev, a.Prefix) && !slices.ContainsFunc(keep.Addrs, func(k Address) bool { return k == a }) {
			acts = append(acts, Action{Kind: DelAddr, Addr: a})
		}
	}

	var restore []Setting
	if rec == nil {
		for _, s := range gone.Sysctls {
			restore = append(restore, Setting{Key: s.Key, Value: DefaultSysctl})
		}
	} else {
		for _, key := range sortedKeys(rec.Previous) {
			restore = append(restore, Setting{Key: key, Value: rec.Previous[key]})
		}
	}
	for _, s := range restore {
		if slices.ContainsFunc(keep.Sysctls, func(k Setting) bool { return k.Key == s.Key }) {
			continue
		}
		delete(next.Previous, s.Key)
		if v, ok := obs.Sysctls[s.Key]; ok && v != s.Value {
			acts = append(acts, Action{Kind: SetSysctl, Setting: s})
		}
	}

	var down []string
	if rec == nil {
		for _, t := range gone.Tunnels {
			down = append(down, t.Name)
		}
	} else {
		down = rec.LinksUp
	}
	for _, name := range down {
		if slices.ContainsFunc(keep.Tunnels, func(t Tunnel) bool { return t.Name == name }) {
			continue
		}
		next.LinksUp = slices.DeleteFunc(next.LinksUp, func(n string) bool { return n == name })
		if l, ok := obs.Links[name]; ok && l.Up {
			acts = append(acts, Action{Kind: LinkDown, Tunnel: Tunnel{Name: name}})
		}
	}
	return acts, next
}
