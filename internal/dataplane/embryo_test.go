package dataplane

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/govs/govs/internal/sched"
)

// sendEstablished opens n flows as a client does (a SYN, then the ACK that
// completes the handshake) and returns the real server of each.
func sendEstablished(t *testing.T, d *Dataplane, n int, dport uint16) []int {
	t.Helper()
	got := sendFlows(t, d, n, dport)
	for i := range got {
		p := flowN(i, dport)
		p.syn = false
		act, out := runOut(t, d.program(), frame(t, p))
		if r := realOf(t, act, out); r != got[i] {
			t.Fatalf("flow %d: SYN to real %d, its ACK to %d", i, got[i], r)
		}
	}
	return got
}

func inMap(t *testing.T, m *ebpf.Map, p pktSpec) bool {
	t.Helper()
	k := balancerFlow{Src: addr16(p.src), Dst: addr16(p.dst), Sport: htons(p.sport), Dport: htons(p.dport), Proto: uint8(TCP), Family: family(p.dst)}
	var v balancerConn
	return m.Lookup(&k, &v) == nil
}

// TestEmbryonicFlowsArePromoted: a SYN's flow waits in the embryonic-flow
// table (listed as embryonic), a retransmitted SYN goes where the first
// went, and the client's next packet moves the flow to the connection
// table. A SYN reusing the tuple of a closed connection is scheduled
// afresh, and the stale entry does not shadow it once established.
func TestEmbryonicFlowsArePromoted(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 1, 1)...)))
	onOneCPU(t, func() {
		p := flowN(1, 80)
		act, out := runOut(t, d.program(), frame(t, p))
		r := realOf(t, act, out)
		if !inMap(t, d.objs.Embryos, p) || inMap(t, d.objs.Conns, p) {
			t.Fatal("a SYN's flow is not (only) in the embryonic-flow table")
		}
		conns, err := d.Connections()
		if err != nil || len(conns) != 1 || !conns[0].Embryonic {
			t.Fatalf("connections %+v (%v), want one embryonic", conns, err)
		}
		if act, out := runOut(t, d.program(), frame(t, p)); realOf(t, act, out) != r {
			t.Fatal("a retransmitted SYN went elsewhere")
		}
		ack := p
		ack.syn = false
		if act, out := runOut(t, d.program(), frame(t, ack)); realOf(t, act, out) != r {
			t.Fatal("the ACK went elsewhere")
		}
		if inMap(t, d.objs.Embryos, p) || !inMap(t, d.objs.Conns, p) {
			t.Fatal("the ACK did not move the flow to the connection table")
		}
		if conns, err := d.Connections(); err != nil || len(conns) != 1 || conns[0].Embryonic {
			t.Fatalf("connections %+v (%v), want one established", conns, err)
		}
		// The client closes; a new connection reuses the port.
		fin := ack
		fin.fin = true
		runOut(t, d.program(), frame(t, fin))
		act, out = runOut(t, d.program(), frame(t, p))
		r2 := realOf(t, act, out)
		if r2 == r {
			t.Fatalf("a SYN reusing a closed tuple went to real %d again (rr must move on)", r)
		}
		if inMap(t, d.objs.Conns, p) {
			t.Error("the closed connection's entry is still in the connection table")
		}
		if act, out := runOut(t, d.program(), frame(t, ack)); realOf(t, act, out) != r2 {
			t.Error("the new connection's ACK went to the old connection's real server")
		}
	})
}

// TestSYNFloodKeepsEstablishedFlows: a flood of SYNs from more distinct
// sources than the connection and embryonic-flow tables hold together,
// each SYN sent twice, leaves every established flow in place and on its
// real server. Checked: with SYNs going to the connection table (one LRU
// table for all flows, as before), idle established flows are evicted and
// rescheduled. Without the retransmissions the kernel's LRU itself spares
// them (entries looked up again are kept over ones never referenced), which
// is why the flood repeats each SYN as real clients and SYN floods do.
func TestSYNFloodKeepsEstablishedFlows(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1, 1, 1)...)))
	const established = 50
	want := sendEstablished(t, d, established, 80)

	flood := int(d.objs.Conns.MaxEntries()) + int(d.objs.Embryos.MaxEntries()) + 10000
	syn := frame(t, pktSpec{src: vip4, dst: vip4, sport: 1, dport: 80, syn: true})
	const srcOff, sportOff = 14 + 12, 14 + 20 // IPv4 source, TCP source port
	buf := make([]byte, len(syn))
	base := binary.BigEndian.Uint32([]byte{198, 18, 0, 0})
	for i := range flood {
		copy(buf, syn)
		// Sources in 198.18.0.0/15 (2^17 of them), then more source ports.
		binary.BigEndian.PutUint32(buf[srcOff:], base+uint32(i%(1<<17)))
		binary.BigEndian.PutUint16(buf[sportOff:], uint16(1024+i/(1<<17)))
		// Each SYN twice (a retransmission), so the flood's entries are
		// referenced like live ones and the kernel's LRU does not simply
		// evict them first.
		for range 2 {
			if _, err := d.program().Run(&ebpf.RunOptions{Data: buf}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range established {
		p := flowN(i, 80)
		if !inMap(t, d.objs.Conns, p) {
			t.Errorf("established flow %d evicted by the SYN flood", i)
			continue
		}
		p.syn = false
		if act, out := runOut(t, d.program(), frame(t, p)); realOf(t, act, out) != want[i] {
			t.Errorf("established flow %d moved off real %d", i, want[i])
		}
	}
}
