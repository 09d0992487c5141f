package check

import (
	"container/heap"
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// Clock is the time source of the Runner; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// After is like time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultWorkers bounds concurrent probes when Options.Workers is 0.
const DefaultWorkers = 256

// tick is the scheduling grid: how late a probe may start.
const tick = 10 * time.Millisecond

// notifyTimeout bounds a notify script, so a hung script cannot pile up.
const notifyTimeout = 60 * time.Second

// Options tune a Runner. The zero value is usable.
type Options struct {
	// Workers is the number of probes in flight at most.
	Workers int
	Clock   Clock
	// Rand returns numbers in [0, 1); it spreads the first probes.
	Rand func() float64
	Log  *slog.Logger
	// OnEvent receives every event, from the Runner's goroutine, in order.
	// It must not block for long: probes are not dispatched meanwhile.
	OnEvent func(state.Event)
	// OnResult receives every probe result (for metrics), from the
	// Runner's goroutine.
	OnResult func(vs, rs, chk int, res state.Result)
	// RunScript runs a notify script (default: run it as keepalived does).
	// Tests use it to observe calls.
	RunScript func(ctx context.Context, s Script) (int, error)
	// Probe replaces the real probers (which dial real servers) with
	// others for the checker spec aimed at target; the schedule, retries
	// and state machines stay the real ones. Tests of the daemon use it.
	Probe func(spec Spec, target netip.AddrPort) (Prober, error)
}

// job is one checker in the schedule.
type job struct {
	vs, rs, chk int
	at          time.Time
	prober      Prober
	timeout     time.Duration
	// every is the checker's delay_loop: how long a suspended checker
	// waits before it looks again.
	every time.Duration
	index int // in the heap, -1 while the probe runs
	// retired is set when an update removed or replaced the checker: a
	// probe still in flight then reports into nothing.
	retired bool
}

type schedule []*job

func (s schedule) Len() int           { return len(s) }
func (s schedule) Less(i, j int) bool { return s[i].at.Before(s[j].at) }
func (s schedule) Swap(i, j int) {
	s[i], s[j] = s[j], s[i]
	s[i].index, s[j].index = i, j
}
func (s *schedule) Push(x any) {
	j := x.(*job)
	j.index = len(*s)
	*s = append(*s, j)
}
func (s *schedule) Pop() any {
	old := *s
	j := old[len(old)-1]
	*s = old[:len(old)-1]
	j.index = -1
	return j
}

type vsEntry struct {
	cfg   VirtualServer
	state *state.VirtualServer
	// specs and jobs are per real server and checker; specs decide on
	// update whether a checker is unchanged.
	specs [][]resolved
	jobs  [][]*job
}

type result struct {
	j   *job
	res state.Result
}

// Runner runs the checkers of a set of virtual servers: each probe is due
// when its state machine says, at most Workers run at once, and events go to
// OnEvent and to the notify scripts.
type Runner struct {
	opt   Options
	log   *slog.Logger
	mk    func(resolved) (Prober, error)
	mu    sync.Mutex // guards vss states and sched, for Status
	vss   []*vsEntry
	sched schedule

	// suspended names the virtual servers whose checkers are on hold
	// (ha_suspend while this director does not hold their address);
	// guarded by mu. poke wakes the dispatcher when that changes.
	suspended map[string]bool
	poke      chan struct{}

	// updateMu serialises Update with itself and with Start.
	updateMu sync.Mutex
	updates  chan *update

	scripts sync.WaitGroup
	done    chan struct{}
	cancel  context.CancelFunc
}

// NewRunner validates the virtual servers and builds their probers.
func NewRunner(vss []VirtualServer, opt Options) (*Runner, error) {
	return newRunner(vss, opt, newProber)
}

func newRunner(vss []VirtualServer, opt Options, mk func(resolved) (Prober, error)) (*Runner, error) {
	if opt.Workers <= 0 {
		opt.Workers = DefaultWorkers
	}
	if opt.Clock == nil {
		opt.Clock = realClock{}
	}
	if opt.Rand == nil {
		opt.Rand = rand.Float64
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.RunScript == nil {
		opt.RunScript = runScript
	}
	if opt.Probe != nil {
		mk = func(r resolved) (Prober, error) { return opt.Probe(r.Spec, r.target) }
	}
	r := &Runner{opt: opt, log: opt.Log, mk: mk, updates: make(chan *update), suspended: map[string]bool{}, poke: make(chan struct{}, 1)}
	plan, err := r.plan(vss)
	if err != nil {
		return nil, err
	}
	for _, p := range plan {
		r.vss = append(r.vss, p.fresh)
	}
	return r, nil
}

// Start runs the checkers until ctx ends or Stop is called.
func (r *Runner) Start(ctx context.Context) {
	r.updateMu.Lock()
	defer r.updateMu.Unlock()
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
}

// Stop ends the checks, reports the shutdown events (running omega
// notifiers) and waits for the scripts it started.
func (r *Runner) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.scripts.Wait()
}

// Suspend puts the checkers of the named virtual server on hold, or
// resumes them at once, as keepalived's ha_suspend does while the director
// does not hold the virtual server's address. The real servers keep the
// state they had; results of probes in flight when it is suspended are
// dropped.
func (r *Runner) Suspend(name string, suspended bool) {
	r.mu.Lock()
	if r.suspended[name] == suspended {
		r.mu.Unlock()
		return
	}
	if suspended {
		r.suspended[name] = true
	} else {
		delete(r.suspended, name)
		now := r.opt.Clock.Now()
		for _, j := range r.sched {
			if r.vss[j.vs].cfg.Name == name && j.at.After(now) {
				j.at = now
			}
		}
		heap.Init(&r.sched)
	}
	r.mu.Unlock()
	r.log.Info("health checks "+map[bool]string{true: "suspended", false: "resumed"}[suspended], "vs", name)
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// VirtualServerStatus is one virtual server's health for status displays.
type VirtualServerStatus struct {
	Name        string
	QuorumUp    bool
	SorryActive bool
	RealServers []state.RealServerStatus
	Dests       []state.Dest
}

// Status returns a snapshot of every virtual server.
func (r *Runner) Status() []VirtualServerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]VirtualServerStatus, 0, len(r.vss))
	for _, v := range r.vss {
		out = append(out, VirtualServerStatus{Name: v.cfg.Name, QuorumUp: v.state.QuorumUp(),
			SorryActive: v.state.SorryServerActive(), RealServers: v.state.Status(), Dests: v.state.Dests()})
	}
	return out
}

func (r *Runner) run(ctx context.Context) {
	results := make(chan result, r.opt.Workers)
	// A goroutine per probe, at most Workers at a time: cheaper than a
	// parked pool (no handoff wake-ups) and just as bounded.
	var probes sync.WaitGroup
	launch := func(j *job) {
		probes.Add(1)
		go func() {
			defer probes.Done()
			pctx, cancel := context.WithTimeout(ctx, j.timeout)
			start := r.opt.Clock.Now()
			res := j.prober.Probe(pctx)
			res.Latency = r.opt.Clock.Now().Sub(start)
			cancel()
			results <- result{j: j, res: res}
		}()
	}

	r.mu.Lock()
	now := r.opt.Clock.Now()
	events := make([][]state.Event, len(r.vss))
	for vi, v := range r.vss {
		events[vi] = r.startLocked(now, vi, v)
	}
	r.mu.Unlock()
	for vi, ev := range events {
		r.emit(ctx, r.vss[vi].cfg, ev)
	}

	inflight := 0
	// One timer stays armed for the earliest due probe; a new one is made
	// only when an earlier probe appears, not on every completed check.
	var wake <-chan time.Time
	var wakeAt time.Time
	for {
		now := r.opt.Clock.Now()
		r.mu.Lock()
		for inflight < r.opt.Workers && len(r.sched) > 0 && !r.sched[0].at.After(now) {
			j := heap.Pop(&r.sched).(*job)
			if r.suspended[r.vss[j.vs].cfg.Name] {
				j.at = now.Add(j.every)
				heap.Push(&r.sched, j)
				continue
			}
			launch(j)
			inflight++
		}
		if inflight < r.opt.Workers && len(r.sched) > 0 {
			// Wake-ups are rounded up to a grid, so probes due close together
			// start together: a probe is at most one tick late, and the
			// dispatcher does not wake once per probe.
			head := r.sched[0].at.Truncate(tick)
			if head.Before(r.sched[0].at) {
				head = head.Add(tick)
			}
			if wake == nil || head.Before(wakeAt) {
				wake, wakeAt = r.opt.Clock.After(head.Sub(now)), head
			}
		}
		r.mu.Unlock()

		select {
		case res := <-results:
			inflight--
			r.complete(ctx, res)
		case <-wake:
			wake = nil
		case u := <-r.updates:
			r.apply(ctx, u)
			close(u.done)
		case <-r.poke:
		case <-ctx.Done():
			for inflight > 0 {
				<-results
				inflight--
			}
			probes.Wait()
			r.shutdown()
			return
		}
	}
}

func (r *Runner) complete(ctx context.Context, res result) {
	j := res.j
	if j.retired {
		return
	}
	if r.opt.OnResult != nil {
		r.opt.OnResult(j.vs, j.rs, j.chk, res.res)
	}
	r.mu.Lock()
	if r.suspended[r.vss[j.vs].cfg.Name] {
		// Suspended while it ran: the result no longer counts.
		j.at = r.opt.Clock.Now().Add(j.every)
		heap.Push(&r.sched, j)
		r.mu.Unlock()
		return
	}
	next, events, err := r.vss[j.vs].state.Report(r.opt.Clock.Now(), j.rs, j.chk, res.res)
	if err != nil {
		r.mu.Unlock()
		r.log.Error("report check result", "err", err)
		return
	}
	j.at = next
	heap.Push(&r.sched, j)
	r.mu.Unlock()
	r.emit(ctx, r.vss[j.vs].cfg, events)
}

func (r *Runner) shutdown() {
	r.mu.Lock()
	events := make([][]state.Event, len(r.vss))
	for vi, v := range r.vss {
		events[vi] = v.state.Stop()
	}
	r.mu.Unlock()
	// Omega notifiers run while stopping, so they get a fresh context.
	for vi, ev := range events {
		r.emit(context.Background(), r.vss[vi].cfg, ev)
	}
}

// emit hands the events of virtual server v to OnEvent and starts the
// notify scripts they ask for.
func (r *Runner) emit(ctx context.Context, v VirtualServer, events []state.Event) {
	for _, e := range events {
		if r.opt.OnEvent != nil {
			r.opt.OnEvent(e)
		}
		if !e.Notify {
			continue
		}
		if s := r.script(v, e); s != nil {
			r.notify(ctx, e, *s)
		}
	}
}

// script returns the notify script an event of v asks for, if configured.
func (r *Runner) script(v VirtualServer, e state.Event) *Script {
	switch e.Kind {
	case state.QuorumUp:
		return v.QuorumUp
	case state.QuorumDown:
		return v.QuorumDown
	case state.RealServerUp, state.RealServerDown:
		if e.RealServer < 0 || e.RealServer >= len(v.RealServers) {
			return nil
		}
		rs := v.RealServers[e.RealServer]
		if e.Kind == state.RealServerUp {
			return rs.NotifyUp
		}
		return rs.NotifyDown
	}
	return nil
}

// notify runs a script in the background; scripts of one event run in the
// order events happen only as far as their start goes, like keepalived's.
func (r *Runner) notify(ctx context.Context, e state.Event, s Script) {
	r.scripts.Add(1)
	go func() {
		defer r.scripts.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
		defer cancel()
		code, err := r.opt.RunScript(sctx, s)
		if err != nil || code != 0 {
			r.log.Warn("notify script failed", "script", s.Command, "event", e.Kind.String(),
				"rs", e.RealServerName, "vs", e.VirtualServer, "exit", code, "err", err)
		}
	}()
}
