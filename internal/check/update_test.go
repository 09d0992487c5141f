package check

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// updateHarness runs a Runner on a fake clock whose probes succeed or fail
// by target, and records the events.
type updateHarness struct {
	t   *testing.T
	clk *fakeClock
	r   *Runner

	mu      sync.Mutex
	down    map[netip.AddrPort]bool // targets whose probes fail
	events  []state.Event
	results int
	changed chan struct{}
	scripts []string
}

func newUpdateHarness(t *testing.T, vss []VirtualServer, workers int, mk func(resolved) Prober) *updateHarness {
	t.Helper()
	h := &updateHarness{t: t, clk: newFakeClock(), down: map[netip.AddrPort]bool{}, changed: make(chan struct{}, 1)}
	if mk == nil {
		mk = h.prober
	}
	r, err := newRunner(vss, Options{Workers: workers, Clock: h.clk, Rand: func() float64 { return 0.5 },
		OnEvent: func(e state.Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
			h.poke()
		},
		OnResult: func(_, _, _ int, _ state.Result) {
			h.mu.Lock()
			h.results++
			h.mu.Unlock()
			h.poke()
		},
		RunScript: func(_ context.Context, s Script) (int, error) {
			h.mu.Lock()
			h.scripts = append(h.scripts, s.Command)
			h.mu.Unlock()
			h.poke()
			return 0, nil
		},
	}, func(res resolved) (Prober, error) { return mk(res), nil })
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	t.Cleanup(r.Stop)
	return h
}

func (h *updateHarness) poke() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *updateHarness) prober(res resolved) Prober {
	return ProberFunc(func(context.Context) state.Result {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down[res.target] {
			return state.Result{Err: errors.New("connection refused")}
		}
		return state.Result{OK: true}
	})
}

// wait waits until there are at least events events not yet taken and
// scripts notify scripts started.
func (h *updateHarness) wait(events, scripts int) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		ne, ns := len(h.events), len(h.scripts)
		h.mu.Unlock()
		if ne >= events && ns >= scripts {
			return
		}
		select {
		case <-h.changed:
		case <-deadline:
			h.t.Fatalf("%d events and %d scripts, want %d and %d", ne, ns, events, scripts)
		}
	}
}

// take returns the events so far as "kind:rs" ("!" when notifying) and
// forgets them, and the Dests of the last one.
func (h *updateHarness) take() ([]string, []state.Dest) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.take0()
}

// take0 is take with h.mu held; it skips the shutdown events.
func (h *updateHarness) take0() ([]string, []state.Dest) {
	var out []string
	var dests []state.Dest
	for _, e := range h.events {
		if e.Shutdown {
			continue
		}
		s := e.VirtualServer + " " + e.Kind.String() + ":" + e.RealServerName
		if e.Notify {
			s += "!"
		}
		out = append(out, s)
		dests = e.Dests
	}
	h.events = nil
	return out, dests
}

// settle waits until no probe is in flight: every job is back in the
// schedule (a passing probe that changes nothing has no event to wait for).
func (h *updateHarness) settle() {
	h.t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		h.r.mu.Lock()
		n, queued := 0, len(h.r.sched)
		for _, v := range h.r.vss {
			for _, js := range v.jobs {
				n += len(js)
			}
		}
		h.r.mu.Unlock()
		if n == queued {
			return
		}
	}
	h.t.Fatal("probes still in flight")
}

// due returns when each checker of virtual server vi is next probed, by
// real server.
func (h *updateHarness) due(vi int) map[netip.AddrPort][]time.Time {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	out := map[netip.AddrPort][]time.Time{}
	v := h.r.vss[vi]
	for ri, js := range v.jobs {
		for _, j := range js {
			out[v.cfg.RealServers[ri].Addr] = append(out[v.cfg.RealServers[ri].Addr], j.at)
		}
	}
	return out
}

// advance moves the clock to at once the Runner waits for a time at or
// before it, and fires every wait due by then.
func (h *updateHarness) advance(at time.Time) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c := h.clk
		c.mu.Lock()
		var due, rest []fakeWaiter
		for _, w := range c.waiters {
			if w.at.After(at) {
				rest = append(rest, w)
			} else {
				due = append(due, w)
			}
		}
		if len(due) > 0 {
			c.now, c.waiters = at, rest
			for _, w := range due {
				w.ch <- at
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		select {
		case <-c.added:
		case <-deadline:
			h.t.Fatalf("the runner never waited for %v", at)
		}
	}
}

var (
	rsA = netip.MustParseAddrPort("198.18.0.2:80")
	rsB = netip.MustParseAddrPort("198.18.0.3:80")
	rsC = netip.MustParseAddrPort("198.18.0.4:80")
)

// tcpSpec's first probe is 2 s after start (warmup 4 s, Rand 0.5).
func tcpSpec() Spec {
	return Spec{Type: TCP, DelayLoop: 10 * time.Second, Retry: ptr(0), Warmup: ptr(4 * time.Second)}
}

func realServer(addr netip.AddrPort, weight int, specs ...Spec) RealServer {
	return RealServer{Addr: addr, Weight: weight, NotifyDown: &Script{Command: "down " + addr.String()},
		NotifyUp: &Script{Command: "up " + addr.String()}, Checkers: specs}
}

// baseConfig has server A (its probes fail) and B (they pass) in vip:80.
func baseConfig() []VirtualServer {
	return []VirtualServer{{Name: "vip:80", RealServers: []RealServer{realServer(rsA, 1, tcpSpec()), realServer(rsB, 1, tcpSpec())}}}
}

func TestRunnerUpdate(t *testing.T) {
	alpha := tcpSpec()
	alpha.Alpha = true
	tests := []struct {
		name string
		vss  []VirtualServer
		// events are those Update reports, dests the pool after it.
		events []string
		dests  []state.Dest
		// kept says which real servers of vip:80 keep their probe time.
		kept    []bool
		scripts []string
		// after are the events of the probes due right after the update.
		after []string
	}{{
		name: "unchanged: A stays down, B up, nothing said, nothing probed early",
		vss:  baseConfig(),
		kept: []bool{true, true},
	}, {
		name: "weight of the up server",
		vss: []VirtualServer{{Name: "vip:80", RealServers: []RealServer{
			realServer(rsA, 1, tcpSpec()), realServer(rsB, 5, tcpSpec())}}},
		events: []string{"vip:80 weight:198.18.0.3:80"},
		dests:  []state.Dest{{Name: "198.18.0.3:80", Weight: 5}},
		kept:   []bool{true, true},
	}, {
		name: "changed checker restarts B, alpha holds it down until its probe",
		vss: []VirtualServer{{Name: "vip:80", RealServers: []RealServer{
			realServer(rsA, 1, tcpSpec()), realServer(rsB, 1, alpha)}}},
		events:  []string{"vip:80 down:198.18.0.3:80", "vip:80 quorum-down:!"},
		kept:    []bool{true, false},
		after:   []string{"vip:80 up:198.18.0.3:80!", "vip:80 quorum-up:!"},
		scripts: []string{"up 198.18.0.3:80"},
	}, {
		name: "A removed quietly, C added up",
		vss: []VirtualServer{{Name: "vip:80", RealServers: []RealServer{
			realServer(rsB, 1, tcpSpec()), realServer(rsC, 2, tcpSpec())}}},
		events: []string{"vip:80 up:198.18.0.4:80"},
		dests:  []state.Dest{{Name: "198.18.0.3:80", Weight: 1}, {Name: "198.18.0.4:80", Weight: 2}},
		kept:   []bool{true, false},
	}, {
		name: "B removed runs its notify_down",
		vss: []VirtualServer{{Name: "vip:80", RealServers: []RealServer{
			realServer(rsA, 1, tcpSpec())}}},
		events:  []string{"vip:80 down:198.18.0.3:80!", "vip:80 quorum-down:!"},
		kept:    []bool{true},
		scripts: []string{"down 198.18.0.3:80"},
	}, {
		name: "new virtual server starts, old one kept",
		vss: append(baseConfig(), VirtualServer{Name: "vip:443", RealServers: []RealServer{
			realServer(rsC, 1, tcpSpec())}}),
		events: []string{"vip:443 up:198.18.0.4:80"},
		dests:  []state.Dest{{Name: "198.18.0.4:80", Weight: 1}},
		kept:   []bool{true, true},
	}, {
		name: "virtual server removed: B down with notify, last event empty",
		vss: []VirtualServer{{Name: "vip:443", RealServers: []RealServer{
			realServer(rsC, 1, tcpSpec())}}},
		events:  []string{"vip:80 down:198.18.0.3:80!", "vip:80 quorum-down:!", "vip:443 up:198.18.0.4:80"},
		dests:   []state.Dest{{Name: "198.18.0.4:80", Weight: 1}},
		scripts: []string{"down 198.18.0.3:80"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newUpdateHarness(t, baseConfig(), 4, nil)
			h.down[rsA] = true
			start := h.clk.Now()
			h.r.Start(context.Background())
			h.advance(start.Add(2 * time.Second))
			h.wait(3, 1)
			h.settle()
			if got, _ := h.take(); !reflect.DeepEqual(got, []string{"vip:80 up:198.18.0.2:80", "vip:80 up:198.18.0.3:80",
				"vip:80 down:198.18.0.2:80!"}) {
				t.Fatalf("start events %v", got)
			}
			h.mu.Lock()
			h.scripts = nil
			h.mu.Unlock()
			before := h.due(0)
			if err := h.r.Update(tt.vss); err != nil {
				t.Fatal(err)
			}
			got, dests := h.take()
			if !reflect.DeepEqual(got, tt.events) {
				t.Errorf("events %v, want %v", got, tt.events)
			}
			if len(got) > 0 && !reflect.DeepEqual(dests, tt.dests) {
				t.Errorf("dests %v, want %v", dests, tt.dests)
			}
			if tt.kept != nil {
				after := h.due(0)
				for i, k := range tt.kept {
					addr := tt.vss[0].RealServers[i].Addr
					fresh := []time.Time{start.Add(4 * time.Second)}
					switch {
					case k && !reflect.DeepEqual(after[addr], before[addr]):
						t.Errorf("%s: next probe %v, was %v", addr, after[addr], before[addr])
					case !k && !reflect.DeepEqual(after[addr], fresh):
						t.Errorf("%s: next probe %v, want %v (fresh, half the warmup after the update)", addr, after[addr], fresh)
					}
				}
			}
			if tt.after != nil {
				h.advance(start.Add(4 * time.Second))
				h.wait(len(tt.after), 0)
				if got, _ := h.take(); !reflect.DeepEqual(got, tt.after) {
					t.Errorf("events after the update %v, want %v", got, tt.after)
				}
			}
			h.r.Stop()
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.results != 2+len(tt.after)/2 {
				t.Errorf("%d probes ran, want %d: something was probed early", h.results, 2+len(tt.after)/2)
			}
			if !reflect.DeepEqual(h.scripts, tt.scripts) {
				t.Errorf("scripts %v, want %v", h.scripts, tt.scripts)
			}
		})
	}
}

func TestRunnerUpdateRejectsAndChangesNothing(t *testing.T) {
	badWeight := baseConfig()
	badWeight[0].RealServers[1].Weight = -1
	badSpec := baseConfig()
	badSpec[0].RealServers[1].Checkers = []Spec{{Type: HTTP}}
	tests := []struct {
		name string
		vss  []VirtualServer
	}{
		{"bad weight", badWeight},
		{"HTTP_GET without url", badSpec},
		{"virtual server twice", append(baseConfig(), baseConfig()...)},
		{"negative quorum", []VirtualServer{{Name: "vip:80", Quorum: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newUpdateHarness(t, baseConfig(), 4, nil)
			h.down[rsA] = true
			start := h.clk.Now()
			h.r.Start(context.Background())
			h.advance(start.Add(2 * time.Second))
			h.wait(3, 1)
			h.settle()
			h.take()
			status, due := h.r.Status(), h.due(0)
			if err := h.r.Update(tt.vss); err == nil {
				t.Fatal("no error")
			}
			if got, _ := h.take(); len(got) != 0 {
				t.Errorf("events %v from a rejected update", got)
			}
			if !reflect.DeepEqual(h.r.Status(), status) || !reflect.DeepEqual(h.due(0), due) {
				t.Errorf("a rejected update changed the state")
			}
		})
	}
}

// TestRunnerUpdateDropsInflightProbe: the probe of a checker the update
// replaced is running; its failure must not reach the new checker. With
// one worker the new checker's first probe runs only after the old
// probe's result has been handled, so the order is certain.
func TestRunnerUpdateDropsInflightProbe(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	blocking := func(res resolved) Prober {
		if res.ConnectTimeout == time.Second {
			// The replaced checker: stuck until released, then fails.
			return ProberFunc(func(context.Context) state.Result {
				close(started)
				<-release
				return state.Result{Err: errors.New("timeout")}
			})
		}
		return ProberFunc(func(context.Context) state.Result { return state.Result{OK: true} })
	}
	old := tcpSpec()
	old.ConnectTimeout = time.Second
	vss := []VirtualServer{{Name: "vip:80", RealServers: []RealServer{realServer(rsB, 1, old)}}}
	h := newUpdateHarness(t, vss, 1, blocking)
	start := h.clk.Now()
	h.r.Start(context.Background())
	h.wait(1, 0) // initial state
	h.take()
	h.advance(start.Add(2 * time.Second))
	<-started
	h.r.mu.Lock()
	oldJob := h.r.vss[0].jobs[0][0]
	h.r.mu.Unlock()

	fresh := tcpSpec()
	fresh.ConnectTimeout = 2 * time.Second
	if err := h.r.Update([]VirtualServer{{Name: "vip:80", RealServers: []RealServer{realServer(rsB, 1, fresh)}}}); err != nil {
		t.Fatal(err)
	}
	h.r.mu.Lock()
	retired, index := oldJob.retired, oldJob.index
	h.r.mu.Unlock()
	if !retired || index != -1 {
		t.Fatalf("replaced job: retired %v, heap index %d", retired, index)
	}
	close(release)
	h.advance(start.Add(4 * time.Second))
	// The new checker's probe passes: one result, no event (B was up).
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		n := h.results
		h.mu.Unlock()
		if n >= 1 {
			break
		}
		select {
		case <-h.changed:
		case <-deadline:
			t.Fatal("the new checker never probed")
		}
	}
	h.r.Stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.results != 1 {
		t.Errorf("%d results reported, want only the new checker's", h.results)
	}
	if got, _ := h.take0(); len(got) != 0 {
		t.Errorf("events %v: the replaced checker's failure got through", got)
	}
}

func TestRunnerUpdateBeforeStartAndAfterStop(t *testing.T) {
	h := newUpdateHarness(t, baseConfig(), 4, nil)
	next := []VirtualServer{{Name: "vip:443", RealServers: []RealServer{realServer(rsC, 1, tcpSpec())}}}
	if err := h.r.Update(next); err != nil {
		t.Fatal(err)
	}
	h.r.Start(context.Background())
	h.wait(1, 0)
	if got, _ := h.take(); !reflect.DeepEqual(got, []string{"vip:443 up:198.18.0.4:80"}) {
		t.Errorf("start after update: %v", got)
	}
	h.r.Stop()
	if err := h.r.Update(baseConfig()); err == nil {
		t.Error("update after stop: no error")
	}
}
