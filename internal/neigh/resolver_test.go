package neigh

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeKernel is a neighbour table and routing table in memory; events are
// fed by the test.
type fakeKernel struct {
	mu       sync.Mutex
	routes   map[netip.Addr]Route
	table    []Entry
	subErr   error
	events   chan Entry
	solicits []netip.Addr
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{routes: map[netip.Addr]Route{}, events: make(chan Entry)}
}

func (k *fakeKernel) RouteTo(ip netip.Addr) (Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r, ok := k.routes[ip]
	if !ok {
		return Route{}, errors.New("network is unreachable")
	}
	return r, nil
}

func (k *fakeKernel) Neighbours() ([]Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Entry(nil), k.table...), nil
}

func (k *fakeKernel) Subscribe(done <-chan struct{}) (<-chan Entry, error) {
	if k.subErr != nil {
		return nil, k.subErr
	}
	return k.events, nil
}

func (k *fakeKernel) Solicit(_ int, ip netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.solicits = append(k.solicits, ip)
	return nil
}

func (k *fakeKernel) solicitCount(ip netip.Addr) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, s := range k.solicits {
		if s == ip {
			n++
		}
	}
	return n
}

func (k *fakeKernel) setRoute(ip netip.Addr, r Route) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.routes[ip] = r
}

// fakeClock is advanced by the test only.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type harness struct {
	t     *testing.T
	k     *fakeKernel
	clock *fakeClock
	ticks chan time.Time
	r     *Resolver
	out   <-chan Update
}

var (
	srvA = netip.MustParseAddr("198.18.0.2")
	srvB = netip.MustParseAddr("2001:db8::2")
	gw   = netip.MustParseAddr("198.18.0.1")
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

func start(t *testing.T, k *fakeKernel, ips ...netip.Addr) *harness {
	t.Helper()
	h := &harness{t: t, k: k, clock: &fakeClock{now: time.Unix(1e9, 0)}, ticks: make(chan time.Time)}
	r, err := NewResolver(Options{Kernel: k, ResolveTimeout: 3 * time.Second, CheckInterval: time.Second, Now: h.clock.Now, Ticks: h.ticks})
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.out = r.Watch(ctx, ips)
	h.sync() // the loop's start-up is done once it takes ticks
	return h
}

// sync returns once the watch loop has handled everything sent before: the
// loop takes one tick at a time, so the second send completes only after the
// first tick's work is done.
func (h *harness) sync() {
	h.ticks <- h.clock.Now()
	h.ticks <- h.clock.Now()
}

func (h *harness) event(e Entry) {
	h.k.events <- e
	h.sync()
}

// updates drains what has been sent so far.
func (h *harness) updates() []Update {
	h.sync()
	var us []Update
	for {
		select {
		case u := <-h.out:
			us = append(us, u)
		default:
			return us
		}
	}
}

func (h *harness) expectOne(what string, match func(Update) bool) {
	h.t.Helper()
	us := h.updates()
	if len(us) != 1 || !match(us[0]) {
		h.t.Fatalf("%s: got updates %v", what, us)
	}
}

func (h *harness) expectNone(what string) {
	h.t.Helper()
	if us := h.updates(); len(us) != 0 {
		h.t.Fatalf("%s: want no update, got %v", what, us)
	}
}

func resolvedTo(ip netip.Addr, mac net.HardwareAddr) func(Update) bool {
	return func(u Update) bool { return u.IP == ip && u.Resolved && u.MAC.String() == mac.String() }
}

func TestExistingEntryIsReportedWithoutSoliciting(t *testing.T) {
	k := newFakeKernel()
	k.setRoute(srvA, Route{Ifindex: 2, NextHop: srvA})
	k.table = []Entry{{IP: srvA, Ifindex: 2, MAC: macA, State: StateReachable}}
	h := start(t, k, srvA)
	h.expectOne("existing entry", resolvedTo(srvA, macA))
	if n := k.solicitCount(srvA); n != 0 {
		t.Errorf("solicited %d times for a reachable entry", n)
	}
	if mac, idx, ok := h.r.Lookup(srvA); !ok || idx != 2 || mac.String() != macA.String() {
		t.Errorf("Lookup = %s %d %v", mac, idx, ok)
	}
}

func TestEventsFollowTheEntry(t *testing.T) {
	k := newFakeKernel()
	k.setRoute(srvB, Route{Ifindex: 3, NextHop: srvB})
	h := start(t, k, srvB)
	h.expectNone("missing entry, before timeout")
	if k.solicitCount(srvB) != 1 {
		t.Fatalf("missing entry solicited %d times, want 1", k.solicitCount(srvB))
	}
	if _, _, ok := h.r.Lookup(srvB); ok {
		t.Error("Lookup resolved before any entry")
	}

	steps := []struct {
		name    string
		advance time.Duration // clock advance before the event
		entry   Entry
		want    func(Update) bool // nil: no update
		solicit int               // total solicitations afterwards
	}{
		{"incomplete", 0, Entry{IP: srvB, Ifindex: 3, State: StateIncomplete}, nil, 1},
		{"reachable", 0, Entry{IP: srvB, Ifindex: 3, MAC: macA, State: StateReachable}, resolvedTo(srvB, macA), 1},
		{"same MAC again", 0, Entry{IP: srvB, Ifindex: 3, MAC: macA, State: StateReachable}, nil, 1},
		{"other interface", 0, Entry{IP: srvB, Ifindex: 9, MAC: macB, State: StateReachable}, nil, 1},
		{"other address", 0, Entry{IP: srvA, Ifindex: 3, MAC: macB, State: StateReachable}, nil, 1},
		{"stale is confirmed", time.Second, Entry{IP: srvB, Ifindex: 3, MAC: macA, State: StateStale}, nil, 2},
		{"new MAC", 0, Entry{IP: srvB, Ifindex: 3, MAC: macB, State: StateStale}, resolvedTo(srvB, macB), 2},
		{"failed", 0, Entry{IP: srvB, Ifindex: 3, State: StateFailed}, func(u Update) bool { return u.IP == srvB && !u.Resolved && u.Err != nil }, 2},
		{"back", 0, Entry{IP: srvB, Ifindex: 3, MAC: macB, State: StateReachable}, resolvedTo(srvB, macB), 2},
		{"deleted", 0, Entry{IP: srvB, Ifindex: 3, MAC: macB, Deleted: true}, func(u Update) bool { return !u.Resolved }, 2},
	}
	for _, s := range steps {
		h.clock.advance(s.advance)
		h.event(s.entry)
		if s.want == nil {
			h.expectNone(s.name)
		} else {
			h.expectOne(s.name, s.want)
		}
		if n := k.solicitCount(srvB); n != s.solicit {
			t.Errorf("%s: %d solicitations, want %d", s.name, n, s.solicit)
		}
	}
	// Rate limit passed: the next failure solicits again.
	h.clock.advance(3 * time.Second)
	h.event(Entry{IP: srvB, Ifindex: 3, State: StateFailed})
	if n := k.solicitCount(srvB); n != 3 {
		t.Errorf("failure after the rate limit: %d solicitations, want 3", n)
	}
}

func TestSilentHostTimesOutOnceAndKeepsBeingSolicited(t *testing.T) {
	k := newFakeKernel()
	k.setRoute(srvA, Route{Ifindex: 2, NextHop: srvA})
	h := start(t, k, srvA)
	h.clock.advance(2 * time.Second)
	h.expectNone("before the timeout")
	h.clock.advance(time.Second)
	h.expectOne("timeout", func(u Update) bool { return u.IP == srvA && !u.Resolved && errors.Is(u.Err, ErrTimeout) })
	for range 3 {
		h.clock.advance(3 * time.Second)
		h.expectNone("timeout reported once")
	}
	if n := k.solicitCount(srvA); n != 5 {
		t.Errorf("%d solicitations, want 5 (start + one per timeout)", n)
	}
	h.event(Entry{IP: srvA, Ifindex: 2, MAC: macA, State: StateReachable})
	h.expectOne("late answer", resolvedTo(srvA, macA))
}

func TestGatewayIsTheNeighbour(t *testing.T) {
	k := newFakeKernel()
	remote := netip.MustParseAddr("198.19.5.5")
	k.setRoute(remote, Route{Ifindex: 2, NextHop: gw})
	h := start(t, k, remote)
	if k.solicitCount(gw) != 1 {
		t.Fatal("gateway not solicited")
	}
	h.event(Entry{IP: gw, Ifindex: 2, MAC: macA, State: StateReachable})
	h.expectOne("via gateway", func(u Update) bool { return u.IP == remote && u.NextHop == gw && u.Resolved })
}

func TestRouteAppearsAndChanges(t *testing.T) {
	k := newFakeKernel()
	h := start(t, k, srvA)
	h.expectOne("no route", func(u Update) bool { return u.IP == srvA && !u.Resolved && u.Err != nil })
	k.table = []Entry{{IP: srvA, Ifindex: 2, MAC: macA, State: StateReachable}}
	k.setRoute(srvA, Route{Ifindex: 2, NextHop: srvA})
	h.expectOne("route appeared", resolvedTo(srvA, macA))
	k.setRoute(srvA, Route{Ifindex: 4, NextHop: srvA})
	us := h.updates()
	if len(us) != 1 || us[0].Resolved {
		t.Fatalf("route moved to another interface: %v, want one unresolved update", us)
	}
	h.event(Entry{IP: srvA, Ifindex: 4, MAC: macB, State: StateReachable})
	h.expectOne("resolved on the new interface", func(u Update) bool { return u.Resolved && u.Ifindex == 4 })
}

func TestSubscribeFailureIsReported(t *testing.T) {
	k := newFakeKernel()
	k.setRoute(srvA, Route{Ifindex: 2, NextHop: srvA})
	k.subErr = errors.New("permission denied")
	h := start(t, k, srvA)
	h.expectOne("subscribe failure", func(u Update) bool { return !u.Resolved && u.Err != nil })
}

func TestNewResolverNeedsKernel(t *testing.T) {
	if _, err := NewResolver(Options{}); err == nil {
		t.Error("want an error without a kernel")
	}
}

func TestWatchClosesOnCancel(t *testing.T) {
	k := newFakeKernel()
	r, err := NewResolver(Options{Kernel: k, Ticks: make(chan time.Time)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := r.Watch(ctx, []netip.Addr{srvA, srvA})
	cancel()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed after cancel")
		}
	}
}
