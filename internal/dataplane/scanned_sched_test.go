package dataplane

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/govs/govs/internal/sched"
)

// ipvsChoice is the real server (1-based; 0: none) IPVS's scheduler of
// kind picks for a new connection, written from ip_vs_{lc,wlc,sed,nq,fo,
// ovf}.c's documented rules, given each server's weight and active
// connections. Servers of weight 0 are never picked; ties go to the
// earlier server.
func ipvsChoice(kind sched.Kind, weights []uint32, active []int) int {
	best := 0
	better := func(i int) bool { // i's ratio below best's
		n, bn := int64(active[i]), int64(active[best-1])
		w, bw := int64(weights[i]), int64(weights[best-1])
		switch kind {
		case sched.LeastConnection:
			return n < bn
		case sched.ShortestExpectedDelay, sched.NeverQueue:
			return (n+1)*bw < (bn+1)*w
		}
		return n*bw < bn*w // wlc
	}
	for i, w := range weights {
		if w == 0 {
			continue
		}
		switch kind {
		case sched.NeverQueue:
			if active[i] == 0 {
				return i + 1
			}
		case sched.WeightedFailover:
			if best == 0 || w > weights[best-1] {
				best = i + 1
			}
			continue
		case sched.WeightedOverflow:
			if active[i] > int(w) {
				continue
			}
			if best == 0 || w > weights[best-1] {
				best = i + 1
			}
			continue
		}
		if best == 0 || better(i) {
			best = i + 1
		}
	}
	return best
}

// TestScanningSchedulers: for each scheduler that scans the real servers,
// a scripted run of new connections, with every fourth step closing the
// oldest open one, picks at each step what IPVS's rule picks for the
// active counts at that moment (and drops when ovf has no server left).
func TestScanningSchedulers(t *testing.T) {
	weights := []uint32{1, 2, 3, 0, 2}
	for _, kind := range []sched.Kind{sched.LeastConnection, sched.WeightedLeastConnection, sched.ShortestExpectedDelay,
		sched.NeverQueue, sched.WeightedFailover, sched.WeightedOverflow} {
		t.Run(string(kind), func(t *testing.T) {
			d := openDP(t, state(svc4(kind, 80, reals4(weights...)...)))
			active := make([]int, len(weights))
			var open []int // flow numbers, oldest first
			realOfFlow := map[int]int{}
			for step := range 30 {
				if step%4 == 3 && len(open) > 0 {
					i := open[0]
					open = open[1:]
					p := flowN(i, 80)
					p.syn, p.fin = false, true
					act, out := runOut(t, d.program(), frame(t, p))
					if r := realOf(t, act, out); r != realOfFlow[i] {
						t.Fatalf("step %d: the FIN of flow %d went to real %d, not %d", step, i, r, realOfFlow[i])
					}
					active[realOfFlow[i]-1]--
					continue
				}
				want := ipvsChoice(kind, weights, active)
				p := flowN(step, 80)
				act, out := runOut(t, d.program(), frame(t, p))
				if want == 0 {
					if act != xdpDrop {
						t.Fatalf("step %d (active %v): action %d, want a drop (no server)", step, active, act)
					}
					continue
				}
				got := realOf(t, act, out)
				if got != want {
					t.Fatalf("step %d (active %v): real %d, IPVS's %s picks %d", step, active, got, kind, want)
				}
				p.syn = false // the handshake's ACK
				if act, out := runOut(t, d.program(), frame(t, p)); realOf(t, act, out) != got {
					t.Fatalf("step %d: the ACK left real %d", step, got)
				}
				active[got-1]++
				open = append(open, step)
				realOfFlow[step] = got
			}
			t.Logf("%s: active connections at the end %v (weights %v)", kind, active, weights)
		})
	}
}

// TestHashSchedulersAndFlags: sh and mh keep one client on one server
// whatever its source port, as IPVS's do; with sh-port / mh-port the port
// is hashed too and one client's connections spread. ops (UDP) schedules
// every datagram on its own and leaves no connection entry.
func TestHashSchedulersAndFlags(t *testing.T) {
	for _, kind := range []sched.Kind{sched.SourceHash, sched.Maglev} {
		for _, hashPort := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s port %v", kind, hashPort), func(t *testing.T) {
				svc := svc4(kind, 80, reals4(1, 1, 1, 1)...)
				svc.HashPort = hashPort
				d := openDP(t, state(svc))
				seen := map[int]bool{}
				for port := range 64 {
					p := flowN(7, 80)
					p.sport = uint16(2000 + port)
					act, out := runOut(t, d.program(), frame(t, p))
					seen[realOf(t, act, out)] = true
				}
				if hashPort && len(seen) < 3 {
					t.Errorf("64 ports of one client reached %d servers with the port hashed", len(seen))
				}
				if !hashPort && len(seen) != 1 {
					t.Errorf("64 ports of one client reached %d servers; IPVS's %s keeps a client on one", len(seen), kind)
				}
			})
		}
	}
	t.Run("ops", func(t *testing.T) {
		svc := Service{Addr: vip4, Port: 53, Protocol: UDP, Scheduler: sched.RoundRobin, Reals: reals4(1, 1), OnePacket: true}
		d := openDP(t, state(svc))
		p := pktSpec{src: netip.MustParseAddr("198.19.0.9"), dst: vip4, sport: 5353, dport: 53, proto: UDP}
		var got []int
		onOneCPU(t, func() {
			for range 4 {
				act, out := runOut(t, d.program(), frame(t, p))
				got = append(got, realOf(t, act, out))
			}
		})
		if got[0] == got[1] || got[1] == got[2] {
			t.Errorf("one flow's datagrams went to %v: ops schedules each on its own", got)
		}
		if conns, err := d.Connections(); err != nil || len(conns) != 0 {
			t.Errorf("ops left %d connection entries (%v)", len(conns), err)
		}
	})
}

// locality is a model of IPVS's lblc and lblcr for one destination: the
// set of servers it is served by, and the rules that change it.
type locality struct {
	replicate bool
	set       []int // 1-based servers
}

// pick is the server for a new connection given weights and active counts,
// updating the set as ip_vs_lblc.c / ip_vs_lblcr.c do (within the 24-hour
// expiry, which a test does not reach).
func (l *locality) pick(weights []uint32, active []int) int {
	overloaded := func(s int) bool {
		if active[s-1] <= int(weights[s-1]) {
			return false
		}
		for i, w := range weights {
			if w > 0 && active[i]*2 < int(w) {
				return true
			}
		}
		return false
	}
	var alive []int
	for _, s := range l.set {
		if weights[s-1] > 0 {
			alive = append(alive, s)
		}
	}
	l.set = alive
	least := 0
	for _, s := range l.set {
		if least == 0 || active[s-1]*int(weights[least-1]) < active[least-1]*int(weights[s-1]) {
			least = s
		}
	}
	if least != 0 && !overloaded(least) {
		return least
	}
	wlc := ipvsChoice(sched.WeightedLeastConnection, weights, active)
	switch {
	case !l.replicate:
		l.set = []int{wlc}
	case !slices.Contains(l.set, wlc) && len(l.set) < 4:
		l.set = append(l.set, wlc)
	case !slices.Contains(l.set, wlc):
		busiest := 0
		for i, s := range l.set {
			if active[s-1]*int(weights[l.set[busiest]-1]) > active[l.set[busiest]-1]*int(weights[s-1]) {
				busiest = i
			}
		}
		l.set[busiest] = wlc
	}
	return wlc
}

// TestLocalitySchedulers: lblc and lblcr keep every client of one
// destination (here the VIP) on its server until that server has more
// connections than its weight while another is below half of its own; then
// lblc moves the destination to the wlc choice and lblcr adds that choice
// to the destination's set. Every step matches the IPVS model.
func TestLocalitySchedulers(t *testing.T) {
	weights := []uint32{2, 3, 1, 0}
	for _, kind := range []sched.Kind{sched.LocalityLeastConnection, sched.LocalityLeastConnectionReplicated} {
		t.Run(string(kind), func(t *testing.T) {
			d := openDP(t, state(svc4(kind, 80, reals4(weights...)...)))
			model := locality{replicate: kind == sched.LocalityLeastConnectionReplicated}
			active := make([]int, len(weights))
			var open []int
			realOfFlow := map[int]int{}
			servers := map[int]bool{}
			for step := range 40 {
				if step%5 == 4 && len(open) > 0 {
					i := open[0]
					open = open[1:]
					p := flowN(i, 80)
					p.syn, p.fin = false, true
					runOut(t, d.program(), frame(t, p))
					active[realOfFlow[i]-1]--
					continue
				}
				want := model.pick(weights, active)
				p := flowN(step, 80)
				act, out := runOut(t, d.program(), frame(t, p))
				got := realOf(t, act, out)
				if got != want {
					t.Fatalf("step %d (active %v, set %v): real %d, IPVS's %s picks %d", step, active, model.set, got, kind, want)
				}
				active[got-1]++
				open = append(open, step)
				realOfFlow[step] = got
				servers[got] = true
			}
			if len(servers) < 2 {
				t.Errorf("only servers %v used: the overload rule never moved the destination", servers)
			}
			t.Logf("%s: active at the end %v, set %v", kind, active, model.set)
		})
	}
}

// TestTwoChoices: with no connections open, twos's two weighted draws tie
// and the first wins, so shares follow the weights; a loaded server loses
// the comparison to an idle one.
func TestTwoChoices(t *testing.T) {
	d := openDP(t, state(svc4(sched.TwoChoices, 80, reals4(1, 3, 0)...)))
	count := map[int]int{}
	const flows = 4000
	for i := range flows {
		p := flowN(i, 80)
		p.syn = false
		p.rst = true // closed at once: nothing stays active
		act, out := runOut(t, d.program(), frame(t, p))
		count[realOf(t, act, out)]++
	}
	if count[3] != 0 {
		t.Errorf("weight-0 server got %d flows", count[3])
	}
	if share := float64(count[2]) / flows; share < 0.70 || share > 0.80 {
		t.Errorf("the weight-3 server got %.2f of the flows, want 0.75 ± 0.05 (%v)", share, count)
	}
	// Load server 2 heavily: most new flows go to server 1 now (two draws
	// both on server 2 still pick it).
	for i := range 200 {
		p := flowN(10000+i, 80)
		for {
			act, out := runOut(t, d.program(), frame(t, p))
			if realOf(t, act, out) == 2 {
				break // keep it open
			}
			rst := p
			rst.syn, rst.rst = false, true
			runOut(t, d.program(), frame(t, rst)) // close it
			p.sport++
		}
	}
	count = map[int]int{}
	for i := range 1000 {
		p := flowN(20000+i, 80)
		p.syn, p.rst = false, true
		act, out := runOut(t, d.program(), frame(t, p))
		count[realOf(t, act, out)]++
	}
	if count[1] < 350 { // about 437 expected: 1 - (3/4)² of the draws name server 1
		t.Errorf("with server 2 loaded, server 1 got only %d of 1000 new flows (%v)", count[1], count)
	}
}
