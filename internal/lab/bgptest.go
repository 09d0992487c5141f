package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/govs/govs/internal/control"
)

// The BGP lab's checks: every director announcing, the router spreading
// new connections over all of them, and what a drain, a rejoin and a
// director's link failing do to long-lived connections (kept busy through
// every step, each must keep answering from the same web server) and to
// new ones.

const (
	bgpLongLived = 24
	bgpAsk       = 200 * time.Millisecond
	// stallGap is the gap between two answers of a long-lived connection
	// that counts as a stall.
	stallGap = 400 * time.Millisecond
)

// BGPStep is one disruption of the BGP lab test.
type BGPStep struct {
	Name string `json:"name"`
	// RouteAfter is how long the router took to reach the expected number
	// of next hops.
	RouteAfter time.Duration `json:"route_after_ns"`
	NextHops   int           `json:"next_hops"`
	// Broken long-lived connections: an error or a different web server.
	Broken     int           `json:"broken"`
	LongLived  int           `json:"long_lived"`
	LongestGap time.Duration `json:"longest_stall_ns"`
	NewFailed  int           `json:"new_failed"`
	NewTotal   int           `json:"new_total"`
}

// waitReadyBGP waits until every director announces every VIP, the router
// routes the VIP over all of them and a request succeeds.
func (t *tester) waitReadyBGP(ctx context.Context) error {
	n := t.topo.DirectorCount()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		last = nil
		for _, d := range t.dirs() {
			s, err := t.status(ctx, d)
			switch {
			case err != nil:
				last = err
			case s.BGP == nil:
				last = fmt.Errorf("%s runs no BGP speaker", d)
			default:
				for _, v := range s.BGP.VIPs {
					if !v.Announced {
						last = fmt.Errorf("%s does not announce %s: %s", d, v.VIP, v.Reason)
					}
				}
				if len(s.BGP.VIPs) == 0 {
					last = fmt.Errorf("%s has no VIP to announce", d)
				}
			}
		}
		if last == nil {
			if got := t.routerNextHops(VIP); got != n {
				last = fmt.Errorf("the router routes %s over %d directors, not %d", VIP, got, n)
			} else if got := t.routerNextHops(VIP6); got != n {
				last = fmt.Errorf("the router routes %s over %d directors, not %d", VIP6, got, n)
			} else if _, err := t.get(); err != nil {
				last = err
			} else {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("lab test: BGP lab not ready after 60s: %w", last)
}

// routerRoute is the router's route to vip as ip(8) prints it.
func (t *tester) routerRoute(vip netip.Addr) string {
	fam := "-4"
	if vip.Is6() {
		fam = "-6"
	}
	out, _ := exec.Command("ip", "netns", "exec", t.topo.NS("router"), "ip", fam, "route", "show", vip.String()).CombinedOutput()
	return string(out)
}

// routerNextHops counts the directors the router's route to vip goes to.
func (t *tester) routerNextHops(vip netip.Addr) int {
	return strings.Count(t.routerRoute(vip), "via ")
}

// bgpSpread sends the distribution requests and counts the connections
// each director scheduled.
func (t *tester) bgpSpread(ctx context.Context) error {
	conns := func() (map[string]uint64, error) {
		m := map[string]uint64{}
		for _, d := range t.dirs() {
			s, err := t.status(ctx, d)
			if err != nil {
				return nil, err
			}
			for _, svc := range s.Services {
				if svc.VIP == VIP {
					m[d] += svc.Stats.Conns
				}
			}
		}
		return m, nil
	}
	before, err := conns()
	if err != nil {
		return err
	}
	n := t.sendRequests(ctx)
	after, err := conns()
	if err != nil {
		return err
	}
	t.result("requests", t.rep.Failed == 0, "%d/%d requests through %s:%d succeeded", n-t.rep.Failed, n, PublicIP, Port)
	fair := float64(n) / float64(t.topo.DirectorCount())
	ok := true
	var parts []string
	t.rep.PerDirector = map[string]int{}
	for _, d := range t.dirs() {
		got := int(after[d] - before[d])
		t.rep.PerDirector[d] = got
		ok = ok && float64(got) >= fair/2
		parts = append(parts, fmt.Sprintf("%s %.1f%%", d, 100*float64(got)/float64(n)))
	}
	kind := "a multipath route"
	if route := t.routerRoute(VIP); strings.Contains(route, "nhid") {
		kind = "a resilient nexthop group"
	}
	t.result("spread over directors", ok, "%s (the router's %s over %d directors; want at least half of %.0f%% each)",
		strings.Join(parts, ", "), kind, t.routerNextHops(VIP), 100/float64(t.topo.DirectorCount()))
	servers := 0
	for _, w := range t.topo.WebRoles() {
		if t.rep.PerServer[w] > 0 {
			servers++
		}
	}
	t.result("spread over web servers", servers == t.topo.Webs, "%d of %d web servers answered (Maglev over address and port)", servers, t.topo.Webs)
	return nil
}

// keeper keeps one long-lived connection busy and records what happened.
type keeper struct {
	mu     sync.Mutex
	server string
	broken time.Time // zero: not broken
	why    string
	lastOK time.Time
	stalls []stall
}

type stall struct {
	end time.Time
	gap time.Duration
}

func (k *keeper) run(l *longLived, done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-time.After(bgpAsk):
		}
		name, err := l.ask()
		now := time.Now()
		k.mu.Lock()
		switch {
		case err != nil:
			k.broken, k.why = now, err.Error()
		case name != k.server:
			k.broken, k.why = now, fmt.Sprintf("answered by %s, not %s", name, k.server)
		default:
			if gap := now.Sub(k.lastOK); gap > stallGap {
				k.stalls = append(k.stalls, stall{end: now, gap: gap})
			}
			k.lastOK = now
		}
		stop := !k.broken.IsZero()
		k.mu.Unlock()
		if stop {
			return
		}
	}
}

// bgpDisruptions runs the disruptions one after the other with long-lived
// connections and a stream of new ones going through all of them.
func (t *tester) bgpDisruptions(ctx context.Context) error {
	n := t.topo.DirectorCount()
	if n < 2 {
		t.result("disruptions", true, "skipped: one director")
		return nil
	}
	var conns []*longLived
	defer func() {
		for _, l := range conns {
			l.c.Close()
		}
	}()
	keepers := make([]*keeper, bgpLongLived)
	for i := range keepers {
		l, err := t.dialLongLived()
		if err != nil {
			return fmt.Errorf("open long-lived connection: %w", err)
		}
		conns = append(conns, l)
		name, err := l.ask()
		if err != nil {
			return fmt.Errorf("first request on long-lived connection: %w", err)
		}
		keepers[i] = &keeper{server: name, lastOK: time.Now()}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, k := range keepers {
		wg.Add(1)
		go func() { defer wg.Done(); k.run(conns[i], done) }()
	}
	stream, stopStream := t.startStream(streamInterval)
	defer func() { close(done); wg.Wait() }()
	defer stopStream()

	step := func(name string, want int, bound time.Duration, action func() error) (BGPStep, error) {
		st := BGPStep{Name: name, LongLived: len(keepers)}
		start := time.Now()
		if err := action(); err != nil {
			return st, fmt.Errorf("%s: %w", name, err)
		}
		after, ok := waitFor(ctx, bound, func() bool { return t.routerNextHops(VIP) == want })
		st.RouteAfter, st.NextHops = after, t.routerNextHops(VIP)
		if !ok {
			st.RouteAfter = -1
		}
		// Long enough for stalled flows to be retransmitted to the next
		// hop the router chose meanwhile.
		time.Sleep(2 * time.Second)
		end := time.Now()
		for _, k := range keepers {
			k.mu.Lock()
			if !k.broken.IsZero() && !k.broken.Before(start) && k.broken.Before(end) {
				st.Broken++
			}
			for _, s := range k.stalls {
				if !s.end.Before(start) && s.end.Before(end) {
					st.LongestGap = max(st.LongestGap, s.gap)
				}
			}
			k.mu.Unlock()
		}
		st.NewFailed = stream.failuresBetween(start, end)
		stream.mu.Lock()
		st.NewTotal = stream.requests
		stream.mu.Unlock()
		t.rep.BGPSteps = append(t.rep.BGPSteps, st)
		return st, nil
	}
	report := func(st BGPStep, pass bool, note string) {
		route := "never"
		if st.RouteAfter >= 0 {
			route = "after " + st.RouteAfter.Round(time.Millisecond).String()
		}
		t.result(st.Name, pass, "router at %d next hop(s) %s; %d of %d long-lived connections broken, longest stall %s; %d new requests failed%s",
			st.NextHops, route, st.Broken, st.LongLived, st.LongestGap.Round(time.Millisecond), st.NewFailed, note)
	}
	drained, victim := t.dirs()[0], t.dirs()[1]
	st, err := step("drain "+drained, n-1, 10*time.Second, func() error { return t.drain(ctx, drained, true) })
	if err != nil {
		return err
	}
	report(st, st.RouteAfter >= 0 && st.Broken == 0 && st.NewFailed == 0, "")
	st, err = step(drained+" rejoins", n, 10*time.Second, func() error { return t.drain(ctx, drained, false) })
	if err != nil {
		return err
	}
	report(st, st.RouteAfter >= 0 && st.Broken == 0 && st.NewFailed == 0, "")
	bound := 2 * BGPHoldTime
	st, err = step(victim+" link down", n-1, bound, func() error { return t.setPort(victim, false) })
	if err != nil {
		return err
	}
	report(st, st.RouteAfter >= 0 && st.RouteAfter <= bound && st.Broken == 0,
		fmt.Sprintf(" (on a shared LAN the router notices at its hold timer, %s; new connections hashed to %s meanwhile wait for it)", BGPHoldTime, victim))
	st, err = step(victim+" link back", n, 60*time.Second, func() error { return t.setPort(victim, true) })
	if err != nil {
		return err
	}
	report(st, st.RouteAfter >= 0 && st.Broken == 0 && st.NewFailed == 0, " (it announces once its peers' connections have arrived)")
	for i, k := range keepers {
		k.mu.Lock()
		if !k.broken.IsZero() && t.o.Out != nil {
			fmt.Fprintf(t.o.Out, "     long-lived connection %d (%s): %s\n", i, k.server, k.why)
		}
		k.mu.Unlock()
	}
	return nil
}

// drain drains (or undrains) director d's BGP announcements.
func (t *tester) drain(ctx context.Context, d string, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, t.socket(d))
	if err != nil {
		return err
	}
	defer c.Close()
	return c.BGPDrain(ctx, on, 0)
}

// setPort takes director d's port on the LAN bridge down or up: its link
// fails as a cable pulled out would, with no word to the router.
func (t *tester) setPort(d string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return nsRun(t.topo.NS("lan"), "ip", "link", "set", d, state)
}
