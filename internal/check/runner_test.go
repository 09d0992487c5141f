package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// fakeClock moves only when told to. Waiters registered with After fire
// when the clock reaches their time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan struct{}
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), added: make(chan struct{}, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	c.added <- struct{}{}
	return ch
}

// advanceToNext waits for a waiter, moves the clock to the earliest one and
// fires it. It returns the new time.
func (c *fakeClock) advanceToNext(t *testing.T) time.Time {
	t.Helper()
	select {
	case <-c.added:
	case <-time.After(5 * time.Second):
		t.Fatal("runner never waited on the clock")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.Slice(c.waiters, func(i, j int) bool { return c.waiters[i].at.Before(c.waiters[j].at) })
	w := c.waiters[0]
	c.waiters = c.waiters[1:]
	if w.at.After(c.now) {
		c.now = w.at
	}
	w.ch <- c.now
	return c.now
}

// fakeRunner builds a runner whose probers come from probe.
func fakeRunner(t *testing.T, vss []VirtualServer, opt Options, probe func(vs, rs, chk int) Prober) *Runner {
	t.Helper()
	type key struct{ vs, rs, chk int }
	var order []key
	for vi, v := range vss {
		for ri, rs := range v.RealServers {
			for ci := range rs.Checkers {
				order = append(order, key{vi, ri, ci})
			}
		}
	}
	n := 0
	r, err := newRunner(vss, opt, func(resolved) (Prober, error) {
		k := order[n]
		n++
		return probe(k.vs, k.rs, k.chk), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunnerRetryTimingWithFakeClock(t *testing.T) {
	clk := newFakeClock()
	start := clk.Now()
	var mu sync.Mutex
	var probedAt []time.Duration
	var events []state.Event
	vss := []VirtualServer{{Name: "vip:80", RealServers: []RealServer{{
		Addr: netip.MustParseAddrPort("198.18.0.2:80"), Weight: 1, Inhibit: true,
		Checkers: []Spec{{Type: TCP, DelayLoop: 10 * time.Second, Retry: ptr(1), DelayBeforeRetry: ptr(3 * time.Second), Warmup: ptr(time.Duration(0))}},
	}}}}
	r := fakeRunner(t, vss, Options{Workers: 1, Clock: clk, OnEvent: func(e state.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}}, func(_, _, _ int) Prober {
		return ProberFunc(func(context.Context) state.Result {
			mu.Lock()
			probedAt = append(probedAt, clk.Now().Sub(start))
			mu.Unlock()
			return state.Result{Err: errors.New("connection refused")}
		})
	})
	r.Start(context.Background())
	// The first probe is due at once (warmup 0); then the retry after
	// delay_before_retry, then one probe every delay_loop.
	for range 4 {
		clk.advanceToNext(t)
	}
	r.Stop()
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{0, 3 * time.Second, 13 * time.Second, 23 * time.Second}
	if len(probedAt) < len(want) || !reflect.DeepEqual(probedAt[:len(want)], want) {
		t.Fatalf("probes at %v, want %v", probedAt, want)
	}
	var down *state.Event
	for i := range events {
		if events[i].Kind == state.RealServerDown && !events[i].Initial {
			down = &events[i]
			break
		}
	}
	if down == nil || !strings.Contains(down.Reason, "TCP_CHECK 198.18.0.2:80 failed after 1 retries: connection refused") {
		t.Fatalf("down event %+v", down)
	}
	if want := []state.Dest{{Name: "198.18.0.2:80", Weight: 0}}; !reflect.DeepEqual(down.Dests, want) {
		t.Fatalf("dests %v, want %v", down.Dests, want)
	}
}

func TestRunnerBoundsWorkersAndSpreadsStart(t *testing.T) {
	const checkers, workers = 60, 4
	var rss []RealServer
	for i := range checkers {
		rss = append(rss, RealServer{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.1.1"), uint16(1000+i)), Weight: 1,
			Checkers: []Spec{{Type: TCP, DelayLoop: time.Hour, Warmup: ptr(400 * time.Millisecond)}}})
	}
	var inflight, maxInflight atomic.Int32
	var mu sync.Mutex
	var starts []time.Time
	done := make(chan struct{})
	r := fakeRunner(t, []VirtualServer{{Name: "vip:80", RealServers: rss}}, Options{Workers: workers}, func(_, _, _ int) Prober {
		return ProberFunc(func(context.Context) state.Result {
			n := inflight.Add(1)
			for {
				m := maxInflight.Load()
				if n <= m || maxInflight.CompareAndSwap(m, n) {
					break
				}
			}
			mu.Lock()
			starts = append(starts, time.Now())
			if len(starts) == checkers {
				close(done)
			}
			mu.Unlock()
			time.Sleep(15 * time.Millisecond)
			inflight.Add(-1)
			return state.Result{OK: true}
		})
	})
	t0 := time.Now()
	r.Start(context.Background())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("not every checker ran")
	}
	r.Stop()
	if m := maxInflight.Load(); m > workers || m < 2 {
		t.Fatalf("max concurrent probes %d, want 2..%d", m, workers)
	}
	mu.Lock()
	defer mu.Unlock()
	// Warmup spreads the first probes: no 50 ms window holds most of them.
	for i := range starts {
		n := 0
		for j := range starts {
			if d := starts[j].Sub(starts[i]); d >= 0 && d < 50*time.Millisecond {
				n++
			}
		}
		if n > checkers/3 {
			t.Fatalf("%d of %d first probes within 50ms of %v: no spread", n, checkers, starts[i].Sub(t0))
		}
	}
}

func TestRunnerNotifyScripts(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "calls")
	rec := writeScript(t, dir, "record", `echo "$(basename "$0") $*" >> `+out+"\n")
	script := func(args string) *Script { return &Script{Command: rec + " " + args} }

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(l.Addr().String())
	serve := func(l net.Listener) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}
	go serve(l)

	events := make(chan state.Event, 100)
	vss := []VirtualServer{{
		Name: "198.18.0.100:80", Omega: true,
		QuorumUp: script("quorum_up 198.18.0.100:80"), QuorumDown: script("quorum_down 'VS 198.18.0.100:80'"),
		RealServers: []RealServer{{
			Addr: addr, Weight: 2,
			NotifyUp: script("notify_up " + addr.String()), NotifyDown: script(`notify_down "` + addr.String() + ` down"`),
			Checkers: []Spec{{Type: TCP, DelayLoop: 100 * time.Millisecond, Retry: ptr(0), Warmup: ptr(time.Duration(0)), ConnectTimeout: time.Second}},
		}},
	}}
	r, err := NewRunner(vss, Options{OnEvent: func(e state.Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	waitFor := func(kind state.Kind) state.Event {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Kind == kind && !e.Initial {
					return e
				}
			case <-timeout:
				t.Fatalf("no %v event", kind)
			}
		}
	}
	l.Close()
	e := waitFor(state.RealServerDown)
	// A probe caught in the closing listener's queue is reset; later ones
	// are refused: either says the server is gone.
	if !strings.Contains(e.Reason, "connection refused") && !strings.Contains(e.Reason, "connection reset") || len(e.Dests) != 0 {
		t.Fatalf("down event %+v", e)
	}
	waitFor(state.QuorumDown)
	l2, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go serve(l2)
	e = waitFor(state.RealServerUp)
	if want := []state.Dest{{Name: addr.String(), Weight: 2}}; !reflect.DeepEqual(e.Dests, want) {
		t.Fatalf("up dests %v, want %v", e.Dests, want)
	}
	waitFor(state.QuorumUp)
	if st := r.Status(); len(st) != 1 || !st[0].QuorumUp || !st[0].RealServers[0].Alive {
		t.Fatalf("status %+v", st)
	}
	r.Stop() // omega: the down notifiers run on the way out
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	// Scripts start in event order but run concurrently, so compare as sets
	// per phase.
	wantCalls := []string{
		"record notify_down " + addr.String() + " down",
		"record quorum_down VS 198.18.0.100:80",
		"record notify_up " + addr.String(),
		"record quorum_up 198.18.0.100:80",
		"record notify_down " + addr.String() + " down",
		"record quorum_down VS 198.18.0.100:80",
	}
	sort.Strings(got)
	sort.Strings(wantCalls)
	if !reflect.DeepEqual(got, wantCalls) {
		t.Fatalf("scripts called:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantCalls, "\n"))
	}
}

func TestNewRunnerRejectsBadSpecs(t *testing.T) {
	_, err := NewRunner([]VirtualServer{{Name: "v", RealServers: []RealServer{{Addr: rsAddr, Weight: 1,
		Checkers: []Spec{{Type: HTTP}}}}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "real server 198.18.0.2:8080 checker 1") {
		t.Fatalf("err = %v", err)
	}
}

// TestRunnerTimingPerCheckerType drives each checker type with its default
// retry and delay_before_retry through the Runner on a fake clock: failures
// until down, one more failure while down, then a success.
func TestRunnerTimingPerCheckerType(t *testing.T) {
	const loop = 10 * time.Second
	s := func(secs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range secs {
			out = append(out, time.Duration(x)*time.Second)
		}
		return out
	}
	tests := []struct {
		spec Spec
		// probe times; the checker goes down at probe downAt and up at the last.
		want   []time.Duration
		downAt int
	}{
		{Spec{Type: TCP}, s(0, 1, 11, 21), 1},
		{Spec{Type: SMTP}, s(0, 1, 11, 21), 1},
		{Spec{Type: UDP}, s(0, 1, 11, 21), 1},
		{Spec{Type: Ping}, s(0, 1, 11, 21), 1},
		{Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, s(0, 3, 13, 23), 1},
		{Spec{Type: SSL, URLs: []URL{{Path: "/"}}}, s(0, 3, 13, 23), 1},
		{Spec{Type: DNS}, s(0, 10, 20, 30, 40, 50), 3},
		{Spec{Type: Misc, MiscPath: Script{Command: "/bin/false"}}, s(0, 10, 20), 0},
		{Spec{Type: TCP, Retry: ptr(2), DelayBeforeRetry: ptr(4 * time.Second)}, s(0, 4, 8, 18, 28), 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.spec.Type), func(t *testing.T) {
			clk := newFakeClock()
			start := clk.Now()
			var mu sync.Mutex
			var probedAt []time.Duration
			type ev struct {
				kind  state.Kind
				probe int
			}
			var evs []ev
			vss := []VirtualServer{{Name: "vip:80", DelayLoop: loop, RealServers: []RealServer{{
				Addr: netip.MustParseAddrPort("198.18.0.2:80"), Weight: 1, Checkers: []Spec{tt.spec}}}}}
			r := fakeRunner(t, vss, Options{Workers: 1, Clock: clk, Rand: func() float64 { return 0 },
				OnEvent: func(e state.Event) {
					mu.Lock()
					defer mu.Unlock()
					if !e.Initial && !e.Shutdown && (e.Kind == state.RealServerUp || e.Kind == state.RealServerDown) {
						evs = append(evs, ev{e.Kind, len(probedAt) - 1})
					}
				}}, func(_, _, _ int) Prober {
				return ProberFunc(func(context.Context) state.Result {
					mu.Lock()
					defer mu.Unlock()
					probedAt = append(probedAt, clk.Now().Sub(start))
					if len(probedAt) == len(tt.want) {
						return state.Result{OK: true}
					}
					return state.Result{Err: errors.New("refused")}
				})
			})
			r.Start(context.Background())
			for range len(tt.want) - 1 {
				clk.advanceToNext(t)
			}
			// The last probe's result must be processed before stopping.
			clk.advanceToNext(t)
			r.Stop()
			mu.Lock()
			defer mu.Unlock()
			if len(probedAt) < len(tt.want) || !reflect.DeepEqual(probedAt[:len(tt.want)], tt.want) {
				t.Fatalf("probes at %v, want %v", probedAt, tt.want)
			}
			wantEvs := []ev{{state.RealServerDown, tt.downAt}, {state.RealServerUp, len(tt.want) - 1}}
			if !reflect.DeepEqual(evs, wantEvs) {
				t.Fatalf("events %v, want %v", evs, wantEvs)
			}
		})
	}
}

// TestRunnerThousandsOfChecks runs 2000 real TCP_CHECKs against loopback
// listeners with 32 workers: every checker runs, and the goroutine count
// stays bounded by the worker pool.
func TestRunnerThousandsOfChecks(t *testing.T) {
	const checkers, workers = 2000, 32
	var addrs []netip.AddrPort
	for range 4 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		addrs = append(addrs, netip.MustParseAddrPort(l.Addr().String()))
	}
	var rss []RealServer
	for i := range checkers {
		rss = append(rss, RealServer{Addr: addrs[i%len(addrs)], Weight: 1,
			Checkers: []Spec{{Type: TCP, DelayLoop: time.Hour, Warmup: ptr(time.Second)}}})
	}
	var okCount, failCount atomic.Int64
	base := runtime.NumGoroutine()
	r, err := NewRunner([]VirtualServer{{Name: "vip:80", RealServers: rss}}, Options{Workers: workers,
		OnResult: func(_, _, _ int, res state.Result) {
			if res.OK {
				okCount.Add(1)
			} else {
				failCount.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.Start(context.Background())
	maxG := 0
	deadline := time.Now().Add(5 * time.Second)
	for okCount.Load()+failCount.Load() < checkers && time.Now().Before(deadline) {
		maxG = max(maxG, runtime.NumGoroutine())
		time.Sleep(5 * time.Millisecond)
	}
	r.Stop()
	if n := okCount.Load(); n != checkers || failCount.Load() != 0 {
		t.Fatalf("%d checks passed, %d failed; want %d passed", n, failCount.Load(), checkers)
	}
	// The runner adds its dispatcher and at most `workers` probes.
	if extra := maxG - base; extra > workers+8 {
		t.Fatalf("goroutines grew by %d, want at most %d", extra, workers+8)
	}
	t.Logf("%d checks, at most %d goroutines above the %d before start", checkers, maxG-base, base)
}

// TestRunnerSuspend: a suspended virtual server's checkers do not probe
// (keepalived's ha_suspend while the VIP is elsewhere), and resuming probes
// at once, without waiting for the next delay_loop.
func TestRunnerSuspend(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	probes := 0
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return probes
	}
	vss := []VirtualServer{{Name: "vip:80", RealServers: []RealServer{{
		Addr: netip.MustParseAddrPort("198.18.0.2:80"), Weight: 1,
		Checkers: []Spec{{Type: TCP, DelayLoop: 10 * time.Second, Warmup: ptr(time.Duration(0))}},
	}}}}
	r := fakeRunner(t, vss, Options{Workers: 1, Clock: clk}, func(_, _, _ int) Prober {
		return ProberFunc(func(context.Context) state.Result {
			mu.Lock()
			probes++
			mu.Unlock()
			return state.Result{OK: true}
		})
	})
	r.Start(context.Background())
	defer r.Stop()
	waitCount := func(want int) {
		t.Helper()
		end := time.Now().Add(5 * time.Second)
		for count() < want {
			if time.Now().After(end) {
				t.Fatalf("%d probes, want %d", count(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitCount(1) // due at once
	r.Suspend("vip:80", true)
	start := clk.Now()
	for clk.Now().Sub(start) < 35*time.Second {
		clk.advanceToNext(t)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d probes while suspended for 35 s of delay_loop 10 s, want none after the first", n-1)
	}
	r.Suspend("vip:80", false)
	waitCount(2) // at once, the clock has not moved
	if got := r.Status()[0].RealServers[0].Alive; !got {
		t.Error("real server not alive after resuming")
	}
}
