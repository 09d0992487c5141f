package dataplane

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/sched"
)

// sendFlows sends one SYN for each of n flows and returns the real each
// went to.
func sendFlows(t *testing.T, d *Dataplane, n int, dport uint16) []int {
	t.Helper()
	got := make([]int, n)
	for i := range got {
		act, out := runOut(t, d.Program(), frame(t, flowN(i, dport)))
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

func TestRoundRobinIgnoresWeights(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 5, 0)...)))
	got := sendFlows(t, d, 10, 80)
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
		act, out := runOut(t, d.Program(), frame(t, flowN(i, 80)))
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
			act, out := runOut(t, d.Program(), frame(t, p))
			if realOf(t, act, out) != 1 {
				t.Fatal("FIN of an established flow changed real")
			}
		}
	}
	for i := 100; i < 105; i++ {
		act, out := runOut(t, d.Program(), frame(t, flowN(i, 80)))
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

// monotonicNow is bpf_ktime_get_ns's clock.
func monotonicNow(t *testing.T) uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

func TestPersistence(t *testing.T) {
	const timeout = 300 * time.Second
	svc := svc4(sched.Maglev, 80, reals4(1, 1, 1)...)
	svc.PersistenceTimeout = timeout
	svc.PersistenceBits = 24
	d := openDP(t, state(svc))

	clientFlow := func(host byte, sport uint16) pktSpec {
		p := tcp4(sport, 80)
		p.src = netip.AddrFrom4([4]byte{198, 19, 7, host})
		return p
	}
	send := func(p pktSpec) int {
		act, out := runOut(t, d.Program(), frame(t, p))
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
	v.LastNs = monotonicNow(t) - uint64(timeout.Nanoseconds()) - uint64(time.Second)
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
