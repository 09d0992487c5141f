package dataplane

import (
	"testing"

	"github.com/govs/govs/internal/sched"
)

// guard reads the new-flow limit's state.
func guard(t *testing.T, d *Dataplane) balancerFlowLimit {
	t.Helper()
	var g balancerFlowLimit
	if err := d.objs.FlowGuard.Lookup(uint32(0), &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestNewFlowLimit: past govs_new_flow_limit entries in one second, a new
// flow of a hash-scheduled DR service is forwarded where the table sends it
// without an entry, and one that needs an entry (rr, NAT) is dropped; flows
// with entries are not affected, and no limit admits every flow. The limit
// counts per second of the program's clock: a round that straddles a second
// (the guard's second changed) is played again, at most a few times.
func TestNewFlowLimit(t *testing.T) {
	const limit = 8
	cases := []struct {
		name string
		svc  Service
		syn  bool // the probe is a bare SYN (an embryonic entry), else an ACK
		want string
	}{
		{"mh DR, mid-stream packets", svc4(sched.Maglev, 80, reals4(1, 1, 1)...), false, "untracked"},
		{"mh DR, SYNs", svc4(sched.Maglev, 80, reals4(1, 1, 1)...), true, "untracked"},
		{"sh DR", svc4(sched.SourceHash, 80, reals4(1, 1, 1)...), false, "untracked"},
		{"rr DR", svc4(sched.RoundRobin, 80, reals4(1, 1, 1)...), false, "refused"},
		{"wlc DR, SYNs", svc4(sched.WeightedLeastConnection, 80, reals4(1, 1, 1)...), true, "refused"},
		{"mh NAT", svc4(sched.Maglev, 80, natReal(real4(1, 1), 8080), natReal(real4(2, 1), 8080)), false, "refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := state(tc.svc)
			st.NewFlowLimit = limit
			d := openDP(t, st)
			probe := func(i int) pktSpec {
				p := flowN(i, 80)
				p.syn = tc.syn
				return p
			}
			table := d.objs.Conns
			if tc.syn {
				table = d.objs.Embryos
			}
			var admitted [limit]uint32
			var over pktSpec
			var verdict uint32
			var out []byte
			var first int
			for round := 0; ; round++ {
				if round == 5 {
					t.Fatal("every round straddled a second")
				}
				// A fresh count and flows no earlier round sent.
				if err := d.objs.FlowGuard.Put(uint32(0), &balancerFlowLimit{Limit: limit}); err != nil {
					t.Fatal(err)
				}
				first = 1000 * round
				act, _ := runOut(t, d.program(), frame(t, probe(first)))
				second := guard(t, d).Second
				for i := range limit - 1 {
					admitted[i], _ = runOut(t, d.program(), frame(t, probe(first+1+i)))
				}
				admitted[limit-1] = act
				over = probe(first + limit)
				verdict, out = runOut(t, d.program(), frame(t, over))
				if g := guard(t, d); g.Second == second {
					if g.Made != limit+1 {
						t.Fatalf("the guard counted %d new flows, want %d", g.Made, limit+1)
					}
					break
				}
			}
			for i, act := range admitted {
				if act != xdpTX {
					t.Fatalf("flow %d within the limit: %s", i, actionNames[act])
				}
				if !inMap(t, table, probe(first+i)) {
					t.Errorf("flow %d within the limit has no entry", i)
				}
			}
			stats, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			g := stats.Global
			switch tc.want {
			case "untracked":
				r := realOf(t, verdict, out)
				if inMap(t, d.objs.Conns, over) || inMap(t, d.objs.Embryos, over) {
					t.Error("the flow over the limit got an entry")
				}
				if g.FlowsUntracked != 1 || g.FlowsRefused != 0 {
					t.Errorf("untracked %d, refused %d; want 1 and 0", g.FlowsUntracked, g.FlowsRefused)
				}
				// Without the limit the same flow gets an entry and the
				// same real: the table sends it either way.
				st.NewFlowLimit = 0
				if err := d.Apply(st); err != nil {
					t.Fatal(err)
				}
				act, out := runOut(t, d.program(), frame(t, over))
				if got := realOf(t, act, out); got != r {
					t.Errorf("over the limit to real %d, without a limit to %d", r, got)
				}
				if !inMap(t, d.objs.Conns, over) && !inMap(t, d.objs.Embryos, over) {
					t.Error("without a limit the flow got no entry")
				}
			case "refused":
				if verdict != xdpDrop {
					t.Fatalf("the flow over the limit: %s, want DROP", actionNames[verdict])
				}
				if g.FlowsRefused != 1 || g.FlowsUntracked != 0 {
					t.Errorf("refused %d, untracked %d; want 1 and 0", g.FlowsRefused, g.FlowsUntracked)
				}
			}
			// A flow with an entry goes on past the limit (its packets
			// do not count).
			p := ack(probe(first))
			if act, _ := runOut(t, d.program(), frame(t, p)); act != xdpTX {
				t.Errorf("an admitted flow's next packet: %s", actionNames[act])
			}
		})
	}
}

// TestNoNewFlowLimitAdmitsEveryFlow: with no limit (the default) the guard
// is not consulted and every new flow gets its entry.
func TestNoNewFlowLimitAdmitsEveryFlow(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 1)...)))
	for i := range 100 {
		p := ack(flowN(i, 80))
		if act, _ := runOut(t, d.program(), frame(t, p)); act != xdpTX {
			t.Fatalf("flow %d: %s", i, actionNames[act])
		}
		if !inMap(t, d.objs.Conns, p) {
			t.Fatalf("flow %d has no entry", i)
		}
	}
	if g := guard(t, d); g.Made != 0 {
		t.Errorf("the guard counted %d flows with no limit", g.Made)
	}
}
