package check

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// RunScript runs a notify script (default: run it as keepalived does).
	// Tests use it to observe calls.
	RunScript func(ctx context.Context, s Script) (int, error)
}

// job is one checker in the schedule.
type job struct {
	vs, rs, chk int
	at          time.Time
	prober      Prober
	timeout     time.Duration
	index       int // in the heap
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
	return j
}

type vsEntry struct {
	cfg   VirtualServer
	state *state.VirtualServer
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
	mu    sync.Mutex // guards vss states and sched, for Status
	vss   []*vsEntry
	sched schedule
	jobs  []*job

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
	r := &Runner{opt: opt, log: opt.Log}
	for vi, v := range vss {
		sc := state.VirtualServerConfig{Name: v.Name, Quorum: v.Quorum, Hysteresis: v.Hysteresis, Omega: v.Omega}
		if v.Sorry != nil {
			sc.Sorry = &state.SorryServerConfig{Name: v.Sorry.Addr.String(), Weight: v.Sorry.Weight, Inhibit: v.Sorry.Inhibit}
		}
		for ri, rs := range v.RealServers {
			rc := state.RealServerConfig{Name: rs.Addr.String(), Weight: rs.Weight, Inhibit: rs.Inhibit}
			for ci, spec := range rs.Checkers {
				res, err := spec.resolve(rs.Addr, v.DelayLoop)
				if err != nil {
					return nil, fmt.Errorf("virtual server %s real server %s checker %d: %w", v.Name, rs.Addr, ci+1, err)
				}
				p, err := mk(res)
				if err != nil {
					return nil, fmt.Errorf("virtual server %s real server %s checker %d: %w", v.Name, rs.Addr, ci+1, err)
				}
				rc.Checkers = append(rc.Checkers, res.checkerConfig())
				r.jobs = append(r.jobs, &job{vs: vi, rs: ri, chk: ci, prober: p, timeout: res.timeout()})
			}
			sc.RealServers = append(sc.RealServers, rc)
		}
		st, err := state.NewVirtualServer(sc, opt.Log.With("component", "check"))
		if err != nil {
			return nil, err
		}
		r.vss = append(r.vss, &vsEntry{cfg: v, state: st})
	}
	return r, nil
}

// Start runs the checkers until ctx ends or Stop is called.
func (r *Runner) Start(ctx context.Context) {
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
	work := make(chan *job, r.opt.Workers)
	results := make(chan result, r.opt.Workers)
	var workers sync.WaitGroup
	for range r.opt.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range work {
				pctx, cancel := context.WithTimeout(ctx, j.timeout)
				res := j.prober.Probe(pctx)
				cancel()
				results <- result{j: j, res: res}
			}
		}()
	}

	r.mu.Lock()
	now := r.opt.Clock.Now()
	var events []state.Event
	byVS := make(map[int][]state.Probe)
	for vi, v := range r.vss {
		ev, probes := v.state.Start(now, r.opt.Rand)
		events = append(events, ev...)
		byVS[vi] = probes
	}
	for _, j := range r.jobs {
		for _, p := range byVS[j.vs] {
			if p.RealServer == j.rs && p.Checker == j.chk {
				j.at = p.At
			}
		}
		heap.Push(&r.sched, j)
	}
	r.mu.Unlock()
	r.emit(ctx, events)

	inflight := 0
	for {
		now := r.opt.Clock.Now()
		r.mu.Lock()
		for inflight < r.opt.Workers && len(r.sched) > 0 && !r.sched[0].at.After(now) {
			work <- heap.Pop(&r.sched).(*job)
			inflight++
		}
		var wake <-chan time.Time
		if inflight < r.opt.Workers && len(r.sched) > 0 {
			wake = r.opt.Clock.After(r.sched[0].at.Sub(now))
		}
		r.mu.Unlock()

		select {
		case res := <-results:
			inflight--
			r.complete(ctx, res)
		case <-wake:
		case <-ctx.Done():
			close(work)
			for inflight > 0 {
				<-results
				inflight--
			}
			workers.Wait()
			r.shutdown()
			return
		}
	}
}

func (r *Runner) complete(ctx context.Context, res result) {
	j := res.j
	r.mu.Lock()
	next, events, err := r.vss[j.vs].state.Report(r.opt.Clock.Now(), j.rs, j.chk, res.res)
	if err != nil {
		r.mu.Unlock()
		r.log.Error("report check result", "err", err)
		return
	}
	j.at = next
	heap.Push(&r.sched, j)
	r.mu.Unlock()
	r.emit(ctx, events)
}

func (r *Runner) shutdown() {
	r.mu.Lock()
	var events []state.Event
	for _, v := range r.vss {
		events = append(events, v.state.Stop()...)
	}
	r.mu.Unlock()
	// Omega notifiers run while stopping, so they get a fresh context.
	r.emit(context.Background(), events)
}

func (r *Runner) emit(ctx context.Context, events []state.Event) {
	for _, e := range events {
		if r.opt.OnEvent != nil {
			r.opt.OnEvent(e)
		}
		if !e.Notify {
			continue
		}
		if s := r.script(e); s != nil {
			r.notify(ctx, e, *s)
		}
	}
}

// script returns the notify script an event asks for, if configured.
func (r *Runner) script(e state.Event) *Script {
	var v *vsEntry
	for _, cand := range r.vss {
		if cand.cfg.Name == e.VirtualServer {
			v = cand
			break
		}
	}
	if v == nil {
		return nil
	}
	switch e.Kind {
	case state.QuorumUp:
		return v.cfg.QuorumUp
	case state.QuorumDown:
		return v.cfg.QuorumDown
	case state.RealServerUp, state.RealServerDown:
		if e.RealServer < 0 || e.RealServer >= len(v.cfg.RealServers) {
			return nil
		}
		rs := v.cfg.RealServers[e.RealServer]
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
