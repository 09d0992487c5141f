package dataplane

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/sched"
)

// TestICMPFollowsEachFlow sends ICMP frag-needed for many flows spread over
// several reals; each must reach its own flow's real.
func TestICMPFollowsEachFlow(t *testing.T) {
	d := openDP(t, state(svc4(sched.Maglev, 80, reals4(1, 1, 1, 1)...)))
	const n = 200
	flowsTo := sendFlows(t, d, n, 80)
	seen := map[int]bool{}
	for i := 0; i < n; i++ {
		p := flowN(i, 80)
		act, out := runOut(t, d.program(), icmp4FragNeeded(t, p.src, p.sport, 80))
		if r := realOf(t, act, out); r != flowsTo[i] {
			t.Fatalf("ICMP for flow %d went to real %d, flow is on %d", i, r, flowsTo[i])
		}
		seen[flowsTo[i]] = true
	}
	if len(seen) < 4 {
		t.Fatalf("flows reached only %d reals", len(seen))
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Global.ICMPForwarded != n {
		t.Errorf("ICMP forwarded counter %d, want %d", st.Global.ICMPForwarded, n)
	}
}

// TestApplyIsAtomicForPackets runs packets while the service's backend set
// is rewritten over and over: every packet must be forwarded to a real of
// either the old or the new set, never dropped or passed.
func TestApplyIsAtomicForPackets(t *testing.T) {
	a := state(svc4(sched.Maglev, 80, reals4(1, 1, 0)...))
	b := state(svc4(sched.Maglev, 80, reals4(0, 0, 1)...))
	d := openDP(t, a)
	frames := make([][]byte, 5000)
	for i := range frames {
		frames[i] = frame(t, flowN(i, 80))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var bad atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			opts := &ebpf.RunOptions{Data: frames[i%len(frames)], DataOut: make([]byte, 256)}
			act, err := d.program().Run(opts)
			out := opts.DataOut
			if err != nil {
				bad.Store(err.Error())
				return
			}
			if act != xdpTX || out[5] < 1 || out[5] > 3 {
				bad.Store(actionNames[act])
				return
			}
		}
	}()
	for i := 0; i < 40; i++ {
		s := a
		if i%2 == 0 {
			s = b
		}
		if err := d.Apply(s); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatalf("a packet saw a half-applied service: action %v", v)
	}
}
