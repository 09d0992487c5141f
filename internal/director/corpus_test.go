package director

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/vrrp"
)

// resolveAll resolves every real server at once, as if each answered ARP
// on interface 7, whose address of each family is the tunnel source.
type resolveAll struct{}

func (resolveAll) Watch(ctx context.Context, addrs []netip.Addr, update func(netip.Addr, *desired.Neighbour)) {
	for i, a := range addrs {
		src := netip.MustParseAddr("198.18.0.2")
		if a.Is6() {
			src = netip.MustParseAddr("2001:db8::2")
		}
		update(a, &desired.Neighbour{MAC: net.HardwareAddr{2, 0, 0, 0, byte(i >> 8), byte(i)}, Ifindex: 7, Src: src})
	}
}

// recordedVRRP is a VRRP factory that records what it was asked to run;
// report plays the instances' state changes.
type recordedVRRP struct {
	mu      sync.Mutex
	started []desired.VRRP
	delays  []time.Duration // each unit's StartupDelay
	fifo    func(string)    // the last unit's NotifyFIFO
	stopped int
	onState func(string, vrrp.State)
	// fail, when set, makes starting a unit fail (as a socket error would).
	fail func(desired.VRRP) error
}

func (r *recordedVRRP) factory(_ context.Context, u VRRPUnit, _ *slog.Logger) (VRRP, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(u.Plan); err != nil {
			return nil, err
		}
	}
	v := u.Plan
	r.started = append(r.started, v)
	r.delays = append(r.delays, u.StartupDelay)
	r.fifo = u.NotifyFIFO
	r.onState = u.OnState
	var insts fixedVRRP
	for _, in := range v.Instances {
		insts = append(insts, status.VRRPInstance{Name: in.Name, Interface: in.Interface, VRID: in.VRID, State: status.StateMaster})
	}
	return &stoppable{fixedVRRP: insts, stop: func() {
		r.mu.Lock()
		r.stopped++
		r.mu.Unlock()
	}}, nil
}

// report tells the director that the last started instance is now st.
func (r *recordedVRRP) report(instance string, st vrrp.State) {
	r.mu.Lock()
	f := r.onState
	r.mu.Unlock()
	f(instance, st)
}

func (r *recordedVRRP) counts() (started, stopped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.started), r.stopped
}

type stoppable struct {
	fixedVRRP
	stop func()
}

func (s *stoppable) Stop() { s.stop() }

// recordedSync is a ConnSyncFactory that records the settings it got.
type recordedSync struct {
	mu   sync.Mutex
	cfgs []connsync.Config
	// incomplete makes the syncers say their dump has not arrived.
	incomplete atomic.Bool
}

func (r *recordedSync) factory(_ context.Context, cfg connsync.Config, _ connsync.DataPlane) (ConnSync, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfgs = append(r.cfgs, cfg)
	return waitingSync{r}, nil
}

// waitingSync is complete unless its recordedSync says not.
type waitingSync struct{ r *recordedSync }

func (waitingSync) Close()                {}
func (w waitingSync) Complete() bool      { return !w.r.incomplete.Load() }
func (waitingSync) Stats() connsync.Stats { return connsync.Stats{} }

func (r *recordedSync) started() []connsync.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cfgs)
}

// healthy is a prober for every checker that always succeeds.
func healthy(check.Spec, netip.AddrPort) (check.Prober, error) {
	return check.ProberFunc(func(context.Context) state.Result { return state.Result{OK: true} }), nil
}

// fakeDirector is a director on fakes: the data plane, VRRP, connection
// sync, the neighbour table, interface indexes and healthy real servers.
type fakeDirector struct {
	d      *Director
	dp     *dataplane.Fake
	vrrp   *recordedVRRP
	sync   *recordedSync
	filter *recordedFilter
	fwm    *recordedFwmarks
	laddrs *recordedLocalAddrs
	// statics is the host's static addresses and routes.
	statics *recordedStatics
	// hooks records the startup and shutdown scripts run.
	hooks *recordedHooks
	bgp   *recordedBGP
	links *fakeLinks
	stop  func() error
	// clock, set by startFakeWith's with, replaces the system clock; done
	// receives Run's result.
	clock Clock
	done  <-chan error
}

// fakeLinks are links that are up unless set down, and say when one
// changes.
type fakeLinks struct {
	mu      sync.Mutex
	down    map[string]bool
	changed chan struct{}
}

func newFakeLinks() *fakeLinks {
	return &fakeLinks{down: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (l *fakeLinks) Up(name string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.down[name], nil
}

func (l *fakeLinks) Watch(ctx context.Context, changed func()) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.changed:
			changed()
		}
	}
}

// set takes link name up or down and says so.
func (l *fakeLinks) set(name string, up bool) {
	l.mu.Lock()
	l.down[name] = !up
	l.mu.Unlock()
	l.changed <- struct{}{}
}

// recordedFilter is a VIPFilter that records the addresses it drops.
type recordedFilter struct {
	mu      sync.Mutex
	dropped map[netip.Addr]bool
	closed  bool
}

func (r *recordedFilter) Drop(addrs []netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped == nil {
		r.dropped = map[netip.Addr]bool{}
	}
	for _, a := range addrs {
		r.dropped[a] = true
	}
	return nil
}

func (r *recordedFilter) Accept(addrs []netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range addrs {
		delete(r.dropped, a)
	}
	return nil
}

func (r *recordedFilter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func startFake(t *testing.T, conf string, probe func(check.Spec, netip.AddrPort) (check.Prober, error)) (*fakeDirector, error) {
	t.Helper()
	return startFakeWith(t, conf, probe, nil)
}

// startFakeWith is startFake with the fakes changed by with before the
// director starts.
func startFakeWith(t *testing.T, conf string, probe func(check.Spec, netip.AddrPort) (check.Prober, error), with func(*fakeDirector)) (*fakeDirector, error) {
	t.Helper()
	f := &fakeDirector{dp: dataplane.NewFake(), vrrp: &recordedVRRP{}, sync: &recordedSync{}, fwm: &recordedFwmarks{ifindex: 99}, laddrs: &recordedLocalAddrs{held: map[netip.Addr]string{}}, statics: &recordedStatics{}, hooks: &recordedHooks{}, bgp: &recordedBGP{}, links: newFakeLinks()}
	if with != nil {
		with(f)
	}
	ifindex := map[string]int{}
	d, err := New(Options{
		ConfigPath: conf,
		SocketPath: "-",
		Log:        slog.New(slog.DiscardHandler),
		Dataplane:  f.dp,
		InterfaceIndex: func(name string) (int, error) {
			if strings.HasPrefix(name, "nosuch") {
				return 0, fmt.Errorf("no interface %s", name)
			}
			if _, ok := ifindex[name]; !ok {
				ifindex[name] = 10 + len(ifindex)
			}
			return ifindex[name], nil
		},
		Resolver:   resolveAll{},
		VRRP:       f.vrrp.factory,
		ConnSync:   f.sync.factory,
		Fwmarks:    f.fwm,
		LocalAddrs: f.laddrs,
		Statics:    f.statics,
		RunScript:  f.hooks.run,
		BGP:        f.bgp.factory,
		Links:      f.links,
		Clock:      f.clock,
		OpenVIPFilter: func() (VIPFilter, error) {
			f.filter = &recordedFilter{}
			return f.filter, nil
		},
		// Rand 0 starts every checker's first probe at once.
		Checks: check.Options{Probe: probe, Rand: func() float64 { return 0 }},
	})
	if err != nil {
		return nil, err
	}
	f.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	ranTo := make(chan error, 2)
	f.done = ranTo
	go func() { err := <-done; ranTo <- err; ranTo <- err }()
	var once sync.Once
	var runErr error
	f.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-ranTo:
			case <-time.After(10 * time.Second):
				runErr = fmt.Errorf("director does not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = f.stop() })
	return f, nil
}

// waitApplied waits until the data plane's last state satisfies ok.
func (f *fakeDirector) waitApplied(limit time.Duration, ok func(dpstate.State) bool) (dpstate.State, bool) {
	deadline := time.Now().Add(limit)
	var last dpstate.State
	for {
		if all := f.dp.Applied(); len(all) > 0 {
			last = all[len(all)-1]
			if ok(last) {
				return last, true
			}
		}
		if time.Now().After(deadline) {
			return last, false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// missingFrom lists what of the plan (every virtual server and every real
// server at its configured weight, all healthy) st does not hold.
func missingFrom(plan *desired.Plan, st dpstate.State) []string {
	var missing []string
	for _, s := range plan.Services {
		i := slices.IndexFunc(st.Services, func(ds dpstate.Service) bool { return ds.Key() == s.Key })
		if i < 0 {
			missing = append(missing, fmt.Sprintf("virtual server %v", s.Key))
			continue
		}
		ds := st.Services[i]
		if ds.Scheduler != s.Scheduler || ds.PersistenceTimeout != s.PersistenceTimeout {
			missing = append(missing, fmt.Sprintf("virtual server %v as %s persistence %d (got %s %d)", s.Key, s.Scheduler, s.PersistenceTimeout, ds.Scheduler, ds.PersistenceTimeout))
		}
		for _, r := range s.Reals {
			j := slices.IndexFunc(ds.Reals, func(dr dpstate.Real) bool { return dr.Addr == r.Key.Addr })
			if j < 0 || ds.Reals[j].Weight != uint32(max(r.Weight, 0)) || ds.Reals[j].Method != dpMethodOf(r) {
				missing = append(missing, fmt.Sprintf("real server %v of %v weight %d", r.Key, s.Key, r.Weight))
			}
		}
	}
	return missing
}

func dpMethodOf(r desired.Real) dpstate.Method {
	switch desired.MethodName(r.Method) {
	case status.Tunnel:
		return dpstate.TUN
	case status.Masq:
		return dpstate.NAT
	}
	return dpstate.DR
}

// natEgress is 1 when a NAT real server of st is reached through an
// interface: its replies come back there, so the data plane attaches to it
// too (resolveAll puts every real server behind ifindex 7).
func natEgress(st dpstate.State) int {
	for _, s := range st.Services {
		for _, r := range s.Reals {
			if (r.Method == dpstate.NAT || r.Method == dpstate.FNAT) && r.Ifindex == 7 {
				return 1
			}
		}
	}
	return 0
}

// TestCorpusRunsThroughDirector runs every corpus file `govs check` passes
// through the director on a fake data plane with healthy real servers, and
// asserts that everything the plan lists is programmed: every virtual
// server and real server, every interface attached, every VRRP instance
// started and the sync daemon set up. A plan govs check accepts and govs
// run silently drops (in part) fails here.
func TestCorpusRunsThroughDirector(t *testing.T) {
	files, err := corpus.Write(t.TempDir(), filepath.Join("..", "..", "..", "shared"))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, file := range files {
		plan, err := Load(file.Path, "", desired.Options{}, nil)
		if err != nil {
			continue
		}
		t.Run(file.Name, func(t *testing.T) {
			f, err := startFake(t, file.Path, healthy)
			if err != nil {
				t.Fatalf("govs check passes it, the director refuses it: %v", err)
			}
			st, ok := f.waitApplied(10*time.Second, func(st dpstate.State) bool { return len(missingFrom(plan, st)) == 0 })
			if !ok {
				t.Errorf("not programmed: %v", missingFrom(plan, st))
			}
			fwm := 0
			if len(plan.Fwmarks()) > 0 {
				fwm = 1
				waitUntil(t, "the data plane attached to the fwmark interface", func() bool { return f.dp.FwmarkInterface() != 0 })
			}
			if len(plan.Services) > 0 && len(f.dp.Attached()) != len(plan.Interfaces)+natEgress(st)+fwm {
				t.Errorf("attached to %d interfaces, the plan lists %v (NAT egress: %d, fwmark: %d)", len(f.dp.Attached()), plan.Interfaces, natEgress(st), fwm)
			}
			if n := len(plan.VRRP.Instances); n > 0 {
				f.vrrp.mu.Lock()
				var ran []string
				for _, u := range f.vrrp.started {
					for _, in := range u.Instances {
						ran = append(ran, in.Name)
					}
				}
				f.vrrp.mu.Unlock()
				if len(ran) != n {
					t.Errorf("VRRP instances started: %v; the plan has %d", ran, n)
				}
			}
			if plan.Sync != nil && len(plan.Services) > 0 {
				if cfgs := f.sync.started(); len(cfgs) != 1 || cfgs[0].Interface != plan.Sync.Interface {
					t.Errorf("lvs_sync_daemon on %s: sync daemons started %+v", plan.Sync.Interface, cfgs)
				}
			}
			if err := f.stop(); err != nil {
				t.Errorf("run: %v", err)
			}
		})
		ran++
	}
	if ran < 100 {
		t.Errorf("only %d corpus files pass govs check; the corpus should exercise the director", ran)
	}
	t.Logf("%d corpus files ran through the director", ran)
}
