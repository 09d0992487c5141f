// Package neigh finds the MAC addresses of real servers in the kernel's
// neighbour (ARP/NDP) table and keeps them current, for a data plane that
// rewrites destination MACs (LVS direct routing).
//
// The kernel does the resolving: for an address without a usable entry (or
// one going STALE or FAILED) the Resolver asks the kernel to resolve it as if
// a packet were waiting (netlink RTM_NEWNEIGH with NTF_USE), and follows the
// table through neighbour events. So the director needs no traffic of its own
// towards a server, sends no hand-made ARP, and shares the kernel's view (and
// its timers, gratuitous ARP handling and IPv6 NDP) with everything else.
//
// The netlink side is the Kernel interface; NetlinkKernel is the real one.
package neigh

import (
	"fmt"
	"net"
	"net/netip"
	"time"
)

// State is a neighbour entry's NUD state (the kernel's NUD_* values).
type State uint16

// Neighbour states, as in <linux/neighbour.h>.
const (
	StateNone       State = 0x00
	StateIncomplete State = 0x01
	StateReachable  State = 0x02
	StateStale      State = 0x04
	StateDelay      State = 0x08
	StateProbe      State = 0x10
	StateFailed     State = 0x20
	StateNoARP      State = 0x40
	StatePermanent  State = 0x80
)

// usable reports whether an entry in this state carries a MAC to send to.
// STALE, DELAY and PROBE entries still do (the kernel sends to them while it
// re-confirms them).
func (s State) usable() bool {
	return s&(StateReachable|StateStale|StateDelay|StateProbe|StatePermanent|StateNoARP) != 0
}

func (s State) String() string {
	names := []struct {
		s State
		n string
	}{
		{StateIncomplete, "INCOMPLETE"}, {StateReachable, "REACHABLE"}, {StateStale, "STALE"},
		{StateDelay, "DELAY"}, {StateProbe, "PROBE"}, {StateFailed, "FAILED"},
		{StateNoARP, "NOARP"}, {StatePermanent, "PERMANENT"},
	}
	for _, x := range names {
		if s&x.s != 0 {
			return x.n
		}
	}
	if s == StateNone {
		return "NONE"
	}
	return fmt.Sprintf("0x%x", uint16(s))
}

// Entry is one neighbour table entry (or an event about one).
type Entry struct {
	IP      netip.Addr
	Ifindex int
	MAC     net.HardwareAddr
	State   State
	// Deleted marks an RTM_DELNEIGH event.
	Deleted bool
}

// Route is where the kernel sends packets for an address.
type Route struct {
	Ifindex int
	// NextHop is the neighbour to resolve: the gateway, or the address
	// itself when it is on a connected network.
	NextHop netip.Addr
	// Src is the route's preferred source address (invalid when it has none).
	Src netip.Addr
}

// Kernel is the netlink side of a Resolver.
type Kernel interface {
	// RouteTo looks up the route to ip.
	RouteTo(ip netip.Addr) (Route, error)
	// Neighbours lists the neighbour table (IPv4 and IPv6).
	Neighbours() ([]Entry, error)
	// Subscribe delivers neighbour events on the returned channel until
	// done is closed; the channel is closed when the subscription ends.
	Subscribe(done <-chan struct{}) (<-chan Entry, error)
	// Solicit asks the kernel to resolve ip on ifindex now.
	Solicit(ifindex int, ip netip.Addr) error
}

// Update reports a watched address's MAC, or that it has none (Resolved false).
type Update struct {
	IP      netip.Addr
	MAC     net.HardwareAddr
	Ifindex int
	// NextHop is the neighbour whose MAC this is (IP itself on the LAN).
	NextHop netip.Addr
	// Src is the preferred source address of the route to IP.
	Src      netip.Addr
	Resolved bool
	// Err says why an address is unresolved, when known (no route, timeout).
	Err error
}

func (u Update) String() string {
	if u.Resolved {
		return fmt.Sprintf("%s is at %s (ifindex %d)", u.IP, u.MAC, u.Ifindex)
	}
	return fmt.Sprintf("%s unresolved: %v", u.IP, u.Err)
}

// ErrTimeout is the Err of an Update for an address the kernel could not
// resolve within Options.ResolveTimeout.
var ErrTimeout = fmt.Errorf("neighbour resolution timed out")

// Options configures a Resolver.
type Options struct {
	// Kernel is the netlink side; required (NewNetlinkKernel for the real one).
	Kernel Kernel
	// ResolveTimeout is how long an address may stay unresolved before an
	// unresolved Update is sent; also the interval between solicitations for
	// unresolved addresses. Default 3s.
	ResolveTimeout time.Duration
	// CheckInterval is how often timeouts and missing routes are looked at.
	// Default 500ms.
	CheckInterval time.Duration
	// Now and Ticks replace the clock in tests: Ticks, when set, drives the
	// checks instead of a ticker of CheckInterval.
	Now   func() time.Time
	Ticks <-chan time.Time
}

func (o *Options) defaults() {
	if o.ResolveTimeout <= 0 {
		o.ResolveTimeout = 3 * time.Second
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}
