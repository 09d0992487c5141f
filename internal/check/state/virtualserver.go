package state

import (
	"fmt"
	"log/slog"
	"time"
)

// MaxWeight is the largest weight a real server can be given (IPVS's limit).
const MaxWeight = 65535

// RealServerConfig describes one real server and its checkers.
type RealServerConfig struct {
	// Name identifies the server, e.g. "198.18.0.2:80".
	Name string
	// Weight is the configured weight (keepalived's default is 1).
	Weight int
	// Inhibit (inhibit_on_failure) keeps a failed server in the pool with
	// weight 0 instead of removing it, so established connections finish.
	Inhibit  bool
	Checkers []CheckerConfig
}

// SorryServerConfig is the server that replaces the pool when quorum is lost.
type SorryServerConfig struct {
	Name   string
	Weight int
	// Inhibit (sorry_server_inhibit) keeps the sorry server in the pool with
	// weight 0 while it is not needed.
	Inhibit bool
}

// VirtualServerConfig holds the virtual-server-wide health policy.
type VirtualServerConfig struct {
	Name string
	// Quorum is the minimum sum of live weights (0 means keepalived's default, 1).
	Quorum int
	// Hysteresis dampens quorum flapping: quorum is gained at Quorum+Hysteresis
	// and lost below Quorum-Hysteresis.
	Hysteresis int
	Sorry      *SorryServerConfig
	// Omega runs the down notifiers when the checkers are stopped.
	Omega       bool
	RealServers []RealServerConfig
}

// Kind says what an Event reports.
type Kind int

// Event kinds.
const (
	RealServerUp Kind = iota + 1
	RealServerDown
	WeightChanged
	QuorumUp
	QuorumDown
)

func (k Kind) String() string {
	switch k {
	case RealServerUp:
		return "up"
	case RealServerDown:
		return "down"
	case WeightChanged:
		return "weight"
	case QuorumUp:
		return "quorum-up"
	case QuorumDown:
		return "quorum-down"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Dest is one entry the data plane should hold for a virtual server. A
// server missing from the list is out of the pool; weight 0 means inhibited.
type Dest struct {
	Name   string
	Weight int
	Sorry  bool
}

// Event is a change the caller acts on: reprogram the data plane from Dests
// and, when Notify is set, run the matching notify script.
type Event struct {
	Kind          Kind
	VirtualServer string
	// RealServer is the index in VirtualServerConfig.RealServers (-1 for
	// virtual-server events) and RealServerName its name.
	RealServer     int
	RealServerName string
	// Weight is the server's effective weight, or the live weight sum for
	// quorum events.
	Weight int
	// Reason says which check changed and why.
	Reason string
	// Notify asks for notify_up/notify_down (or quorum_up/quorum_down).
	Notify bool
	// Initial marks the state reported at start, Shutdown the one at stop.
	Initial  bool
	Shutdown bool
	// Reload marks an event caused by a configuration update.
	Reload bool
	// Removed marks a real server (or, with RealServer -1, the virtual
	// server) that the update took out of the configuration; RealServer then
	// indexes the configuration before the update.
	Removed bool
	// Dests is the data plane's desired content after this event.
	Dests []Dest
}

type realServer struct {
	cfg      RealServerConfig
	checkers []*Checker
	alive    bool
	weight   int
}

func (rs *realServer) failed() int {
	n := 0
	for _, c := range rs.checkers {
		if !c.Up() {
			n++
		}
	}
	return n
}

// effectiveWeight applies misc_dynamic: each dynamic checker moves the
// weight from the configured one to the one it asked for.
func (rs *realServer) effectiveWeight() int {
	w := rs.cfg.Weight
	for _, c := range rs.checkers {
		if dw, ok := c.dynamicWeight(); ok {
			w += dw - rs.cfg.Weight
		}
	}
	return min(max(w, 0), MaxWeight)
}

// VirtualServer is the health state of one virtual server and its real
// servers. It is not safe for concurrent use: one goroutine owns it.
type VirtualServer struct {
	cfg      VirtualServerConfig
	rs       []*realServer
	quorumUp bool
	sorryOn  bool
	log      *slog.Logger
}

// Probe names a checker and when it is due.
type Probe struct {
	RealServer int
	Checker    int
	At         time.Time
}

// Validate reports the first problem of the configuration, if any.
func (cfg VirtualServerConfig) Validate() error {
	if cfg.Quorum < 0 || cfg.Hysteresis < 0 {
		return fmt.Errorf("virtual server %s: quorum %d and hysteresis %d must not be negative", cfg.Name, cfg.Quorum, cfg.Hysteresis)
	}
	for _, rc := range cfg.RealServers {
		if rc.Weight < 0 || rc.Weight > MaxWeight {
			return fmt.Errorf("real server %s: weight %d outside [0, %d]", rc.Name, rc.Weight, MaxWeight)
		}
		for _, cc := range rc.Checkers {
			if cc.DelayLoop <= 0 {
				return fmt.Errorf("checker %s: delay_loop must be positive", cc.Name)
			}
			if cc.Retry < 0 || cc.DelayBeforeRetry < 0 || cc.Warmup < 0 {
				return fmt.Errorf("checker %s: retry, delay_before_retry and warmup must not be negative", cc.Name)
			}
		}
	}
	return nil
}

// NewVirtualServer validates cfg and returns the state machine. log may be nil.
func NewVirtualServer(cfg VirtualServerConfig, log *slog.Logger) (*VirtualServer, error) {
	if cfg.Quorum == 0 {
		cfg.Quorum = 1
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	vs := &VirtualServer{cfg: cfg, log: log.With("vs", cfg.Name)}
	for _, rc := range cfg.RealServers {
		vs.rs = append(vs.rs, newRealServer(rc))
	}
	return vs, nil
}

func newRealServer(rc RealServerConfig) *realServer {
	rs := &realServer{cfg: rc}
	for _, cc := range rc.Checkers {
		rs.checkers = append(rs.checkers, NewChecker(cc))
	}
	return rs
}

// Config returns the configuration the state machine was built from.
func (vs *VirtualServer) Config() VirtualServerConfig { return vs.cfg }

// Start sets the initial state (servers are up unless an alpha checker holds
// them down) and returns the initial events and the first probe times. rnd
// returns numbers in [0, 1) to spread the first probes over each warmup.
func (vs *VirtualServer) Start(now time.Time, rnd func() float64) ([]Event, []Probe) {
	var events []Event
	var probes []Probe
	for i, rs := range vs.rs {
		rs.alive = rs.failed() == 0
		rs.weight = rs.effectiveWeight()
		kind := RealServerUp
		if !rs.alive {
			kind = RealServerDown
		}
		events = append(events, Event{Kind: kind, RealServer: i, RealServerName: rs.cfg.Name, Weight: rs.weight,
			Reason: "initial state", Initial: true})
		for j, c := range rs.checkers {
			probes = append(probes, Probe{RealServer: i, Checker: j, At: c.First(now, rnd())})
		}
	}
	vs.quorumUp = vs.liveWeight() >= vs.cfg.Quorum+vs.cfg.Hysteresis
	if !vs.quorumUp && vs.cfg.Sorry != nil {
		vs.sorryOn = true
		vs.log.Info("starting with quorum down, sorry server in", "quorum", vs.cfg.Quorum,
			"hysteresis", vs.cfg.Hysteresis, "weight", vs.liveWeight(), "sorry", vs.cfg.Sorry.Name)
		events = append(events, Event{Kind: QuorumDown, RealServer: -1, Weight: vs.liveWeight(),
			Reason: "starting with quorum down", Notify: true, Initial: true})
	}
	return vs.finish(events), probes
}

// Report applies the result of checker chk of real server rsIdx, completed at
// now. It returns when that checker is due again and the resulting events.
func (vs *VirtualServer) Report(now time.Time, rsIdx, chk int, res Result) (time.Time, []Event, error) {
	if rsIdx < 0 || rsIdx >= len(vs.rs) || chk < 0 || chk >= len(vs.rs[rsIdx].checkers) {
		return time.Time{}, nil, fmt.Errorf("report checker %d of real server %d: no such checker", chk, rsIdx)
	}
	rs := vs.rs[rsIdx]
	c := rs.checkers[chk]
	o := c.Step(now, res)
	if o.Retrying {
		vs.log.Debug("check failed, retrying", "rs", rs.cfg.Name, "reason", o.Reason, "next", o.Next)
	}
	var events []Event
	// Quorum is evaluated once, after both the weight and the state moved,
	// so a failing dynamic check does not flap quorum on the way down.
	requorum := false
	if o.WeightChanged {
		if w := rs.effectiveWeight(); w != rs.weight {
			vs.log.Info("changing weight", "rs", rs.cfg.Name, "from", rs.weight, "to", w, "check", c.cfg.Name)
			rs.weight = w
			events = append(events, Event{Kind: WeightChanged, RealServer: rsIdx, RealServerName: rs.cfg.Name,
				Weight: w, Reason: fmt.Sprintf("%s set weight %d", c.cfg.Name, w)})
			requorum = true
		}
	}
	alive := rs.failed() == 0
	switch {
	case alive != rs.alive:
		requorum = true
		rs.alive = alive
		kind, verb := RealServerUp, "adding"
		if !alive {
			kind, verb = RealServerDown, "removing"
			if rs.cfg.Inhibit {
				verb = "disabling"
			}
		} else if rs.cfg.Inhibit {
			verb = "enabling"
		}
		vs.log.Info(verb+" real server", "rs", rs.cfg.Name, "weight", rs.weight, "reason", o.Reason)
		events = append(events, Event{Kind: kind, RealServer: rsIdx, RealServerName: rs.cfg.Name,
			Weight: rs.weight, Reason: o.Reason, Notify: true})
	case o.FirstRun && !o.Changed && !o.Up && c.cfg.Alpha && c.cfg.Retry == 0:
		// keepalived tells notify_down once when an alpha checker without
		// retries confirms the server it started down (with retries the
		// first failure is only counted, and a down checker never retries).
		vs.log.Info("real server stays down", "rs", rs.cfg.Name, "reason", fmt.Sprintf("%s failed: %v", c.cfg.Name, c.LastErr()))
		events = append(events, Event{Kind: RealServerDown, RealServer: rsIdx, RealServerName: rs.cfg.Name,
			Weight: rs.weight, Reason: fmt.Sprintf("%s failed: %v", c.cfg.Name, c.LastErr()), Notify: true})
	case o.Changed:
		vs.log.Info("checker changed, server state unchanged", "rs", rs.cfg.Name, "reason", o.Reason,
			"alive", rs.alive, "failed_checkers", rs.failed())
	}
	if requorum {
		events = append(events, vs.updateQuorum()...)
	}
	return o.Next, vs.finish(events), nil
}

// Stop reports the shutdown. With omega, the live servers' notify_down and
// quorum_down scripts are asked for; without, the events carry no Notify.
func (vs *VirtualServer) Stop() []Event {
	var events []Event
	for i, rs := range vs.rs {
		if !rs.alive {
			continue
		}
		rs.alive = false
		events = append(events, Event{Kind: RealServerDown, RealServer: i, RealServerName: rs.cfg.Name,
			Weight: rs.weight, Reason: "shutting down", Notify: vs.cfg.Omega})
	}
	vs.quorumUp = false
	events = append(events, Event{Kind: QuorumDown, RealServer: -1, Reason: "shutting down", Notify: vs.cfg.Omega})
	for i := range events {
		events[i].VirtualServer = vs.cfg.Name
		events[i].Shutdown = true
	}
	return events
}

func (vs *VirtualServer) liveWeight() int {
	sum := 0
	for _, rs := range vs.rs {
		if rs.alive {
			sum += rs.weight
		}
	}
	return sum
}

// updateQuorum applies quorum and hysteresis after a live weight change.
func (vs *VirtualServer) updateQuorum() []Event {
	sum := vs.liveWeight()
	if !vs.quorumUp {
		threshold := vs.cfg.Quorum + vs.cfg.Hysteresis
		if sum < threshold {
			return nil
		}
		vs.quorumUp = true
		args := []any{"quorum", vs.cfg.Quorum, "hysteresis", vs.cfg.Hysteresis, "weight", sum}
		if vs.sorryOn {
			vs.sorryOn = false
			args = append(args, "sorry_server", "out")
		}
		vs.log.Info("gained quorum", args...)
		return []Event{{Kind: QuorumUp, RealServer: -1, Weight: sum, Notify: true,
			Reason: fmt.Sprintf("live weight %d >= %d", sum, threshold)}}
	}
	threshold := vs.cfg.Quorum - vs.cfg.Hysteresis
	if sum > 0 && sum >= threshold {
		return nil
	}
	vs.quorumUp = false
	args := []any{"quorum", vs.cfg.Quorum, "hysteresis", vs.cfg.Hysteresis, "weight", sum}
	if vs.cfg.Sorry != nil && !vs.sorryOn {
		vs.sorryOn = true
		args = append(args, "sorry_server", "in")
	}
	vs.log.Info("lost quorum", args...)
	return []Event{{Kind: QuorumDown, RealServer: -1, Weight: sum, Notify: true,
		Reason: fmt.Sprintf("live weight %d < %d", sum, max(threshold, 1))}}
}

// Dests returns what the data plane should hold now. While the sorry server
// is in, the real servers are out (or at weight 0 with inhibit_on_failure).
func (vs *VirtualServer) Dests() []Dest {
	var d []Dest
	for _, rs := range vs.rs {
		switch {
		case rs.alive && !vs.sorryOn:
			d = append(d, Dest{Name: rs.cfg.Name, Weight: rs.weight})
		case rs.cfg.Inhibit:
			d = append(d, Dest{Name: rs.cfg.Name, Weight: 0})
		}
	}
	if s := vs.cfg.Sorry; s != nil {
		switch {
		case vs.sorryOn:
			d = append(d, Dest{Name: s.Name, Weight: s.Weight, Sorry: true})
		case s.Inhibit:
			d = append(d, Dest{Name: s.Name, Weight: 0, Sorry: true})
		}
	}
	return d
}

// QuorumUp reports whether the virtual server has quorum.
func (vs *VirtualServer) QuorumUp() bool { return vs.quorumUp }

// SorryServerActive reports whether the sorry server replaces the pool.
func (vs *VirtualServer) SorryServerActive() bool { return vs.sorryOn }

// CheckerStatus is one checker's state for status displays.
type CheckerStatus struct {
	Name    string
	Up      bool
	LastErr error
	Stats   Stats
}

// RealServerStatus is one real server's state for status displays.
type RealServerStatus struct {
	Name     string
	Alive    bool
	Weight   int
	Checkers []CheckerStatus
}

// Status returns the state of every real server and checker.
func (vs *VirtualServer) Status() []RealServerStatus {
	out := make([]RealServerStatus, 0, len(vs.rs))
	for _, rs := range vs.rs {
		s := RealServerStatus{Name: rs.cfg.Name, Alive: rs.alive, Weight: rs.weight}
		for _, c := range rs.checkers {
			s.Checkers = append(s.Checkers, CheckerStatus{Name: c.cfg.Name, Up: c.Up(), LastErr: c.LastErr(), Stats: c.Stats()})
		}
		out = append(out, s)
	}
	return out
}

func (vs *VirtualServer) finish(events []Event) []Event {
	if len(events) == 0 {
		return nil
	}
	dests := vs.Dests()
	for i := range events {
		events[i].VirtualServer = vs.cfg.Name
		events[i].Dests = dests
	}
	return events
}
