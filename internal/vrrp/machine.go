package vrrp

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// State is a VRRP instance state. Stop is keepalived's extra state for an
// instance that has shut down (it is what notify scripts see).
type State uint8

// The states, in keepalived's naming.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStop
)

func (s State) String() string {
	switch s {
	case StateInit:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	case StateStop:
		return "STOP"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Action is something the glue must do for a Machine.
type Action interface{ isAction() }

// SendAdvert asks for one advertisement with the given priority.
type SendAdvert struct{ Priority uint8 }

// AddVIPs asks for the virtual (and excluded) addresses to be added.
type AddVIPs struct{}

// RemoveVIPs asks for the virtual (and excluded) addresses to be removed.
type RemoveVIPs struct{}

// SendGARP asks for Repeat gratuitous ARPs / unsolicited NAs per VIP.
type SendGARP struct{ Repeat int }

// Transition reports a state change; the glue runs notify scripts and callbacks.
type Transition struct {
	From, To State
	Reason   string
	Priority int // effective priority after the change
}

// Log carries an informational message keepalived would log.
type Log struct{ Msg string }

// HeardLowerPriority reports that a MASTER heard a lower-priority master
// (at most once an advert interval): notify_master_rx_lower_pri runs.
type HeardLowerPriority struct {
	From     netip.Addr
	Priority int
}

// PriorityChanged reports a MASTER's or BACKUP's new effective priority
// (a tracked object moved it): notify_priority_changes writes it to the FIFO.
type PriorityChanged struct {
	State    State
	Priority int
}

func (SendAdvert) isAction() {}
func (AddVIPs) isAction()    {}
func (RemoveVIPs) isAction() {}
func (SendGARP) isAction()   {}
func (Transition) isAction() {}
func (Log) isAction()        {}

func (HeardLowerPriority) isAction() {}
func (PriorityChanged) isAction()    {}

// Receive-rule errors: Machine.Receive returns them (wrapped) for adverts it
// drops. None of them changes state.
var (
	ErrOtherVRID    = errors.New("advert for another virtual router id")
	ErrTTL          = errors.New("TTL/hop limit is not 255")
	ErrWrongVersion = errors.New("wrong VRRP version")
	ErrAuthType     = errors.New("authentication type mismatch")
	ErrAuthPass     = errors.New("invalid password")
	ErrInterval     = errors.New("advertisement interval mismatch")
	ErrUnicast      = errors.New("multicast/unicast mismatch")
	ErrUnknownPeer  = errors.New("advert from an address that is not a unicast peer")
	ErrNotRunning   = errors.New("instance is not in BACKUP or MASTER state")
	ErrOwnAdvert    = errors.New("advert from our own address")
)

// Received is an advert as the socket delivered it.
type Received struct {
	Packet *Packet
	Src    netip.Addr
	Dst    netip.Addr
	TTL    int // IPv4 TTL / IPv6 hop limit; -1 when unknown
}

// Stats counts adverts and transitions, like keepalived's per-instance stats.
type Stats struct {
	AdvertsReceived, AdvertsSent uint64
	BecomeMaster, ReleaseMaster  uint64
	PriorityZeroReceived         uint64
	PriorityZeroSent             uint64
	// LowerPriorityIgnored counts lower-priority adverts not answered
	// because one was answered less than an advert interval before.
	LowerPriorityIgnored uint64
	// Dropped counts adverts dropped by the receive rules, by reason.
	Dropped map[string]uint64
}

type trackState struct {
	weight  int
	reverse bool
	raw     bool // as reported, before reverse
	up      bool
	// file marks a track_file: its value, not up, says what it does
	// (fileStatus).
	file  bool
	value int
}

// fileStatus is keepalived's reading of a tracked file's value: with weight
// 0 a non-zero value (a zero one when reversed) is a failure; otherwise
// value × weight (negated when reversed), kept in -254..253, is added to the
// priority, and -254 is a failure. ok is false for a failure.
func (t *trackState) fileStatus() (add int, ok bool) {
	if t.weight == 0 {
		return 0, (t.value != 0) == t.reverse
	}
	v := t.value * t.weight
	if t.reverse {
		v = -v
	}
	v = min(max(v, FileFault), 253)
	return v, v != FileFault
}

// FileFault is the tracked-file status that faults an instance.
const FileFault = -254

// Machine is one VRRP instance's state machine. It is not safe for
// concurrent use: the runner owns it from one goroutine. Every method takes
// the current time and returns the actions to carry out in order; Deadline
// tells when Tick must be called next.
type Machine struct {
	cfg     InstanceConfig
	primary netip.Addr // our address for the tie-break and source of adverts
	auth    [AuthLen]byte
	unicast bool

	state          State
	masterAdverInt time.Duration
	timer          time.Time // advert timer in MASTER, master-down timer in BACKUP
	garpAt         time.Time // second GARP burst
	refreshAt      time.Time
	preemptAt      time.Time
	// preemptHeld keeps a BACKUP from preempting a live lower-priority
	// master (SetPreemptHold); heldLogged says it was logged.
	preemptHeld, heldLogged bool
	masterAddr              netip.Addr
	// lowerAnswered is when a lower-priority advert was last answered.
	lowerAnswered time.Time
	downReason    string // why the master-down timer runs short, for the log
	// resuming is set from Resume until the resume window ends or an
	// advert arrives.
	resuming bool

	ifaceUp    bool
	groupFault bool
	// srcGone is set while track_src_ip finds the source address missing.
	srcGone bool
	// warned remembers mismatches already logged per sender, as keepalived
	// rate-limits them, so a 100 ms advert stream does not flood the log.
	warned map[string]bool
	tracks map[string]*trackState

	stats Stats
}

// NewMachine builds the machine for cfg (defaults applied); primary is the
// instance's own address (unicast_src_ip or the interface's primary address).
func NewMachine(cfg InstanceConfig, primary netip.Addr) (*Machine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new VRRP machine: %w", err)
	}
	m := &Machine{
		cfg:            cfg,
		primary:        primary,
		unicast:        len(cfg.UnicastPeers) > 0,
		state:          StateInit,
		masterAdverInt: cfg.Interval,
		ifaceUp:        true,
		tracks:         map[string]*trackState{},
		warned:         map[string]bool{},
		stats:          Stats{Dropped: map[string]uint64{}},
	}
	if cfg.AuthPass != "" {
		m.auth = PassAuth(cfg.AuthPass)
	}
	for _, t := range cfg.TrackInterfaces {
		m.tracks[trackKey(true, t.Name)] = &trackState{weight: t.Weight, reverse: t.Reverse, raw: true, up: !t.Reverse}
	}
	for _, t := range cfg.TrackScripts {
		m.tracks[trackKey(false, t.Name)] = &trackState{weight: t.Weight, reverse: t.Reverse, raw: true, up: !t.Reverse}
	}
	for _, t := range cfg.TrackFiles {
		m.tracks[fileKey(t.Name)] = &trackState{weight: t.Weight, reverse: t.Reverse, file: true}
	}
	return m, nil
}

func fileKey(name string) string { return "file " + name }

func trackKey(iface bool, name string) string {
	if iface {
		return "interface " + name
	}
	return "script " + name
}

// Config returns the configuration with defaults applied.
func (m *Machine) Config() InstanceConfig { return m.cfg }

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Primary returns the instance's own address.
func (m *Machine) Primary() netip.Addr { return m.primary }

// Stats returns a copy of the counters.
func (m *Machine) Stats() Stats {
	s := m.stats
	s.Dropped = make(map[string]uint64, len(m.stats.Dropped))
	for k, v := range m.stats.Dropped {
		s.Dropped[k] = v
	}
	return s
}

// MasterAddr returns the source of the last accepted advert in BACKUP.
func (m *Machine) MasterAddr() netip.Addr { return m.masterAddr }

// Priority returns the effective priority: the configured one adjusted by
// tracked objects, kept in 1..254 unless the instance owns the addresses.
func (m *Machine) Priority() int {
	if m.cfg.Priority == PriorityOwner {
		return PriorityOwner
	}
	p := m.cfg.Priority
	for _, t := range m.tracks {
		if t.file {
			if add, ok := t.fileStatus(); ok {
				p += add
			}
			continue
		}
		if (t.weight > 0 && t.up) || (t.weight < 0 && !t.up) {
			p += t.weight
		}
	}
	return min(max(p, 1), PriorityOwner-1)
}

// OwnFault reports whether the instance itself (not its sync group) is faulty.
func (m *Machine) OwnFault() bool {
	if !m.ifaceUp || m.cfg.FaultNoPeer || m.srcGone {
		return true
	}
	for _, t := range m.tracks {
		if t.failed() {
			return true
		}
	}
	return false
}

// failed reports whether a tracked object puts its instance into FAULT.
func (t *trackState) failed() bool {
	if t.file {
		_, ok := t.fileStatus()
		return !ok
	}
	return t.weight == 0 && !t.up
}

func (m *Machine) faultReason() string {
	if !m.ifaceUp {
		return "interface " + m.cfg.Interface + " down"
	}
	if m.cfg.FaultNoPeer {
		return "no unicast peers (unicast_fault_no_peer)"
	}
	if m.srcGone {
		return "source address " + m.primary.String() + " gone (track_src_ip)"
	}
	for k, t := range m.tracks {
		if t.failed() {
			if t.file {
				return fmt.Sprintf("%s holds %d", k, t.value)
			}
			return k + " down"
		}
	}
	if m.groupFault {
		return "sync group " + m.cfg.SyncGroup + " in FAULT"
	}
	return ""
}

// SkewTime is keepalived's skew: (256-priority)/256 s for v2 (RFC 3768) and
// (256-priority)/256 of the master's advert interval for v3 (RFC 5798).
func (m *Machine) SkewTime() time.Duration {
	p := time.Duration(256 - m.Priority())
	if m.cfg.Version == 3 {
		return p * m.masterAdverInt / 256
	}
	return p * time.Second / 256
}

// MasterDownInterval is 3 × Master_Adver_Interval + skew time.
func (m *Machine) MasterDownInterval() time.Duration {
	return time.Duration(m.cfg.DownTimerAdverts)*m.masterAdverInt + m.SkewTime()
}

// Deadline returns when Tick must next be called; zero means no timer.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{m.timer, m.garpAt, m.refreshAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Start leaves INIT: FAULT when a tracked object is down, MASTER at once for
// an address owner, else BACKUP waiting Master_Down_Interval. Like keepalived
// 2.2.7, "state MASTER" does not skip that wait: another master may be there.
func (m *Machine) Start(now time.Time) []Action {
	if m.state != StateInit {
		return nil
	}
	if m.cfg.Priority == PriorityOwner && !m.OwnFault() && !m.groupFault {
		return m.becomeMaster(now, "address owner (priority 255)")
	}
	// Addresses left behind by a crashed run must go, or this node would
	// answer for the VIP next to the real master (keepalived does the same).
	acts := []Action{RemoveVIPs{}}
	if m.OwnFault() || m.groupFault {
		return append(acts, m.transition(StateFault, m.faultReason())...)
	}
	return append(acts, m.becomeBackup(now, "start")...)
}

// SetPreemptHold holds (or releases) preemption: while held, a BACKUP
// treats a lower-priority master's adverts as with nopreempt and stays
// BACKUP. The master's death (no adverts, or priority 0) is taken over as
// always. The director holds it while connection sync has not yet brought
// the master's connection table over, so a returning higher-priority
// director does not take the VIP with an empty table.
func (m *Machine) SetPreemptHold(held bool) {
	if m.preemptHeld != held {
		m.heldLogged = false
	}
	m.preemptHeld = held
}

// ResumeWindow is how long Resume listens before it resumes MASTER: one
// advert interval and a tenth, enough to hear an advert from any master
// that took over meanwhile (masters advertise every interval).
func (m *Machine) ResumeWindow() time.Duration {
	return m.cfg.Interval + m.cfg.Interval/10
}

// Resume leaves INIT for an instance that was MASTER when its previous
// process died, whose VIPs are still on the interface and whose data plane
// still forwards (a pinned one). keepalived would remove the VIPs and wait
// Master_Down_Interval as BACKUP, so the peer takes over and the VIP moves
// twice. Resume keeps the VIPs and listens ResumeWindow as BACKUP: hearing
// no master, it is MASTER again before the peer's Master_Down_Interval ends
// (the peer hears adverts again and never moves the VIP). Any advert from a
// master, whatever its priority, means the peer has taken over: the VIPs go
// and the instance is an ordinary BACKUP from then on, preempting only as
// its settings say, so a returning node never preempts a peer because it
// crashed rather than restarted.
func (m *Machine) Resume(now time.Time) []Action {
	if m.state != StateInit {
		return nil
	}
	if m.cfg.Priority == PriorityOwner || m.OwnFault() || m.groupFault {
		return m.Start(now)
	}
	acts := m.becomeBackup(now, "restart while MASTER: resuming unless another master is heard")
	m.resuming = true
	m.timer = now.Add(m.ResumeWindow())
	m.downReason = "resumed: no other master heard within the resume window after a restart"
	return acts
}

func (m *Machine) transition(to State, reason string) []Action {
	from := m.state
	m.state = to
	return []Action{Transition{From: from, To: to, Reason: reason, Priority: m.Priority()}}
}

func (m *Machine) becomeMaster(now time.Time, reason string) []Action {
	m.masterAdverInt = m.cfg.Interval
	m.resuming = false
	acts := m.transition(StateMaster, reason)
	m.stats.BecomeMaster++
	m.stats.AdvertsSent++
	acts = append(acts, AddVIPs{}, SendAdvert{Priority: uint8(m.Priority())}, SendGARP{Repeat: m.cfg.GARP.MasterRepeat})
	m.timer = now.Add(m.cfg.Interval)
	m.garpAt, m.refreshAt = time.Time{}, time.Time{}
	if m.cfg.GARP.MasterDelay > 0 {
		m.garpAt = now.Add(m.cfg.GARP.MasterDelay)
	}
	if m.cfg.GARP.MasterRefresh > 0 {
		m.refreshAt = now.Add(max(m.cfg.GARP.MasterDelay, 0) + m.cfg.GARP.MasterRefresh)
	}
	m.preemptAt = time.Time{}
	return acts
}

func (m *Machine) becomeBackup(now time.Time, reason string) []Action {
	acts := m.transition(StateBackup, reason)
	m.timer = now.Add(m.MasterDownInterval())
	m.downReason = ""
	m.resuming = false
	m.garpAt, m.refreshAt, m.preemptAt = time.Time{}, time.Time{}, time.Time{}
	return acts
}

// leaveMaster releases the addresses; sendStop announces priority 0 so a
// backup takes over after its skew time instead of Master_Down_Interval.
func (m *Machine) leaveMaster(now time.Time, to State, reason string, sendStop bool) []Action {
	var acts []Action
	if sendStop {
		acts = append(acts, SendAdvert{Priority: PriorityStop})
		m.stats.AdvertsSent++
		m.stats.PriorityZeroSent++
	}
	acts = append(acts, RemoveVIPs{})
	m.stats.ReleaseMaster++
	switch to {
	case StateBackup:
		return append(acts, m.becomeBackup(now, reason)...)
	default:
		m.timer, m.garpAt, m.refreshAt = time.Time{}, time.Time{}, time.Time{}
		return append(acts, m.transition(to, reason)...)
	}
}

// Tick runs the timers that are due at now.
func (m *Machine) Tick(now time.Time) []Action {
	var acts []Action
	switch m.state {
	case StateMaster:
		if !m.garpAt.IsZero() && !now.Before(m.garpAt) {
			m.garpAt = time.Time{}
			acts = append(acts, SendGARP{Repeat: m.cfg.GARP.MasterRepeat})
		}
		if !m.refreshAt.IsZero() && !now.Before(m.refreshAt) {
			m.refreshAt = now.Add(m.cfg.GARP.MasterRefresh)
			acts = append(acts, SendGARP{Repeat: m.cfg.GARP.MasterRefreshRepeat})
		}
		if !m.timer.IsZero() && !now.Before(m.timer) {
			m.timer = now.Add(m.cfg.Interval)
			m.stats.AdvertsSent++
			acts = append(acts, SendAdvert{Priority: uint8(m.Priority())})
		}
	case StateBackup:
		if !m.timer.IsZero() && !now.Before(m.timer) {
			reason := "no advert received within Master_Down_Interval"
			if m.downReason != "" {
				reason = m.downReason
			}
			acts = append(acts, m.becomeMaster(now, reason)...)
		}
	}
	return acts
}

// Shutdown stops the instance: a MASTER sends a priority 0 advert and
// releases its addresses; every instance ends in STOP.
func (m *Machine) Shutdown(now time.Time) []Action {
	switch m.state {
	case StateStop:
		return nil
	case StateMaster:
		return m.leaveMaster(now, StateStop, "shutdown", true)
	}
	m.timer, m.garpAt, m.refreshAt = time.Time{}, time.Time{}, time.Time{}
	return m.transition(StateStop, "shutdown")
}

// SetInterface reports the instance's interface going up or down.
func (m *Machine) SetInterface(now time.Time, up bool) []Action {
	m.ifaceUp = up
	return m.reevaluate(now)
}

// SetTrack reports a tracked interface (iface true) or script changing state.
// Unknown names are ignored.
func (m *Machine) SetTrack(now time.Time, iface bool, name string, up bool) []Action {
	t, ok := m.tracks[trackKey(iface, name)]
	if !ok || t.raw == up {
		return nil
	}
	old := m.Priority()
	t.raw, t.up = up, up != t.reverse
	acts := m.reevaluate(now)
	if p := m.Priority(); p != old && len(acts) == 0 {
		acts = append(acts, Log{Msg: fmt.Sprintf("%s %s: priority %d -> %d", trackKey(iface, name), map[bool]string{true: "up", false: "down"}[t.up], old, p)})
	}
	return m.priorityChanged(acts, old)
}

// SetTrackFile reports the value read from a tracked file (0 when it is
// missing or holds no number), kept in -254..254 as keepalived keeps it.
// Unknown names are ignored.
func (m *Machine) SetTrackFile(now time.Time, name string, value int) []Action {
	t, ok := m.tracks[fileKey(name)]
	value = min(max(value, -254), 254)
	if !ok || t.value == value {
		return nil
	}
	old := m.Priority()
	t.value = value
	acts := m.reevaluate(now)
	if p := m.Priority(); p != old && len(acts) == 0 {
		acts = append(acts, Log{Msg: fmt.Sprintf("%s holds %d: priority %d -> %d", fileKey(name), value, old, p)})
	}
	return m.priorityChanged(acts, old)
}

// priorityChanged adds PriorityChanged when a MASTER's or BACKUP's
// effective priority moved from old.
func (m *Machine) priorityChanged(acts []Action, old int) []Action {
	if p := m.Priority(); p != old && (m.state == StateMaster || m.state == StateBackup) {
		acts = append(acts, PriorityChanged{State: m.state, Priority: p})
	}
	return acts
}

// SetSourcePresent reports whether the instance's source address is on its
// interface; with track_src_ip its absence is a fault.
func (m *Machine) SetSourcePresent(now time.Time, present bool) []Action {
	if !m.cfg.TrackSrcIP || m.srcGone == !present {
		return nil
	}
	m.srcGone = !present
	return m.reevaluate(now)
}

// SetGroupFault puts the instance into FAULT because another member of its
// sync group is faulty, or releases it.
func (m *Machine) SetGroupFault(now time.Time, fault bool) []Action {
	m.groupFault = fault
	return m.reevaluate(now)
}

func (m *Machine) reevaluate(now time.Time) []Action {
	faulty := m.OwnFault() || m.groupFault
	switch {
	case m.state == StateInit || m.state == StateStop:
		return nil
	case faulty && m.state == StateMaster:
		return m.leaveMaster(now, StateFault, m.faultReason(), true)
	case faulty && m.state == StateBackup:
		m.timer = time.Time{}
		return m.transition(StateFault, m.faultReason())
	case !faulty && m.state == StateFault:
		m.masterAdverInt = m.cfg.Interval
		if m.cfg.Priority == PriorityOwner {
			return m.becomeMaster(now, "fault cleared, address owner")
		}
		return m.becomeBackup(now, "fault cleared")
	}
	return nil
}

// Force moves the instance to MASTER or BACKUP because its sync group did;
// it acts only from BACKUP to MASTER and from MASTER to BACKUP.
func (m *Machine) Force(now time.Time, to State, reason string) []Action {
	switch {
	case to == StateMaster && m.state == StateBackup:
		return m.becomeMaster(now, reason)
	case to == StateBackup && m.state == StateMaster:
		return m.leaveMaster(now, StateBackup, reason, false)
	}
	return nil
}

// drop counts and wraps a receive-rule failure.
func (m *Machine) drop(err error, format string, args ...any) error {
	m.stats.Dropped[err.Error()]++
	return fmt.Errorf("(%s) %w: %s", m.cfg.Name, err, fmt.Sprintf(format, args...))
}

// CountDecodeError counts a packet that did not even decode (checksum, length).
func (m *Machine) CountDecodeError(err error) {
	m.stats.Dropped["decode: "+rootError(err).Error()]++
}

func rootError(err error) error {
	for _, e := range []error{ErrShort, ErrLength, ErrVersion, ErrType, ErrChecksum, ErrFamily} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// check applies the receive rules that depend on the configuration
// (RFC 3768 §7.1, RFC 5798 §7.1, as keepalived orders them).
func (m *Machine) check(r Received) ([]Action, error) {
	p := r.Packet
	if p.VRID != m.cfg.VRID {
		return nil, m.drop(ErrOtherVRID, "VRID %d from %v, ours is %d", p.VRID, r.Src, m.cfg.VRID)
	}
	if !m.unicast && r.TTL >= 0 && r.TTL != TTL {
		return nil, m.drop(ErrTTL, "from %v: received %d, expect %d", r.Src, r.TTL, TTL)
	}
	if p.Version != m.cfg.Version {
		return nil, m.drop(ErrWrongVersion, "from %v: received %d, expect %d", r.Src, p.Version, m.cfg.Version)
	}
	var acts []Action
	if p.Version == 2 {
		want := uint8(AuthNone)
		if m.cfg.AuthPass != "" {
			want = AuthPass
		}
		if p.AuthType != want {
			return nil, m.drop(ErrAuthType, "from %v: received auth type %d, expect %d", r.Src, p.AuthType, want)
		}
		if want == AuthPass && !bytes.Equal(p.AuthData[:], m.auth[:]) {
			return nil, m.drop(ErrAuthPass, "from %v", r.Src)
		}
		if p.Interval != m.cfg.Interval {
			return nil, m.drop(ErrInterval, "from %v: mine=%v received=%v (VRRPv2 drops it)", r.Src, m.cfg.Interval, p.Interval)
		}
	} else if p.Interval != m.cfg.Interval && m.warnOnce("interval", r.Src) {
		acts = append(acts, Log{Msg: fmt.Sprintf("advertisement interval mismatch with %v: ours %v, received %v (VRRPv3 follows the master)", r.Src, m.cfg.Interval, p.Interval)})
	}
	if r.Dst.IsMulticast() == m.unicast {
		return nil, m.drop(ErrUnicast, "from %v to %v", r.Src, r.Dst)
	}
	if m.unicast && m.cfg.CheckUnicastSrc && !containsAddr(m.cfg.UnicastPeers, r.Src) {
		return nil, m.drop(ErrUnknownPeer, "%v", r.Src)
	}
	if rng, ok := m.cfg.PeerTTL[r.Src]; ok && m.unicast && r.TTL >= 0 && (r.TTL < rng.Min || r.TTL > rng.Max) {
		return nil, m.drop(ErrTTL, "from %v: received %d, expect %d..%d", r.Src, r.TTL, rng.Min, rng.Max)
	}
	if len(p.Addresses) != len(m.cfg.VIPs) && m.warnOnce("count", r.Src) {
		acts = append(acts, Log{Msg: fmt.Sprintf("expected %d VIPs but received %d from %v", len(m.cfg.VIPs), len(p.Addresses), r.Src)})
	}
	return acts, nil
}

// warnOnce reports whether a mismatch of this kind from src is new.
func (m *Machine) warnOnce(kind string, src netip.Addr) bool {
	k := kind + " " + src.String()
	if m.warned[k] {
		return false
	}
	if len(m.warned) > 64 { // bounded: forget everything rather than grow
		clear(m.warned)
	}
	m.warned[k] = true
	return true
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a.Unmap() {
			return true
		}
	}
	return false
}

// Receive handles an advert. A non-nil error means the advert was dropped by
// a receive rule (and counted); the state is then unchanged.
func (m *Machine) Receive(now time.Time, r Received) ([]Action, error) {
	if m.state != StateBackup && m.state != StateMaster {
		return nil, m.drop(ErrNotRunning, "state %v", m.state)
	}
	if r.Src == m.primary {
		return nil, m.drop(ErrOwnAdvert, "%v", r.Src)
	}
	acts, err := m.check(r)
	if err != nil {
		return nil, err
	}
	m.stats.AdvertsReceived++
	p := r.Packet
	prio := int(p.Priority)
	if prio == PriorityStop {
		m.stats.PriorityZeroReceived++
	}
	if m.state == StateBackup {
		return append(acts, m.backupReceive(now, r)...), nil
	}
	return append(acts, m.masterReceive(now, r)...), nil
}

func (m *Machine) backupReceive(now time.Time, r Received) []Action {
	prio := int(r.Packet.Priority)
	own := m.Priority()
	var acts []Action
	if m.resuming {
		m.resuming = false
		m.timer = now.Add(m.MasterDownInterval())
		m.downReason = ""
		if prio != PriorityStop {
			// The peer took over while this node was down: its VIPs are
			// the peer's now.
			acts = append(acts, RemoveVIPs{}, Log{Msg: fmt.Sprintf("master %v (priority %d) took over while this node restarted: not resuming, staying BACKUP", r.Src, prio)})
		}
	}
	return append(acts, m.backupElect(now, r, prio, own)...)
}

func (m *Machine) backupElect(now time.Time, r Received, prio, own int) []Action {
	switch {
	case prio == PriorityStop:
		m.timer = now.Add(m.SkewTime())
		m.downReason = fmt.Sprintf("master %v sent priority 0 (stopping)", r.Src)
		return []Action{Log{Msg: fmt.Sprintf("backup received priority 0 advert from %v, taking over after skew time %v", r.Src, m.SkewTime())}}
	case m.cfg.NoPreempt || m.preemptHeld || prio >= own || (m.cfg.PreemptDelay > 0 && (m.preemptAt.IsZero() || m.preemptAt.After(now))):
		var acts []Action
		if m.preemptHeld && prio < own && !m.cfg.NoPreempt && !m.heldLogged {
			m.heldLogged = true
			acts = append(acts, Log{Msg: fmt.Sprintf("lower priority (%d) master %v: not preempting until connection sync has its connections", prio, r.Src)})
		}
		if m.cfg.Version == 3 {
			m.masterAdverInt = r.Packet.Interval
		}
		m.timer = now.Add(m.MasterDownInterval())
		m.downReason = ""
		if m.masterAddr != r.Src && m.masterAddr.IsValid() {
			acts = append(acts, Log{Msg: fmt.Sprintf("master changed from %v to %v", m.masterAddr, r.Src)})
		}
		m.masterAddr = r.Src
		if m.cfg.PreemptDelay > 0 && !m.cfg.NoPreempt {
			if prio >= own {
				m.preemptAt = time.Time{}
			} else if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
				acts = append(acts, Log{Msg: fmt.Sprintf("lower priority (%d) master %v: preempting after preempt_delay %v", prio, r.Src, m.cfg.PreemptDelay)})
			}
		}
		return acts
	default:
		m.masterAddr = r.Src
		m.downReason = fmt.Sprintf("preempting lower priority (%d) master %v", prio, r.Src)
		return []Action{Log{Msg: fmt.Sprintf("received lower priority (%d) advert from %v - discarding", prio, r.Src)}}
	}
}

// higher reports whether an advert with prio from src wins over us.
func (m *Machine) higher(prio int, src netip.Addr) bool {
	own := m.Priority()
	return prio > own || (prio == own && src.Compare(m.primary) > 0)
}

func (m *Machine) masterReceive(now time.Time, r Received) []Action {
	prio := int(r.Packet.Priority)
	own := m.Priority()
	switch {
	case prio == PriorityStop:
		m.stats.AdvertsSent++
		m.timer = now.Add(m.cfg.Interval)
		return []Action{SendAdvert{Priority: uint8(own)}}
	case m.higher(prio, r.Src):
		if m.cfg.Version == 3 {
			m.masterAdverInt = r.Packet.Interval
		}
		reason := fmt.Sprintf("received advert from %v with higher priority %d, ours %d", r.Src, prio, own)
		if prio == own {
			reason = fmt.Sprintf("received advert from %v with same priority %d but higher IP address than ours", r.Src, prio)
		}
		m.masterAddr = r.Src
		var acts []Action
		if m.cfg.HigherPrioSendAdvert {
			// One last advert of ours, so that a master that sends GARPs on
			// lower-priority adverts refreshes the neighbours we misled.
			m.stats.AdvertsSent++
			acts = append(acts, SendAdvert{Priority: uint8(own)})
		}
		acts = append(acts, m.leaveMaster(now, StateBackup, reason, false)...)
		if m.cfg.Version == 3 {
			// becomeBackup used our interval; the master's is what counts.
			m.masterAdverInt = r.Packet.Interval
			m.timer = now.Add(m.MasterDownInterval())
		}
		return acts
	default:
		// A lower-priority master means a split brain is healing: assert
		// ourselves at once and refresh neighbours' ARP caches, at most
		// once per advert interval, so a flood of such adverts does not
		// become a flood of adverts, GARPs and log lines.
		if !m.lowerAnswered.IsZero() && now.Before(m.lowerAnswered.Add(m.cfg.Interval)) {
			m.stats.LowerPriorityIgnored++
			return nil
		}
		m.lowerAnswered = now
		acts := []Action{Log{Msg: fmt.Sprintf("received advert from %v with lower priority %d, ours %d, forcing new election", r.Src, prio, own)},
			HeardLowerPriority{From: r.Src, Priority: prio}}
		if !m.cfg.LowerPrioNoAdvert {
			acts = append(acts, SendAdvert{Priority: uint8(own)})
			m.stats.AdvertsSent++
			m.timer = now.Add(m.cfg.Interval)
		}
		if m.cfg.GARP.LowerPrioRepeat > 0 {
			acts = append(acts, SendGARP{Repeat: m.cfg.GARP.LowerPrioRepeat})
		}
		return acts
	}
}
