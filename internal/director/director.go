// Package director is the govs daemon: it reads a keepalived.conf, runs the
// VRRP instances and health checkers it declares, programs the XDP data
// plane from their results and serves its state on the control socket and as
// Prometheus metrics. What runs is the plan internal/desired computes from
// the configuration; the director only applies it through its ports (the
// data plane, VRRP, the health checker), each an interface with a fake.
package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/announce"
	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/fwmark"
	"github.com/govs/govs/internal/hostmem"
	"github.com/govs/govs/internal/metrics"
	"github.com/govs/govs/internal/notifyfifo"
	"github.com/govs/govs/internal/runas"
	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// Options configure a Director.
type Options struct {
	ConfigPath string
	ConfigID   string
	Log        *slog.Logger
	// SocketPath is the control socket ("" = control.DefaultSocket; "-" = none).
	SocketPath string
	// MetricsAddr serves Prometheus metrics when set (e.g. "127.0.0.1:9500").
	MetricsAddr string
	AttachMode  dataplane.AttachMode
	// NoDataplane runs VRRP and checks only (for hosts without XDP and for tests).
	NoDataplane bool
	// Dataplane is the data plane to program; nil opens the XDP one
	// (unless NoDataplane).
	Dataplane Dataplane
	// PinDir pins the XDP data plane there (a bpf filesystem directory),
	// so it forwards on when govs dies and a restart adopts it with every
	// connection; "" keeps it in the process.
	PinDir string
	// KeepDataplane leaves a pinned data plane forwarding when the
	// director stops cleanly too (for restarts and upgrades).
	KeepDataplane bool
	// InterfaceIndex resolves an interface name; nil asks the kernel.
	InterfaceIndex func(name string) (int, error)
	// MemTotal is the host's memory in bytes, for refusing table sizes
	// that do not fit; nil reads /proc/meminfo.
	MemTotal func() (uint64, error)
	// Resolver finds real servers' MACs; nil uses the kernel's neighbour table.
	Resolver Resolver
	// VRRP starts the VRRP instances of a configuration; nil uses the default.
	VRRP VRRPFactory
	// Checks tunes the health checkers (clock, probers, workers); the
	// director sets its Log and OnEvent.
	Checks check.Options
	// ConnSync starts lvs_sync_daemon; nil uses multicast sockets.
	ConnSync ConnSyncFactory
	// Fwmarks routes marked packets to the balancer for fwmark services;
	// nil uses the kernel (internal/fwmark).
	Fwmarks Fwmarks
	// LocalAddrs holds FullNAT local addresses; nil uses the kernel.
	LocalAddrs LocalAddrs
	// Statics holds static_ipaddress and static_routes; nil uses the kernel.
	Statics Statics
	// RunScript runs startup_script and shutdown_script and waits for
	// them; nil runs them with the shell (vrrpnet.RunScript).
	RunScript func(ctx context.Context, command string, as vrrp.RunAs, timeout time.Duration) error
	// BGP starts the govs_bgp speaker; nil uses GoBGP (internal/bgp).
	BGP BGPFactory
	// Links says whether the data plane's interfaces are up; nil asks the
	// kernel.
	Links Links
	// OpenVIPFilter opens the no_accept filter; nil uses nftables.
	OpenVIPFilter func() (VIPFilter, error)
	// Clock is the time source; nil is the system clock.
	Clock Clock
	// Notify sends sd_notify-style state lines to the service manager
	// (READY=1 once running, RELOADING=1 around reloads, STOPPING=1).
	Notify  func(state string) error
	Version string
}

// Resolver reports where frames for real servers go. Watch calls update
// whenever an address resolves or its neighbour changes, and with nil when
// it stops resolving, until ctx ends.
type Resolver interface {
	Watch(ctx context.Context, addrs []netip.Addr, update func(netip.Addr, *desired.Neighbour))
}

// VRRP is a running set of VRRP instances.
type VRRP interface {
	// Status reports every instance's state.
	Status() []status.VRRPInstance
	// Stop leaves cleanly (priority 0 adverts, VIPs removed) and waits.
	Stop()
}

// VRRPFactory starts a unit of VRRP instances (a sync group, or an
// instance on its own).
type VRRPFactory func(ctx context.Context, u VRRPUnit, log *slog.Logger) (VRRP, error)

// VRRPUnit is what a VRRPFactory starts.
type VRRPUnit struct {
	// Plan holds the unit's instances, its sync group and the scripts they
	// track.
	Plan desired.VRRP
	// Siblings are the plan's other instances, run as other units.
	Siblings []vrrp.InstanceConfig
	// OnState receives every state change of the unit's instances; it
	// never blocks.
	OnState func(instance string, s vrrp.State)
	// VIPFilter is shared by every unit; set when an instance has accept
	// mode off.
	VIPFilter vrrpnet.VIPFilter
	// Resume is set on the first start after adopting a pinned data plane:
	// an instance whose VIPs are still there died as MASTER while its
	// frames went on being forwarded, and resumes (vrrp.Machine.Resume).
	Resume bool
	// PreemptHold reports, per received advert, whether an instance must
	// not preempt a lower-priority master yet (vrrpnet.Options.PreemptHold).
	PreemptHold func(instance string) bool
	// StartupDelay is what is left of vrrp_startup_delay: the instances
	// start that much later.
	StartupDelay time.Duration
	// NotifyFIFO writes a line to vrrp_notify_fifo; nil without one.
	NotifyFIFO func(line string)
}

// VIPFilter drops packets addressed to the VIPs of MASTER instances
// without accept mode (vipfilter.Filter; a fake in tests).
type VIPFilter interface {
	vrrpnet.VIPFilter
	Close() error
}

// Fwmarks is the kernel plumbing of fwmark services (fwmark.Plumbing; a
// fake in tests): Check tells what stops it before a plan changes anything,
// Ensure sets it up for the marks and returns the interface to attach the
// balancer to with AttachFwmark, Remove takes it away.
type Fwmarks interface {
	Check(marks []dpstate.Fwmark) error
	Ensure(marks []dpstate.Fwmark) (ifindex int, err error)
	Remove() error
}

// Dataplane is the data plane the director programs: *dataplane.Dataplane,
// or *dataplane.Fake in tests. Both validate a state the same way.
type Dataplane interface {
	Attach(ifindex int, mode dataplane.AttachMode) error
	AttachFwmark(ifindex int, mode dataplane.AttachMode) error
	Detach(ifindex int) error
	Apply(dpstate.State) error
	Stats() (dataplane.Stats, error)
	Connections() ([]dataplane.Conn, error)
	// StreamConnections walks the connection table without holding up
	// Apply while fn runs.
	StreamConnections(fn func(dataplane.Conn)) error
	InsertConnections([]dataplane.Conn) (int, error)
	ExpireConnections() (int, error)
	Close() error
	// Release leaves a pinned data plane forwarding (Close otherwise).
	Release() error
}

// Director is a running govs daemon.
type Director struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	plan     *desired.Plan
	pools    desired.Pools
	neigh    map[netip.Addr]desired.Neighbour
	dp       Dataplane
	attached map[string]int
	// natAttached are interfaces the data plane is attached to because
	// NAT real servers are behind them (their replies come in there), by
	// ifindex; not in attached.
	natAttached map[int]bool
	// fwmarkIf is the fwmark interface the data plane is attached to (0:
	// none); fwmarkDone is set once a plan's fwmark plumbing was applied.
	fwmarkIf   int
	fwmarkDone bool
	// localAddrs are the FullNAT local addresses held, and whether the
	// director added them (and so removes them).
	localAddrs map[desired.LocalAddr]bool
	// statics are the static addresses and routes held (applyStaticsLocked).
	statics []heldStatic
	// vrrpStartAt is when vrrp_startup_delay lets the instances start.
	vrrpStartAt time.Time
	// fifo is the open vrrp_notify_fifo (nil: none) and stopFIFOScript
	// ends the script reading it.
	fifo           *notifyfifo.FIFO
	stopFIFOScript func()
	// speaker announces the ready VIPs over BGP; applied is the data
	// plane's state last applied, which says what is ready. drained
	// withdraws every announcement.
	speaker BGPSpeaker
	applied dpstate.State
	drained bool
	// drainGen counts drain changes, so that a drain period's stop is
	// dropped by a later undrain or drain; stopRequest ends Run.
	drainGen    uint64
	stopRequest chan struct{}
	// bgpPoke asks for the announcements again when a checker has its
	// first result (no event says so); bgpSettled stops the pokes once
	// every checker has one.
	bgpPoke    chan struct{}
	bgpSettled atomic.Bool
	// announcer damps the announcements; bgpVIPs and bgpReasons are its
	// last decision (for the status, and to log changes). bgpWakeAt is
	// when a pending wake evaluates them again.
	announcer  *announce.Machine
	bgpVIPs    []announce.VIP
	bgpReasons map[netip.Addr]announce.Reason
	bgpWakeAt  time.Time
	// bgpAdopted is set from adopting a pinned data plane until every
	// checker has a result: the previous govs's announcements stand.
	bgpAdopted bool
	// bgpAnnouncements and bgpWithdrawals count the VIPs' updates.
	bgpAnnouncements, bgpWithdrawals uint64
	// resumeVRRP is set while the first plan after adopting a pinned data
	// plane starts VRRP (VRRPUnit.Resume).
	resumeVRRP bool
	// reloads counts reload outcomes for the status snapshot.
	reloads status.Reloads
	// overrides are the weights set at run time (SetWeight); reloads keep
	// those whose real server is still configured.
	overrides desired.Overrides
	// checks runs every virtual server's health checks; a reload updates
	// it, so real servers keep their health state. checkEvents carries its
	// events; checked names the virtual servers it runs now.
	checks      *check.Runner
	checkEvents *queue[state.Event]
	checked     map[string]bool
	// units are the running VRRP units by key, started in unitOrder.
	units     map[string]*runningUnit
	unitOrder []string
	vipFilter VIPFilter
	// watchCancel stops the neighbour watch of the current configuration.
	watchCancel context.CancelFunc
	lastApply   error
	est         *status.Estimator
	ctx         context.Context
	// vrrpChanges carries the instances' state changes; vrrpStates is
	// what the running ones last reported, and masters mirrors its MASTER
	// set for readers that must not take mu. vrrpGen numbers unit starts.
	vrrpChanges *queue[vrrpChange]
	vrrpStates  map[string]vrrp.State
	vrrpGen     int
	masters     atomic.Pointer[map[string]bool]
	// syncGate holds the sync instance's preemption while connection
	// sync has not brought the master's connections (preemptHold).
	syncGate atomic.Pointer[syncGate]
	syncd    ConnSync
	syncCfg  *config.LVSSyncDaemon
	// dpReady is set while the data plane holds every real server of the
	// plan (all resolved), so a sync dump's entries all find theirs.
	dpReady atomic.Bool
}

// Load parses a configuration file and builds its plan. Warnings are
// logged; a plan with errors (in the file, or things govs cannot carry out
// as keepalived would) is refused with every error, as `govs check` prints
// them.
func Load(path, configID string, opts desired.Options, log *slog.Logger) (*desired.Plan, error) {
	cfg, diags := config.ParseFile(path, config.Options{ConfigID: configID})
	plan := desired.Build(cfg, diags, opts)
	if log != nil {
		for _, d := range plan.Diagnostics.Warnings() {
			log.Warn("config", "warning", d.String())
		}
	}
	if err := plan.Err(); err != nil {
		return nil, fmt.Errorf("configuration %s: %w", path, err)
	}
	return plan, nil
}

// New loads the configuration and prepares a Director; Run starts it.
func New(opts Options) (*Director, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.Checks.Clock == nil {
		opts.Checks.Clock = opts.Clock
	}
	if opts.MemTotal == nil {
		opts.MemTotal = hostmem.Total
	}
	if opts.Fwmarks == nil {
		opts.Fwmarks = fwmark.Plumbing{}
	}
	if opts.LocalAddrs == nil {
		opts.LocalAddrs = kernelLocalAddrs{}
	}
	if opts.Statics == nil {
		opts.Statics = kernelStatics{}
	}
	if opts.RunScript == nil {
		opts.RunScript = vrrpnet.RunScript
	}
	if opts.BGP == nil {
		opts.BGP = defaultBGP
	}
	if opts.Links == nil {
		opts.Links = kernelLinks{}
	}
	if opts.InterfaceIndex == nil {
		opts.InterfaceIndex = func(name string) (int, error) {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return 0, err
			}
			return ifi.Index, nil
		}
	}
	plan, err := Load(opts.ConfigPath, opts.ConfigID, opts.planOptions(), opts.Log)
	if err != nil {
		return nil, err
	}
	return &Director{
		opts:        opts,
		log:         opts.Log,
		plan:        plan,
		pools:       desired.Pools{},
		neigh:       map[netip.Addr]desired.Neighbour{},
		attached:    map[string]int{},
		natAttached: map[int]bool{},
		localAddrs:  map[desired.LocalAddr]bool{},
		bgpPoke:     make(chan struct{}, 1),
		stopRequest: make(chan struct{}, 1),
		est:         status.NewEstimator(),
		checkEvents: newQueue[state.Event](),
		vrrpChanges: newQueue[vrrpChange](),
		vrrpStates:  map[string]vrrp.State{},
		units:       map[string]*runningUnit{},
	}, nil
}

// Run runs the director until ctx ends, then leaves cleanly: VRRP
// instances give up their VIPs, checkers stop, the data plane detaches.
func (d *Director) Run(ctx context.Context) error {
	// startup_script first, before anything is set up; shutdown_script
	// last, once everything is down (keepalived's order), on every way out.
	d.runHook(ctx, "startup_script", d.plan.Startup)
	defer func() {
		d.mu.Lock()
		h := d.plan.Shutdown
		d.mu.Unlock()
		d.runHook(context.WithoutCancel(ctx), "shutdown_script", h)
	}()
	// A drain period's end stops the director as the caller's ctx would.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	eventsDone := make(chan struct{})
	eventsCtx, stopEvents := context.WithCancel(ctx)
	go func() {
		defer close(eventsDone)
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			d.applyVRRPChanges(eventsCtx)
		}()
		go func() {
			defer wg.Done()
			if err := d.opts.Links.Watch(eventsCtx, d.pokeBGP); err != nil {
				d.log.Warn("links are not watched: a BGP VIP is not withdrawn when an interface goes down", "err", err)
			}
		}()
		go func() {
			defer wg.Done()
			d.applyBGPPokes(eventsCtx)
		}()
		d.applyCheckEvents(eventsCtx)
		wg.Wait()
	}()
	defer func() {
		stopEvents()
		<-eventsDone
	}()
	d.mu.Lock()
	d.ctx = ctx
	d.vrrpStartAt = d.opts.Clock.Now().Add(d.plan.VRRPStartupDelay)
	if err := d.openFIFOLocked(ctx, d.plan.VRRPFIFO); err != nil {
		d.mu.Unlock()
		return err
	}
	switch {
	case d.opts.NoDataplane:
	case d.opts.Dataplane != nil:
		d.dp = d.opts.Dataplane
	default:
		dp, err := dataplane.Open(dataplane.Options{Logger: d.log, PinPath: d.opts.PinDir,
			ConnTableSize: d.plan.Tables.Conns, EmbryoTableSize: d.plan.Tables.Embryos})
		if err != nil {
			d.mu.Unlock()
			return fmt.Errorf("open data plane: %w", err)
		}
		d.dp = dp
		// Adopted state: keep forwarding where frames went until the
		// neighbour table answers (else the first apply would take every
		// real server out for a moment).
		for _, r := range dp.AdoptedReals() {
			d.neigh[r.Addr] = desired.Neighbour{MAC: r.MAC, Ifindex: r.Ifindex}
		}
		d.resumeVRRP = dp.Adopted()
		d.bgpAdopted = dp.Adopted()
	}
	applyErr := d.applyPlanLocked(ctx, d.plan)
	d.resumeVRRP = false // only the first start follows a restart
	if err := applyErr; err != nil {
		d.mu.Unlock()
		d.shutdown()
		return err
	}
	// The starting configuration is the first good one (Succeeded counts
	// reloads only).
	d.reloads.LastOK, d.reloads.LastSuccess = true, d.opts.Clock.Now()
	// Read under the lock: a reload may already be running once the
	// control socket serves.
	nsvcs, ifaces := len(d.plan.Services), keys(d.attached)
	d.mu.Unlock()

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if d.opts.SocketPath != "-" {
		srv, err := control.Listen(control.Config{
			Path:        d.opts.SocketPath,
			Status:      d.Snapshot,
			Connections: d.Connections,
			Reload:      d.Reload,
			Weight:      d.SetWeight,
			BGPDrain:    d.SetBGPDrain,
			Logger:      d.log,
		})
		if err != nil {
			d.shutdown()
			return fmt.Errorf("control socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("control socket: %w", err)
			}
		}()
	}
	if d.opts.MetricsAddr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := metrics.Serve(ctx, d.opts.MetricsAddr, metrics.RoutesWith(d.Snapshot, d.StreamConnections)); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("metrics: %w", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.expireLoop(ctx)
	}()
	// The estimator samples every 2 s like IPVS's, whether or not anyone asks.
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := d.opts.Clock.NewTicker(status.EstimatorInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C():
				d.est.Observe(d.snapshot())
			}
		}
	}()
	d.log.Info("director running", "config", d.opts.ConfigPath, "services", nsvcs, "interfaces", ifaces)
	// The data plane is attached and programmed, VRRP started and the
	// control socket listening.
	d.notify("READY=1\nSTATUS=running")

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	case <-d.stopRequest:
		d.log.Info("BGP drain period over: stopping")
		stop()
	}
	d.notify("STOPPING=1")
	d.shutdown()
	wg.Wait()
	return err
}

// planOptions builds plans for this host: a missing interface refuses the
// file (or the reload) with its line, before anything runs.
func (o Options) planOptions() desired.Options {
	opts := desired.Options{NoDataplane: o.NoDataplane, InterfaceExists: func(name string) bool {
		_, err := o.InterfaceIndex(name)
		return err == nil
	}}
	if o.MemTotal != nil {
		if mem, err := o.MemTotal(); err == nil {
			opts.MemTotal = mem
		}
	}
	return opts
}

// Reload reads the configuration again. A configuration whose plan has
// errors is refused and the running one kept; a good one is applied as a
// change, so services that did not change keep their flows and health state.
func (d *Director) Reload() error {
	plan, err := Load(d.opts.ConfigPath, d.opts.ConfigID, d.opts.planOptions(), d.log)
	if err != nil {
		d.log.Error("reload rejected, keeping the running configuration", "err", err)
		d.mu.Lock()
		d.reloadFailedLocked(err)
		d.mu.Unlock()
		return err
	}
	d.notify("RELOADING=1")
	defer d.notify("READY=1")
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.runningLocked()
	if err := d.applyPlanLocked(d.ctx, plan); err != nil {
		d.log.Error("reload failed", "err", err)
		d.reloadFailedLocked(err)
		if prev.plan != nil && d.plan != prev.plan {
			// It failed after it began to change things (a VRRP unit or
			// the sync daemon that the plan could not foresee failing to
			// start): the running configuration is put back whole.
			if rerr := d.rollbackLocked(prev); rerr != nil {
				d.log.Error("rolling back the failed reload failed too: the running state is partly the new file's", "err", rerr)
				return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
			}
			d.log.Warn("failed reload rolled back: the running configuration is in place", "err", err)
		}
		return err
	}
	d.reloadSucceededLocked()
	d.log.Info("configuration reloaded", "config", d.opts.ConfigPath, "services", len(d.plan.Services))
	return nil
}

// running is what a failed reload rolls back to.
type running struct {
	plan      *desired.Plan
	pools     desired.Pools
	overrides desired.Overrides
}

func (d *Director) runningLocked() running {
	return running{plan: d.plan, pools: maps.Clone(d.pools), overrides: maps.Clone(d.overrides)}
}

// rollbackLocked applies the running configuration again, with the health
// verdicts and run-time weights it had (the failed reload may have
// dropped those of servers it removed).
func (d *Director) rollbackLocked(r running) error {
	d.pools, d.overrides = r.pools, r.overrides
	return d.applyPlanLocked(d.ctx, r.plan)
}

func (d *Director) reloadSucceededLocked() {
	d.reloads.Succeeded++
	d.reloads.LastOK = true
	d.reloads.LastSuccess = d.opts.Clock.Now()
	d.reloads.LastError = ""
}

func (d *Director) reloadFailedLocked(err error) {
	d.reloads.Failed++
	d.reloads.LastOK = false
	d.reloads.LastError = err.Error()
}

// notify tells the service manager about the director's state
// (sd_notify's READY=1, RELOADING=1, STOPPING=1), when it asked for that.
func (d *Director) notify(state string) {
	if d.opts.Notify == nil {
		return
	}
	if err := d.opts.Notify(state); err != nil {
		d.log.Warn("notify the service manager", "state", state, "err", err)
	}
}

// applyPlanLocked makes plan the running one.
func (d *Director) applyPlanLocked(ctx context.Context, plan *desired.Plan) error {
	var ifaces []string
	if d.dp != nil && len(plan.Services) > 0 {
		ifaces = plan.Interfaces
	}
	// The FIFO is opened once, with govs.
	if d.plan != nil && plan != d.plan && !reflect.DeepEqual(plan.VRRPFIFO, d.plan.VRRPFIFO) && d.ctx != nil {
		return fmt.Errorf("vrrp_notify_fifo and vrrp_notify_fifo_script change only at a restart")
	}
	// The tables are sized when the data plane loads: a reload cannot
	// resize them (a restart does, migrating the connections).
	if d.dp != nil && d.plan != nil && plan != d.plan && plan.Tables != d.plan.Tables {
		return fmt.Errorf("govs_conn_table_size / govs_embryo_table_size change only at a restart (running %d and %d entries, the file asks for %d and %d)",
			d.plan.Tables.Conns, d.plan.Tables.Embryos, plan.Tables.Conns, plan.Tables.Embryos)
	}
	// Check interfaces before changing anything, so a bad reload changes nothing.
	idx := map[string]int{}
	for _, name := range ifaces {
		i, err := d.opts.InterfaceIndex(name)
		if err != nil {
			return fmt.Errorf("data plane interface %s: %w", name, err)
		}
		idx[name] = i
	}
	if marks := plan.Fwmarks(); d.dp != nil && len(marks) > 0 {
		if err := d.opts.Fwmarks.Check(marks); err != nil {
			return err
		}
	}

	// Health checks: the first start builds the runner; a reload updates
	// it (first thing in the commit below, as it validates before it
	// changes anything), so a failed real server is not re-added and a
	// healthy one not dropped.
	newChecks := plan.Checks
	var runner *check.Runner
	if d.checks == nil {
		copts := d.opts.Checks
		copts.Log, copts.OnEvent = d.log, d.checkEvents.push
		copts.OnResult = d.onCheckResult(copts.OnResult)
		r, err := check.NewRunner(newChecks, copts)
		if err != nil {
			return fmt.Errorf("health checks: %w", err)
		}
		runner = r
	}
	checked := make(map[string]bool, len(newChecks))
	for _, v := range newChecks {
		checked[v.Name] = true
	}

	// Commit.
	if runner == nil {
		if err := d.checks.Update(newChecks); err != nil {
			return fmt.Errorf("health checks: %w", err)
		}
	}
	// Pools of removed virtual servers go now; their runner events (with
	// empty Dests) may still be queued and are ignored then.
	d.checked = checked
	for name := range d.pools {
		if !checked[name] {
			delete(d.pools, name)
		}
	}
	d.plan = plan
	d.overrides = plan.Keep(d.overrides)
	for name, ifindex := range d.attached {
		if _, ok := idx[name]; !ok {
			if err := d.dp.Detach(ifindex); err != nil {
				d.log.Warn("detach", "interface", name, "err", err)
			}
			delete(d.attached, name)
		}
	}
	for name, ifindex := range idx {
		if _, ok := d.attached[name]; ok {
			continue
		}
		if d.natAttached[ifindex] {
			delete(d.natAttached, ifindex)
			d.attached[name] = ifindex
			continue
		}
		if err := d.dp.Attach(ifindex, d.opts.AttachMode); err != nil {
			return fmt.Errorf("attach data plane to %s: %w", name, err)
		}
		d.attached[name] = ifindex
	}
	if err := d.applyLocalAddrsLocked(plan); err != nil {
		return err
	}
	d.syncLocked()
	if err := d.applyFwmarksLocked(plan); err != nil {
		return err
	}
	if runner != nil {
		d.checks = runner
		runner.Start(ctx)
	}

	if d.watchCancel != nil {
		d.watchCancel()
	}
	if d.dp != nil {
		wctx, cancel := context.WithCancel(ctx)
		d.watchCancel = cancel
		res := d.opts.Resolver
		if res == nil {
			res = defaultResolver(d.log)
		}
		go res.Watch(wctx, plan.RealAddrs, d.onNeighbour)
	}

	// Static addresses and routes before VRRP, as keepalived sets them:
	// an instance may need one (its interface's address, a route).
	d.applyStaticsLocked(plan.Static)

	// VRRP: only the units (an instance, or a sync group) whose part of
	// the plan changed restart, so editing notification_email or another
	// instance moves no VIP.
	if err := d.applyVRRPLocked(ctx, plan.VRRP); err != nil {
		return err
	}
	d.applySuspensionsLocked()
	if err := d.applySyncLocked(ctx, plan.Sync); err != nil {
		return err
	}
	return d.applyBGPLocked(ctx, plan)
}

// applyVRRPChanges records the instances' state changes until ctx ends
// and suspends or resumes the ha_suspend checks they decide.
func (d *Director) applyVRRPChanges(ctx context.Context) {
	drain(ctx, &d.mu, d.vrrpChanges, func(changes []vrrpChange) {
		for _, c := range changes {
			if u := d.units[c.unit]; u != nil && u.gen == c.gen {
				d.vrrpStates[c.instance] = c.state
			}
		}
		d.publishMastersLocked()
		d.applySuspensionsLocked()
	})
}

// drain hands what q collects to apply, with mu held, until ctx ends.
func drain[T any](ctx context.Context, mu *sync.Mutex, q *queue[T], apply func([]T)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.ready:
		}
		items := q.take()
		mu.Lock()
		apply(items)
		mu.Unlock()
	}
}

func (d *Director) publishMastersLocked() {
	m := map[string]bool{}
	for name, st := range d.vrrpStates {
		if st == vrrp.StateMaster {
			m[name] = true
		}
	}
	d.masters.Store(&m)
}

// applySuspensionsLocked puts the checks of ha_suspend virtual servers on
// hold while none of the instances holding their address is MASTER.
func (d *Director) applySuspensionsLocked() {
	if d.checks == nil {
		return
	}
	master := func(in string) bool { return d.vrrpStates[in] == vrrp.StateMaster }
	held := map[string]bool{}
	for _, s := range d.plan.Suspensions {
		held[s.VirtualServer] = true
		d.checks.Suspend(s.VirtualServer, s.Suspended(master))
	}
	// A reload may have dropped ha_suspend from a virtual server.
	for _, v := range d.plan.Checks {
		if !held[v.Name] {
			d.checks.Suspend(v.Name, false)
		}
	}
}

// applyCheckEvents programs the health checkers' verdicts until ctx ends.
// Events arrive through a queue rather than a direct call because the
// runner delivers them from its own goroutine, also while Stop waits for it
// with d.mu held (reload, shutdown).
func (d *Director) applyCheckEvents(ctx context.Context) {
	drain(ctx, &d.mu, d.checkEvents, func(events []state.Event) {
		for _, e := range events {
			// A virtual server a reload removed has no pool any more.
			if d.checked[e.VirtualServer] {
				d.pools[e.VirtualServer] = e.Dests
			}
		}
		d.syncLocked()
	})
}

// queue is an unbounded queue: pushing never blocks the producer (the
// health checker, the VRRP event loop), which may run while the consumer
// waits for d.mu held by a reload that is stopping that very producer.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{}
}

func newQueue[T any]() *queue[T] { return &queue[T]{ready: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue[T]) take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// vrrpChange is a VRRP instance's new state, as its runner reports it.
type vrrpChange struct {
	unit, instance string
	state          vrrp.State
	// gen is the unit's start it belongs to: changes of instances a
	// reload has since restarted are stale.
	gen int
}

func (d *Director) onNeighbour(addr netip.Addr, n *desired.Neighbour) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, had := d.neigh[addr]
	if n == nil {
		if had {
			delete(d.neigh, addr)
			d.syncLocked()
		}
		return
	}
	if had && reflect.DeepEqual(old, *n) {
		return
	}
	d.log.Info("real server resolved", "addr", addr, "mac", n.MAC.String(), "ifindex", n.Ifindex)
	d.neigh[addr] = *n
	d.syncLocked()
}

// syncLocked programs the data plane with the current desired state.
func (d *Director) syncLocked() {
	if d.dp == nil {
		return
	}
	st, unresolved := d.plan.Dataplane(d.plan.Apply(d.pools, d.overrides), d.neigh)
	if len(unresolved) > 0 {
		d.log.Debug("real servers not resolved yet", "addrs", unresolved)
	}
	if err := d.dp.Apply(st); err != nil {
		if d.lastApply == nil || d.lastApply.Error() != err.Error() {
			d.log.Error("program data plane", "err", err)
		}
		d.lastApply = err
		return
	}
	d.lastApply = nil
	d.applied = st
	d.dpReady.Store(len(unresolved) == 0)
	d.attachNATLocked(st)
	d.announceLocked()
}

// applyFwmarksLocked routes the marks of the plan's fwmark services to the
// data plane, once the services are in its maps, or removes the routing
// when none are left (also what an earlier run left behind).
func (d *Director) applyFwmarksLocked(plan *desired.Plan) error {
	if d.dp == nil {
		return nil
	}
	marks := plan.Fwmarks()
	if len(marks) == 0 {
		if d.fwmarkIf == 0 && d.fwmarkDone {
			return nil
		}
		d.detachFwmarkLocked()
		if err := d.opts.Fwmarks.Remove(); err != nil {
			return fmt.Errorf("fwmark services: %w", err)
		}
		d.fwmarkDone = true
		return nil
	}
	ifindex, err := d.opts.Fwmarks.Ensure(marks)
	if err != nil {
		return fmt.Errorf("fwmark services: %w", err)
	}
	if ifindex != d.fwmarkIf {
		d.detachFwmarkLocked()
		if err := d.dp.AttachFwmark(ifindex, d.opts.AttachMode); err != nil {
			return fmt.Errorf("fwmark services: attach data plane: %w", err)
		}
		d.fwmarkIf = ifindex
		d.log.Info("fwmark services routed to the data plane", "marks", len(marks), "ifindex", ifindex)
	}
	d.fwmarkDone = true
	return nil
}

func (d *Director) detachFwmarkLocked() {
	if d.fwmarkIf == 0 {
		return
	}
	if err := d.dp.Detach(d.fwmarkIf); err != nil {
		d.log.Warn("detach", "ifindex", d.fwmarkIf, "err", err)
	}
	d.fwmarkIf = 0
}

// attachNATLocked attaches the data plane to the interfaces NAT real
// servers are reached through, as their replies come back there, and
// detaches it from those no NAT real server uses any more. IPVS sees
// replies wherever they arrive; XDP only where it is attached.
func (d *Director) attachNATLocked(st dpstate.State) {
	want := map[int]bool{}
	for _, s := range st.Services {
		for _, r := range s.Reals {
			if (r.Method == dpstate.NAT || r.Method == dpstate.FNAT) && r.Ifindex > 0 {
				want[r.Ifindex] = true
			}
		}
	}
	held := map[int]bool{}
	for _, i := range d.attached {
		held[i] = true
	}
	for i := range want {
		if held[i] || d.natAttached[i] {
			continue
		}
		if err := d.dp.Attach(i, d.opts.AttachMode); err != nil {
			d.log.Error("attach data plane for NAT replies", "ifindex", i, "err", err)
			continue
		}
		d.log.Info("data plane attached for NAT replies", "ifindex", i)
		d.natAttached[i] = true
	}
	for i := range d.natAttached {
		if !want[i] {
			if err := d.dp.Detach(i); err != nil {
				d.log.Warn("detach", "ifindex", i, "err", err)
			}
			delete(d.natAttached, i)
		}
	}
}

func (d *Director) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	// Routers stop sending here first.
	d.stopBGPLocked()
	d.stopSyncLocked()
	d.stopVRRPLocked()
	d.closeFIFOLocked()
	// As keepalived at its end: what it set statically goes too.
	d.removeStaticsLocked(d.statics)
	d.statics = nil
	if d.vipFilter != nil {
		if err := d.vipFilter.Close(); err != nil {
			d.log.Warn("no_accept filter", "err", err)
		}
		d.vipFilter = nil
	}
	if d.checks != nil {
		d.checks.Stop()
		d.checks = nil
	}
	if d.watchCancel != nil {
		d.watchCancel()
	}
	switch {
	case d.dp != nil && d.opts.KeepDataplane && d.opts.PinDir != "":
		// The VIPs are gone with VRRP; the pinned data plane keeps the
		// connections for the next govs.
		if err := d.dp.Release(); err != nil {
			d.log.Warn("release data plane", "err", err)
		}
		d.log.Info("data plane left pinned and forwarding", "path", d.opts.PinDir)
		d.dp = nil
		d.attached = map[string]int{}
		d.natAttached = map[int]bool{}
		d.fwmarkIf = 0
	case d.dp != nil:
		for name, ifindex := range d.attached {
			if err := d.dp.Detach(ifindex); err != nil {
				d.log.Warn("detach", "interface", name, "err", err)
			}
		}
		for ifindex := range d.natAttached {
			if err := d.dp.Detach(ifindex); err != nil {
				d.log.Warn("detach", "ifindex", ifindex, "err", err)
			}
		}
		d.natAttached = map[int]bool{}
		d.removeLocalAddrsLocked()
		if d.fwmarkIf != 0 {
			// Without the balancer the marked packets must not be routed
			// to it: as with IPVS gone, the kernel has them again.
			d.detachFwmarkLocked()
			if err := d.opts.Fwmarks.Remove(); err != nil {
				d.log.Warn("remove fwmark routing", "err", err)
			}
		}
		if err := d.dp.Close(); err != nil {
			d.log.Warn("close data plane", "err", err)
		}
		d.dp = nil
		d.attached = map[string]int{}
	}
	d.log.Info("director stopped")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// SetWeight sets the weight of real server real (any port when port is 0)
// in virtual server vs (every one when empty), as `ipvsadm -e -w` does, in
// place of its configured weight while its checks pass; weight nil puts
// the configured weight back. Weight 0 drains it: no new connections. It
// returns how many real servers it changed. A reload keeps the weights.
func (d *Director) SetWeight(vs string, real netip.Addr, port uint16, weight *uint32) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys, err := d.plan.Matching(vs, real, port)
	if err != nil {
		return 0, err
	}
	if d.overrides == nil {
		d.overrides = desired.Overrides{}
	}
	for _, k := range keys {
		if weight == nil {
			delete(d.overrides, k)
		} else {
			d.overrides[k] = *weight
		}
	}
	w := "configured"
	if weight != nil {
		w = strconv.FormatUint(uint64(*weight), 10)
	}
	d.log.Info("weight set at run time", "real", netip.AddrPortFrom(real, port), "virtual_server", vs, "weight", w, "real_servers", len(keys))
	d.syncLocked()
	return len(keys), nil
}

// runHook runs a startup or shutdown script and waits for it (at most its
// timeout); a failure is logged, as keepalived does, and govs goes on.
func (d *Director) runHook(ctx context.Context, what string, h *desired.Hook) {
	if h == nil {
		return
	}
	if err := d.opts.RunScript(ctx, h.Command, h.RunAs, h.Timeout); err != nil {
		d.log.Error(what+" failed", "command", h.Command, "err", err)
		return
	}
	d.log.Info(what+" done", "command", h.Command)
}

// openFIFOLocked opens vrrp_notify_fifo and starts the script reading it.
func (d *Director) openFIFOLocked(ctx context.Context, f *desired.NotifyFIFO) error {
	if f == nil {
		return nil
	}
	uid, gid := -1, -1
	if f.Owner != (vrrp.RunAs{}) {
		cred, err := runas.Credential(f.Owner.User, f.Owner.Group)
		if err != nil {
			return fmt.Errorf("vrrp_notify_fifo %s: %w", f.Path, err)
		}
		uid, gid = int(cred.Uid), int(cred.Gid)
	}
	fifo, err := notifyfifo.Open(f.Path, uid, gid)
	if err != nil {
		return err
	}
	d.fifo = fifo
	if f.Script != "" {
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		d.stopFIFOScript = func() { cancel(); <-done }
		go func() {
			defer close(done)
			// It reads until govs stops it: no timeout.
			if err := d.opts.RunScript(sctx, f.Script+" "+shellQuote(f.Path), f.ScriptAs, 0); err != nil && sctx.Err() == nil {
				d.log.Warn("vrrp_notify_fifo_script ended", "err", err)
			}
		}()
	}
	return nil
}

// closeFIFOLocked stops the FIFO's script and closes it, after VRRP
// stopped (its last lines are the STOP ones).
func (d *Director) closeFIFOLocked() {
	if d.stopFIFOScript != nil {
		d.stopFIFOScript()
		d.stopFIFOScript = nil
	}
	if d.fifo != nil {
		if err := d.fifo.Close(); err != nil {
			d.log.Warn("vrrp_notify_fifo", "err", err)
		}
		d.fifo = nil
	}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
