package dataplane

import (
	"math"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/sched"
)

// sendFlows sends one SYN for each of n flows and returns the real each
// went to.
func sendFlows(t *testing.T, d *Dataplane, n int, dport uint16) []int {
	t.Helper()
	got := make([]int, n)
	for i := range got {
		act, out := runOut(t, d.program(), frame(t, flowN(i, dport)))
		got[i] = realOf(t, act, out)
	}
	return got
}

func TestWeightedDistribution(t *testing.T) {
	const flows = 100000
	weights := []uint32{1, 2, 3, 0}
	for _, kind := range []sched.Kind{sched.Maglev, sched.WeightedRoundRobin, sched.SourceHash} {
		t.Run(string(kind), func(t *testing.T) {
			d := openDP(t, state(svc4(kind, 80, reals4(weights...)...)))
			count := map[int]int{}
			for _, r := range sendFlows(t, d, flows, 80) {
				count[r]++
			}
			var total uint32
			for _, w := range weights {
				total += w
			}
			for i, w := range weights {
				want := float64(flows) * float64(w) / float64(total)
				got := float64(count[i+1])
				if w == 0 && got != 0 || w != 0 && math.Abs(got-want) > 0.05*want {
					t.Errorf("real %d (weight %d): %v flows, want %.0f ±5%%", i+1, w, got, want)
				}
			}
			st, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Services[0].NewConns != flows || st.Services[0].Reals[2].NewConns != uint64(count[3]) {
				t.Errorf("counters: service %d new conns, real 3 %d (want %d, %d)", st.Services[0].NewConns, st.Services[0].Reals[2].NewConns, flows, count[3])
			}
		})
	}
}

// onOneCPU runs fn on a thread pinned to one CPU: BPF_PROG_TEST_RUN runs
// the program on the caller's CPU, and round robin keeps a per-CPU
// cursor, so a goroutine that migrates sees two interleaved sequences.
func onOneCPU(t *testing.T, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	for cpu := 0; cpu < 1024; cpu++ {
		if old.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.SchedSetaffinity(0, &old) }()
	fn()
}

func TestRoundRobinIgnoresWeights(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 5, 0)...)))
	var got []int
	onOneCPU(t, func() { got = sendFlows(t, d, 10, 80) })
	for i, r := range got {
		if want := 1 + i%2; r != want {
			t.Fatalf("flow %d went to real %d, want %d (sequence %v)", i, r, want, got)
		}
	}
}

// clearConns empties the connection table, as if every flow were new.
func clearConns(t *testing.T, d *Dataplane) {
	t.Helper()
	var k balancerFlow
	var keys []balancerFlow
	it := d.objs.Conns.Iterate()
	var v balancerConn
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := d.objs.Conns.Delete(&k); err != nil {
			t.Fatal(err)
		}
	}
	keys = keys[:0]
	it = d.objs.Embryos.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := d.objs.Embryos.Delete(&k); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMaglevDisruption(t *testing.T) {
	const n, flows = 5, 20000
	for _, withConns := range []bool{false, true} {
		name := "without connection table"
		if withConns {
			name = "with connection table"
		}
		t.Run(name, func(t *testing.T) {
			rs := reals4(1, 1, 1, 1, 1)
			d := openDP(t, state(svc4(sched.Maglev, 80, rs...)))
			before := sendFlows(t, d, flows, 80)
			if err := d.Apply(state(svc4(sched.Maglev, 80, rs[:n-1]...))); err != nil {
				t.Fatal(err)
			}
			if !withConns {
				clearConns(t, d)
			}
			after := sendFlows(t, d, flows, 80)
			moved, movedSurvivors := 0, 0
			for i := range before {
				if before[i] != after[i] {
					moved++
					if before[i] != n {
						movedSurvivors++
					}
				}
			}
			t.Logf("%d of %d flows moved (%d from surviving servers)", moved, flows, movedSurvivors)
			if withConns {
				if moved != 0 {
					t.Fatalf("%d established flows moved", moved)
				}
				return
			}
			frac := float64(moved) / flows
			if frac < 0.8/n || frac > 1.3/n {
				t.Errorf("%.3f of flows moved, want about 1/%d", frac, n)
			}
			if float64(movedSurvivors)/flows > 0.01 {
				t.Errorf("%d flows of surviving servers moved", movedSurvivors)
			}
		})
	}
}

func TestWeightZeroKeepsExistingFlows(t *testing.T) {
	const flows = 3000
	d := openDP(t, state(svc4(sched.Maglev, 80, reals4(1, 1, 1)...)))
	before := sendFlows(t, d, flows, 80)
	// inhibit_on_failure: real 2 gets weight 0.
	if err := d.Apply(state(svc4(sched.Maglev, 80, reals4(1, 0, 1)...))); err != nil {
		t.Fatal(err)
	}
	after := sendFlows(t, d, flows, 80)
	onTwo := 0
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("flow %d moved from %d to %d", i, before[i], after[i])
		}
		if before[i] == 2 {
			onTwo++
		}
	}
	if onTwo == 0 {
		t.Fatal("no flow on real 2 to begin with")
	}
	for i := flows; i < 2*flows; i++ {
		act, out := runOut(t, d.program(), frame(t, flowN(i, 80)))
		if realOf(t, act, out) == 2 {
			t.Fatal("new flow scheduled on a real with weight 0")
		}
	}
}

func TestLeastConnection(t *testing.T) {
	d := openDP(t, state(svc4(sched.LeastConnection, 80, reals4(1, 1)...)))
	got := sendFlows(t, d, 10, 80)
	count := map[int]int{}
	for _, r := range got {
		count[r]++
	}
	if count[1] != 5 || count[2] != 5 {
		t.Fatalf("lc spread %v, want 5/5", count)
	}
	// Close the flows on real 1 (FIN): the next 5 new flows all go there.
	for i, r := range got {
		if r == 1 {
			p := flowN(i, 80)
			p.syn, p.fin = false, true
			act, out := runOut(t, d.program(), frame(t, p))
			if realOf(t, act, out) != 1 {
				t.Fatal("FIN of an established flow changed real")
			}
		}
	}
	for i := 100; i < 105; i++ {
		act, out := runOut(t, d.program(), frame(t, flowN(i, 80)))
		if r := realOf(t, act, out); r != 1 {
			t.Fatalf("new flow %d went to real %d after real 1's flows closed", i, r)
		}
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if a1, a2 := st.Services[0].Reals[0].ActiveConns, st.Services[0].Reals[1].ActiveConns; a1 != 5 || a2 != 5 {
		t.Errorf("active connections %d/%d, want 5/5", a1, a2)
	}
}

func TestWeightedLeastConnection(t *testing.T) {
	d := openDP(t, state(svc4(sched.WeightedLeastConnection, 80, reals4(1, 3, 0)...)))
	count := map[int]int{}
	for _, r := range sendFlows(t, d, 400, 80) {
		count[r]++
	}
	if count[1] != 100 || count[2] != 300 || count[3] != 0 {
		t.Fatalf("wlc spread %v, want 100/300/0", count)
	}
}

// monotonicBefore is the program's clock ago in the past. The clock starts
// at boot: a test that needs a time before it fails here, saying so, rather
// than wrapping around (every test ages entries by less than a minute, so
// that it passes on a machine booted a minute ago).
func monotonicBefore(t *testing.T, d *Dataplane, ago time.Duration) uint64 {
	t.Helper()
	if ago > time.Minute {
		t.Fatalf("a timestamp %v in the past: more than a machine booted a minute ago has", ago)
	}
	now, err := d.monotonicNanos()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(ago) > now {
		t.Fatalf("a timestamp %v in the past: before this machine booted (%v ago)", ago, time.Duration(now))
	}
	return now - uint64(ago)
}

func TestPersistence(t *testing.T) {
	// Short, so that aging an entry past it cannot underflow the monotonic
	// clock on a machine booted seconds ago.
	const timeout = 5 * time.Second
	svc := svc4(sched.Maglev, 80, reals4(1, 1, 1)...)
	svc.HashPort = true // mh-port: without persistence, one client's ports spread
	svc.PersistenceTimeout = timeout
	svc.PersistenceBits = 24
	d := openDP(t, state(svc))

	clientFlow := func(host byte, sport uint16) pktSpec {
		p := tcp4(sport, 80)
		p.src = netip.AddrFrom4([4]byte{198, 19, 7, host})
		return p
	}
	send := func(p pktSpec) int {
		act, out := runOut(t, d.program(), frame(t, p))
		return realOf(t, act, out)
	}
	first := send(clientFlow(1, 1000))
	for i := 0; i < 50; i++ {
		// Other ports and other hosts of the same /24 stick to the first real.
		if r := send(clientFlow(byte(1+i%200), uint16(2000+i))); r != first {
			t.Fatalf("flow %d went to real %d, persistence says %d", i, r, first)
		}
	}

	// Expire: move the entry's timestamp past the timeout.
	var k balancerPersistKey
	var v balancerPersistVal
	it := d.objs.Persist.Iterate()
	if !it.Next(&k, &v) {
		t.Fatalf("no persistence entry: %v", it.Err())
	}
	v.LastNs = monotonicBefore(t, d, timeout+time.Second)
	if err := d.objs.Persist.Put(&k, &v); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := 0; i < 50; i++ {
		// Each new flow after expiry is scheduled afresh, then persists again.
		seen[send(clientFlow(1, uint16(3000+i)))] = true
		if err := d.objs.Persist.Put(&k, &v); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) < 2 {
		t.Errorf("after expiry all 50 new flows still went to %v", seen)
	}

	// Weight 0 ends persistence for new flows.
	r := send(clientFlow(9, 5000))
	svc.Reals[r-1].Weight = 0
	if err := d.Apply(state(svc)); err != nil {
		t.Fatal(err)
	}
	if got := send(clientFlow(9, 5001)); got == r {
		t.Errorf("new flow went to persisted real %d with weight 0", r)
	}
	// but the established flow stays.
	if got := send(clientFlow(9, 5000)); got != r {
		t.Errorf("established flow moved from %d to %d", r, got)
	}
}

func TestExpireConnections(t *testing.T) {
	const tcpTimeout = 5 * time.Second
	d := openDPWith(t, Options{TCPTimeout: tcpTimeout}, state(svc4(sched.LeastConnection, 80, reals4(1, 1)...)))
	sendEstablished(t, d, 10, 80)
	active := func() (a, b int64) {
		st, err := d.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Services[0].Reals[0].ActiveConns, st.Services[0].Reals[1].ActiveConns
	}
	if a, b := active(); a != 5 || b != 5 {
		t.Fatalf("active %d/%d, want 5/5", a, b)
	}
	if n, err := d.ExpireConnections(); err != nil || n != 0 {
		t.Fatalf("expired %d fresh connections (err %v)", n, err)
	}
	// Age every connection of real 1 past the TCP timeout, and drop one of
	// real 2's as the LRU would.
	var (
		k       balancerFlow
		v       balancerConn
		aged    []balancerFlow
		evicted bool
	)
	it := d.objs.Conns.Iterate()
	var keys []balancerFlow
	var vals []balancerConn
	for it.Next(&k, &v) {
		keys, vals = append(keys, k), append(vals, v)
	}
	for i := range keys {
		switch {
		case vals[i].RealId == d.ids.real[realKey{vip4Key(), real4(1, 1).Addr}]:
			vals[i].LastNs = monotonicBefore(t, d, tcpTimeout+time.Second)
			if err := d.objs.Conns.Put(&keys[i], &vals[i]); err != nil {
				t.Fatal(err)
			}
			aged = append(aged, keys[i])
		case !evicted:
			if err := d.objs.Conns.Delete(&keys[i]); err != nil {
				t.Fatal(err)
			}
			evicted = true
		}
	}
	n, err := d.ExpireConnections()
	if err != nil || n != len(aged) || n != 5 {
		t.Fatalf("expired %d (err %v), want 5", n, err)
	}
	if a, b := active(); a != 0 || b != 4 {
		t.Fatalf("active %d/%d after expiry, want 0/4", a, b)
	}
	// lc now prefers real 1 for the next 4 flows.
	for i := 1000; i < 1004; i++ {
		act, out := runOut(t, d.program(), frame(t, flowN(i, 80)))
		if r := realOf(t, act, out); r != 1 {
			t.Fatalf("new flow went to real %d, want 1 (fewest connections)", r)
		}
	}
}

func vip4Key() serviceKey { return svc4(sched.LeastConnection, 80).Key() }

func TestExactPortBeatsAnyPort(t *testing.T) {
	d := openDP(t, state(
		svc4(sched.Maglev, 0, real4(1, 1)),
		svc4(sched.Maglev, 80, real4(2, 1)),
	))
	for _, tc := range []struct {
		port uint16
		want int
	}{{80, 2}, {443, 1}, {8080, 1}} {
		act, out := runOut(t, d.program(), frame(t, tcp4(1234, tc.port)))
		if r := realOf(t, act, out); r != tc.want {
			t.Errorf("port %d went to real %d, want %d", tc.port, r, tc.want)
		}
	}
}

func TestDestinationHash(t *testing.T) {
	vipB := netip.MustParseAddr("198.18.0.101")
	d := openDP(t, state(
		svc4(sched.DestinationHash, 80, reals4(1, 1, 1)...),
		Service{Addr: vipB, Port: 80, Protocol: TCP, Scheduler: sched.DestinationHash, Reals: reals4(1, 1, 1)},
	))
	// All clients of one VIP land on one real, whatever their address/port.
	for _, vip := range []netip.Addr{vip4, vipB} {
		first := 0
		for i := 0; i < 500; i++ {
			p := flowN(i, 80)
			p.dst = vip
			act, out := runOut(t, d.program(), frame(t, p))
			r := realOf(t, act, out)
			if first == 0 {
				first = r
			} else if r != first {
				t.Fatalf("dh: flow %d to %s went to real %d, earlier ones to %d", i, vip, r, first)
			}
		}
	}
}

func TestUDPPersistenceAndIPv6(t *testing.T) {
	svc := Service{Addr: vip6, Port: 53, Protocol: UDP, Scheduler: sched.WeightedRoundRobin,
		PersistenceTimeout: time.Minute, PersistenceBits: 64, Reals: []Real{real6(1, 1), real6(2, 1), real6(3, 1)}}
	d := openDP(t, state(svc))
	var first int
	for i := 0; i < 30; i++ {
		src := client6.As16()
		src[15] = byte(i) // same /64
		p := pktSpec{src: netip.AddrFrom16(src), dst: vip6, sport: uint16(5000 + i), dport: 53, proto: UDP}
		act, out := runOut(t, d.program(), frame(t, p))
		r := realOf(t, act, out)
		if i == 0 {
			first = r
		} else if r != first {
			t.Fatalf("IPv6 client %d of the same /64 went to real %d, persistence says %d", i, r, first)
		}
	}
}

// TestIPv6FragmentsFollowFirst sends first and later fragments of many
// datagrams from different sources: each later fragment must reach the
// real its first fragment went to.
func TestIPv6FragmentsFollowFirst(t *testing.T) {
	d := openDP(t, state(Service{Addr: vip6, Port: 53, Protocol: UDP, Scheduler: sched.Maglev, Reals: []Real{real6(1, 1), real6(2, 1), real6(3, 1)}}))
	seen := map[int]bool{}
	for i := 0; i < 100; i++ {
		src := client6.As16()
		src[14], src[15] = byte(i>>8), byte(i)
		build := func(offset uint16, more, udp bool) []byte {
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment, SrcIP: src[:], DstIP: vip6.AsSlice()}
			fh := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: offset, MoreFragments: more, Identification: uint32(1000 + i)}
			ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeIPv6}, ip, fh}
			if udp {
				u := &layers.UDP{SrcPort: layers.UDPPort(2000 + i), DstPort: 53}
				_ = u.SetNetworkLayerForChecksum(ip)
				ls = append(ls, u)
			}
			return serialize(t, append(ls, gopacket.Payload(make([]byte, 40)))...)
		}
		act, out := runOut(t, d.program(), build(0, true, true))
		first := realOf(t, act, out)
		seen[first] = true
		for _, off := range []uint16{6, 12} {
			act, out := runOut(t, d.program(), build(off, off != 12, false))
			if r := realOf(t, act, out); r != first {
				t.Fatalf("datagram %d: fragment at %d went to real %d, first fragment to %d", i, off, r, first)
			}
		}
	}
	if len(seen) < 3 {
		t.Errorf("first fragments reached only %v", seen)
	}
}

// TestSYNOnClosedTupleIsRescheduled: a client that reuses a port whose last
// connection closed (FIN/RST seen) opens a new connection, which must be
// scheduled afresh rather than follow the old entry to a server that has
// since left the pool (IPVS's conn_reuse_mode).
func TestSYNOnClosedTupleIsRescheduled(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 1)...)))
	p := flowN(7, 80)
	act, out := runOut(t, d.program(), frame(t, p))
	first := realOf(t, act, out)
	// A mid-flow SYN (retransmission) keeps the real.
	act, out = runOut(t, d.program(), frame(t, p))
	if r := realOf(t, act, out); r != first {
		t.Fatalf("retransmitted SYN moved from real %d to %d", first, r)
	}
	fin := p
	fin.syn, fin.fin = false, true
	runOut(t, d.program(), frame(t, fin))
	// The first real fails (inhibit_on_failure: weight 0).
	weights := []uint32{1, 1}
	weights[first-1] = 0
	if err := d.Apply(state(svc4(sched.RoundRobin, 80, reals4(weights...)...))); err != nil {
		t.Fatal(err)
	}
	act, out = runOut(t, d.program(), frame(t, p))
	if r := realOf(t, act, out); r == first {
		t.Fatalf("a new connection on the closed tuple went back to real %d, which has weight 0", r)
	}
}

// TestBareSYNOnWeightZeroRealIsRescheduled: an entry whose FIN this
// director never saw (another director synced it, and the router sent the
// rest of the flow there) still points at its real when the client reuses
// the port. Once that real takes no new flows (weight 0: inhibited or
// drained), a bare SYN is a new connection and is scheduled afresh; the
// established flow's own packets (ACKs) still go to it.
func TestBareSYNOnWeightZeroRealIsRescheduled(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 1)...)))
	p := flowN(9, 80)
	act, out := runOut(t, d.program(), frame(t, p))
	first := realOf(t, act, out)
	weights := []uint32{1, 1}
	weights[first-1] = 0
	if err := d.Apply(state(svc4(sched.RoundRobin, 80, reals4(weights...)...))); err != nil {
		t.Fatal(err)
	}
	ack := p
	ack.syn = false
	act, out = runOut(t, d.program(), frame(t, ack))
	if r := realOf(t, act, out); r != first {
		t.Fatalf("an established flow's ACK moved from real %d (weight 0) to %d", first, r)
	}
	act, out = runOut(t, d.program(), frame(t, p))
	if r := realOf(t, act, out); r == first {
		t.Fatalf("a bare SYN on the tuple went to real %d, which has weight 0", r)
	}
}

// TestConnectionFirst: an established flow's packets find their connection
// before any service (IPVS's order), so a flow started on an any-port
// service keeps its real server when a service for its exact port is added
// (new flows go to the new one); once its own service is gone, the flow is
// scheduled afresh on the one that now matches.
func TestConnectionFirst(t *testing.T) {
	anyPort := svc4(sched.RoundRobin, 0, real4(1, 1))
	exact := svc4(sched.RoundRobin, 80, real4(2, 1))
	d := openDP(t, state(anyPort))
	p := flowN(11, 80)
	act, out := runOut(t, d.program(), frame(t, p))
	if r := realOf(t, act, out); r != 1 {
		t.Fatalf("SYN to the any-port service went to real %d", r)
	}
	// The client's ACK makes it a connection (the SYN alone is an embryo).
	ack := p
	ack.syn = false
	runOut(t, d.program(), frame(t, ack))
	if err := d.Apply(state(anyPort, exact)); err != nil {
		t.Fatal(err)
	}
	act, out = runOut(t, d.program(), frame(t, ack))
	if r := realOf(t, act, out); r != 1 {
		t.Fatalf("the established flow moved to real %d when an exact-port service was added", r)
	}
	act, out = runOut(t, d.program(), frame(t, flowN(12, 80)))
	if r := realOf(t, act, out); r != 2 {
		t.Fatalf("a new flow went to real %d, not the exact-port service's", r)
	}
	if err := d.Apply(state(exact)); err != nil {
		t.Fatal(err)
	}
	act, out = runOut(t, d.program(), frame(t, ack))
	if r := realOf(t, act, out); r != 2 {
		t.Fatalf("with its service gone the flow went to real %d, not the remaining service's", r)
	}
}

// TestVIPSlotMatchesTheProgram: user space's vip_filter slot of an address
// is the program's (else every established flow would take the slow
// path): a flow to a VIP whose slot is cleared by hand loses the
// connection-first lookup, which TestConnectionFirst sees.
func TestVIPSlotMatchesTheProgram(t *testing.T) {
	anyPort := svc4(sched.RoundRobin, 0, real4(1, 1))
	exact := svc4(sched.RoundRobin, 80, real4(2, 1))
	d := openDP(t, state(anyPort))
	p := flowN(13, 80)
	ack := p
	ack.syn = false
	runOut(t, d.program(), frame(t, p))
	runOut(t, d.program(), frame(t, ack))
	if err := d.Apply(state(anyPort, exact)); err != nil {
		t.Fatal(err)
	}
	if err := d.objs.VipFilter.Put(vipSlot(addr16(vip4)), uint32(0)); err != nil {
		t.Fatal(err)
	}
	act, out := runOut(t, d.program(), frame(t, ack))
	if r := realOf(t, act, out); r != 2 {
		t.Fatalf("with the VIP's filter slot cleared the flow stayed on real %d: the slot is not the program's", r)
	}
}
