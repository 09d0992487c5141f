package dataplane

import (
	"fmt"
	"github.com/govs/govs/internal/dpstate"
	"net"
	"slices"
	"sync"
)

// Fake is an in-memory stand-in for *Dataplane with the same methods, for
// testing code that drives the data plane (the daemon) without root. Apply
// runs the same validation and map computation as the real thing, against
// the compiled sizes, so a state Fake accepts is one Dataplane accepts.
// Counters stay zero. Egress interfaces the state does not give a MAC for
// get a made-up one (the real data plane asks the kernel), so the fake
// takes the director's state as the real data plane would.
type Fake struct {
	mu       sync.Mutex
	attached map[int]AttachMode
	fwmarkIf int
	ids      ids
	applied  []State
	conns    []Conn
	closed   bool
}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{attached: map[int]AttachMode{}, ids: newIDs()}
}

// compiledLimits mirror bpf/consts.h (MAX_SERVICES, MAX_REALS,
// MAX_SVC_REALS, MAX_TABLE); TestFakeLimitsMatchObject keeps them in step.
func compiledLimits() limits {
	return limits{services: dpstate.MaxServices, reals: dpstate.MaxRealIDs + 1, svcReals: dpstate.MaxLeastConnReals, table: dpstate.MaxTable}
}

// Attach records that ifindex is attached.
func (f *Fake) Attach(ifindex int, mode AttachMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("attach xdp to ifindex %d: data plane closed", ifindex)
	}
	if _, ok := f.attached[ifindex]; ok {
		return fmt.Errorf("attach xdp to ifindex %d: already attached", ifindex)
	}
	f.attached[ifindex] = mode
	return nil
}

// AttachFwmark records that ifindex is attached as the fwmark interface.
func (f *Fake) AttachFwmark(ifindex int, mode AttachMode) error {
	if err := f.Attach(ifindex, mode); err != nil {
		return err
	}
	f.mu.Lock()
	f.fwmarkIf = ifindex
	f.mu.Unlock()
	return nil
}

// FwmarkInterface is the interface attached with AttachFwmark (0: none).
func (f *Fake) FwmarkInterface() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fwmarkIf
}

// Detach forgets ifindex.
func (f *Fake) Detach(ifindex int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.attached[ifindex]; !ok {
		return fmt.Errorf("detach xdp from ifindex %d: not attached", ifindex)
	}
	delete(f.attached, ifindex)
	if f.fwmarkIf == ifindex {
		f.fwmarkIf = 0
	}
	return nil
}

// Apply validates and computes the maps for s, and records it.
func (f *Fake) Apply(s State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return fmt.Errorf("apply state: data plane closed")
	}
	s, err := fillInterfaceMACs(s, fakeMAC)
	if err != nil {
		return fmt.Errorf("apply state: %w", err)
	}
	_, next, err := compute(s, f.ids, compiledLimits())
	if err != nil {
		return fmt.Errorf("apply state: %w", err)
	}
	f.ids = next
	f.applied = append(f.applied, s)
	return nil
}

// fakeMAC makes up a locally administered MAC for an interface index.
func fakeMAC(ifindex int) (net.HardwareAddr, error) {
	return net.HardwareAddr{0x02, 0xfa, byte(ifindex >> 24), byte(ifindex >> 16), byte(ifindex >> 8), byte(ifindex)}, nil
}

// Stats returns zero counters for the services last applied.
func (f *Fake) Stats() (Stats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := Stats{ConnTableSize: dpstate.ConnTableSize, EmbryoTableSize: dpstate.EmbryoTableSize}
	if len(f.applied) == 0 {
		return st, nil
	}
	for _, svc := range f.applied[len(f.applied)-1].Services {
		ss := ServiceStats{Service: svc}
		for _, r := range svc.Reals {
			ss.Reals = append(ss.Reals, RealStats{Addr: r.Addr, Weight: r.Weight})
		}
		st.Services = append(st.Services, ss)
	}
	return st, nil
}

// Connections returns the connections inserted so far.
func (f *Fake) Connections() ([]Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.conns), nil
}

// StreamConnections calls fn for each connection inserted so far.
func (f *Fake) StreamConnections(fn func(Conn)) error {
	f.mu.Lock()
	conns := slices.Clone(f.conns)
	f.mu.Unlock()
	for _, c := range conns {
		fn(c)
	}
	return nil
}

// InsertConnections keeps the connections of services and reals of the
// last applied state that it does not have yet.
func (f *Fake) InsertConnections(conns []Conn) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range conns {
		if !f.knows(c) || slices.ContainsFunc(f.conns, func(o Conn) bool {
			return o.Protocol == c.Protocol && o.Client == c.Client && o.VIP == c.VIP
		}) {
			continue
		}
		f.conns = append(f.conns, c)
		n++
	}
	return n, nil
}

func (f *Fake) knows(c Conn) bool {
	if len(f.applied) == 0 {
		return false
	}
	for _, port := range []uint16{c.VIP.Port(), 0} {
		for _, svc := range f.applied[len(f.applied)-1].Services {
			if svc.Addr == c.VIP.Addr() && svc.Port == port && svc.Protocol == c.Protocol {
				return slices.ContainsFunc(svc.Reals, func(r Real) bool { return r.Addr == c.Real })
			}
		}
	}
	return false
}

// ExpireConnections has no connections to expire.
func (f *Fake) ExpireConnections() (int, error) { return 0, nil }

// Close detaches everything.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	clear(f.attached)
	return nil
}

// Release is Close: the fake pins nothing.
func (f *Fake) Release() error { return f.Close() }

// Applied returns every state applied so far, oldest first.
func (f *Fake) Applied() []State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

// Attached returns the attached interfaces and their modes.
func (f *Fake) Attached() map[int]AttachMode {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[int]AttachMode, len(f.attached))
	for k, v := range f.attached {
		out[k] = v
	}
	return out
}
