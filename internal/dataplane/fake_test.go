package dataplane

import (
	"github.com/govs/govs/internal/dpstate"
	"net"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/sched"
)

// driver is the method set a daemon would program against; both the real
// data plane and the fake must satisfy it.
type driver interface {
	Attach(ifindex int, mode AttachMode) error
	Detach(ifindex int) error
	Apply(State) error
	Stats() (Stats, error)
	ExpireConnections() (int, error)
	Close() error
}

var (
	_ driver = (*Dataplane)(nil)
	_ driver = (*Fake)(nil)
)

func TestFakeLimitsMatchObject(t *testing.T) {
	spec, err := loadBalancer()
	if err != nil {
		t.Fatal(err)
	}
	got := limits{
		services: int(spec.Maps["svc_counters"].MaxEntries),
		reals:    int(spec.Maps["reals"].MaxEntries),
		svcReals: len(balancerSvcMeta{}.Reals),
		table:    int(spec.Maps["tables"].InnerMap.MaxEntries),
	}
	if got != compiledLimits() {
		t.Fatalf("compiled limits %+v, fake uses %+v", got, compiledLimits())
	}
	if n := int(spec.Maps["conns"].MaxEntries); n != dpstate.ConnTableSize {
		t.Fatalf("connection table of %d entries, dpstate says %d", n, dpstate.ConnTableSize)
	}
	if n := int(spec.Maps["embryos"].MaxEntries); n != dpstate.EmbryoTableSize {
		t.Fatalf("embryonic-flow table of %d entries, dpstate says %d", n, dpstate.EmbryoTableSize)
	}
}

func TestFake(t *testing.T) {
	f := NewFake()
	if err := f.Attach(3, Auto); err != nil {
		t.Fatal(err)
	}
	if err := f.Attach(3, Auto); err == nil {
		t.Error("double attach accepted")
	}
	good := state(svc4(sched.Maglev, 80, reals4(1, 2)...))
	if err := f.Apply(good); err != nil {
		t.Fatal(err)
	}
	bad := state(svc4(sched.Maglev, 80, reals4(1)...))
	bad.Services[0].TableSize = 65536 // not a prime
	if err := f.Apply(bad); err == nil {
		t.Error("fake accepted a table size the data plane refuses")
	}
	st, err := f.Stats()
	if err != nil || len(st.Services) != 1 || len(st.Services[0].Reals) != 2 || st.Services[0].Reals[1].Weight != 2 {
		t.Fatalf("stats %+v, %v", st, err)
	}
	if len(f.Applied()) != 1 {
		t.Errorf("applied %d states, want 1", len(f.Applied()))
	}
	if err := f.Close(); err != nil || len(f.Attached()) != 0 {
		t.Errorf("close: %v, still attached %v", err, f.Attached())
	}
}

func TestFakeInsertConnections(t *testing.T) {
	f := NewFake()
	s := State{InterfaceMACs: map[int]net.HardwareAddr{0: {2, 0, 0, 0, 0, 1}}, Services: []Service{{Addr: netip.MustParseAddr("203.0.113.1"), Port: 80, Protocol: TCP, Scheduler: "rr",
		Reals: []Real{{Addr: netip.MustParseAddr("198.18.0.11"), Weight: 1}}}}}
	if err := f.Apply(s); err != nil {
		t.Fatal(err)
	}
	c := Conn{Protocol: TCP, Client: netip.MustParseAddrPort("198.19.0.1:1000"), VIP: netip.MustParseAddrPort("203.0.113.1:80"), Real: netip.MustParseAddr("198.18.0.11")}
	unknownReal := c
	unknownReal.Client = netip.MustParseAddrPort("198.19.0.2:1000")
	unknownReal.Real = netip.MustParseAddr("198.18.0.99")
	for _, tc := range []struct {
		in   []Conn
		want int
	}{{[]Conn{c, unknownReal}, 1}, {[]Conn{c}, 0}} {
		if n, err := f.InsertConnections(tc.in); err != nil || n != tc.want {
			t.Fatalf("InsertConnections = %d, %v; want %d", n, err, tc.want)
		}
	}
	if got, _ := f.Connections(); len(got) != 1 || got[0] != c {
		t.Fatalf("Connections = %+v", got)
	}
}
