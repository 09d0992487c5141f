// Package announce decides, from each VIP's readiness, which VIPs a
// director announces over BGP at a moment. It is pure: the caller says
// what is ready and what time it is, and gets back what to announce, why
// the rest is not, and when to ask again.
//
// Withdrawals are never delayed (checks and sync that have not reported
// yet only hold back an announcement; they do not withdraw one): a director whose servers failed must stop
// drawing traffic at once. Announcements are damped: a VIP withdrawn for a
// health reason is held down before it is announced again, the hold
// doubling each time it flaps (announced for less than Policy.Stable) up
// to Policy.MaxHoldDown, and every VIP makes at most Policy.MaxUpdates
// announcements in Policy.Window. An operator's drain is not a flap: an
// undrain announces at once.
package announce

import (
	"net/netip"
	"slices"
	"time"
)

// Reason says why a VIP is not ready; Ready (the zero value) says it is.
type Reason uint8

// The reasons, in the order a director checks them.
const (
	Ready Reason = iota
	// NoDataPlane: the data plane is not attached with the current state.
	NoDataPlane
	// InterfaceDown: an interface the data plane forwards on is down.
	InterfaceDown
	// SyncPending: connection sync has not received the peers' tables yet.
	SyncPending
	// ChecksPending: not every checker of the VIP's servers has a result.
	ChecksPending
	// NoUsableReal: no real server with a weight above 0 and a resolved MAC.
	NoUsableReal
	// QuorumLost: the virtual server's quorum does not hold.
	QuorumLost
	// Drained: an operator drained this director (govs bgp drain).
	Drained
)

var reasonNames = [...]string{
	Ready:         "ready",
	NoDataPlane:   "data plane not attached",
	InterfaceDown: "interface down",
	SyncPending:   "waiting for the peers' connections",
	ChecksPending: "health checks pending",
	NoUsableReal:  "no usable real server",
	QuorumLost:    "quorum lost",
	Drained:       "drained",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// health reports whether a withdrawal for r is the servers' doing and so
// counts as a flap; the others are the director's own start-up or an
// operator's decision.
func (r Reason) health() bool {
	return r == NoUsableReal || r == QuorumLost || r == InterfaceDown || r == NoDataPlane
}

// gate reports whether r only holds back a first announcement: a VIP
// already announced stays announced while a reload's new checkers have
// no result yet or sync asks a new peer's table.
func (r Reason) gate() bool { return r == ChecksPending || r == SyncPending }

// Policy tunes the damping; zero fields take the defaults.
type Policy struct {
	// HoldDown is the first hold after a health withdrawal (1 s).
	HoldDown time.Duration
	// MaxHoldDown caps the doubling hold (60 s).
	MaxHoldDown time.Duration
	// Stable is how long a VIP must stay announced for its hold to go
	// back to HoldDown (60 s).
	Stable time.Duration
	// MaxUpdates announcements per VIP in Window (10 in 60 s).
	MaxUpdates int
	Window     time.Duration
}

// Defaults for the zero values of Policy.
const (
	DefaultHoldDown    = time.Second
	DefaultMaxHoldDown = time.Minute
	DefaultStable      = time.Minute
	DefaultMaxUpdates  = 10
	DefaultWindow      = time.Minute
)

// Resolved is p with its zero fields set to the defaults.
func (p Policy) Resolved() Policy {
	if p.HoldDown <= 0 {
		p.HoldDown = DefaultHoldDown
	}
	if p.MaxHoldDown < p.HoldDown {
		p.MaxHoldDown = max(DefaultMaxHoldDown, p.HoldDown)
	}
	if p.Stable <= 0 {
		p.Stable = DefaultStable
	}
	if p.MaxUpdates <= 0 {
		p.MaxUpdates = DefaultMaxUpdates
	}
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	return p
}

// VIP is one VIP's state after a step.
type VIP struct {
	Addr      netip.Addr
	Announced bool
	// Reason is why it is not announced: its readiness, or Ready while
	// it is ready but held down (HeldUntil says until when).
	Reason    Reason
	HeldUntil time.Time
	// Since is when it was last announced or withdrawn.
	Since time.Time
	// Flaps counts the health withdrawals that came before Stable.
	Flaps int
}

// Decision is the outcome of a step.
type Decision struct {
	// Announce lists the VIPs to announce, sorted; every other VIP is
	// withdrawn.
	Announce []netip.Addr
	// VIPs is every VIP's state, sorted by address.
	VIPs []VIP
	// Wake is when to step again although nothing changed (a hold ends,
	// the update window frees); zero: not needed.
	Wake time.Time
	// Changed reports whether Announce differs from the previous step's.
	Changed bool
}

type vipState struct {
	announced bool
	since     time.Time
	heldUntil time.Time
	hold      time.Duration
	flaps     int
	reason    Reason
	// announces are the times of recent announcements, oldest first.
	announces []time.Time
}

// Machine is the damping state of every VIP. The zero value is not
// usable; make one with New. Not safe for concurrent use.
type Machine struct {
	policy Policy
	vips   map[netip.Addr]*vipState
}

// New returns a Machine with the policy's defaults resolved.
func New(p Policy) *Machine {
	return &Machine{policy: p.Resolved(), vips: map[netip.Addr]*vipState{}}
}

// Step takes every VIP's readiness at now. A VIP missing from ready is
// forgotten (and so withdrawn, with no hold if it comes back: it left
// the configuration).
func (m *Machine) Step(now time.Time, ready map[netip.Addr]Reason) Decision {
	p := m.policy
	var d Decision
	for a := range m.vips {
		if _, ok := ready[a]; !ok {
			if m.vips[a].announced {
				d.Changed = true
			}
			delete(m.vips, a)
		}
	}
	addrs := make([]netip.Addr, 0, len(ready))
	for a := range ready {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(x, y netip.Addr) int { return x.Compare(y) })
	wake := func(t time.Time) {
		if d.Wake.IsZero() || t.Before(d.Wake) {
			d.Wake = t
		}
	}
	for _, a := range addrs {
		r := ready[a]
		v := m.vips[a]
		if v == nil {
			v = &vipState{hold: p.HoldDown, since: now}
			m.vips[a] = v
		}
		v.reason = r
		// Announcements older than the window no longer count.
		for len(v.announces) > 0 && now.Sub(v.announces[0]) >= p.Window {
			v.announces = v.announces[1:]
		}
		switch {
		case v.announced && r != Ready && !r.gate():
			v.announced, d.Changed = false, true
			if r.health() {
				if now.Sub(v.since) < p.Stable {
					v.flaps++
					if v.flaps > 1 {
						v.hold = min(2*v.hold, p.MaxHoldDown)
					}
				} else {
					v.flaps, v.hold = 1, p.HoldDown
				}
				v.heldUntil = now.Add(v.hold)
			}
			v.since = now
		case !v.announced && r == Ready:
			switch {
			case now.Before(v.heldUntil):
				wake(v.heldUntil)
			case len(v.announces) >= p.MaxUpdates:
				wake(v.announces[0].Add(p.Window))
			default:
				v.announced, d.Changed = true, true
				v.since = now
				v.announces = append(v.announces, now)
			}
		case v.announced && now.Sub(v.since) >= p.Stable && v.flaps > 0:
			v.flaps, v.hold = 0, p.HoldDown
		}
		out := VIP{Addr: a, Announced: v.announced, Reason: r, Since: v.since, Flaps: v.flaps}
		if !v.announced && r == Ready {
			out.HeldUntil = v.heldUntil
			if len(v.announces) >= p.MaxUpdates {
				out.HeldUntil = v.announces[0].Add(p.Window)
			}
		}
		if v.announced {
			d.Announce = append(d.Announce, a)
		}
		d.VIPs = append(d.VIPs, out)
	}
	return d
}
