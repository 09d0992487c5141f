package dataplane

import (
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/govs/govs/internal/sched"
)

// readEvents reads n events from r, failing after a generous deadline
// (the records are in the ring before runOut returns; the deadline only
// keeps a broken reader from hanging the test).
func readEvents(t *testing.T, r ConnEventReader, n int) []Conn {
	t.Helper()
	type result struct {
		c   Conn
		err error
	}
	ch := make(chan result, n)
	go func() {
		for range n {
			c, err := r.Read()
			ch <- result{c, err}
			if err != nil {
				return
			}
		}
	}()
	var out []Conn
	for range n {
		select {
		case res := <-ch:
			if res.err != nil {
				t.Fatalf("read event %d: %v", len(out), res.err)
			}
			out = append(out, res.c)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d events read", len(out), n)
		}
	}
	return out
}

// TestConnEventsRecordNewEntries: while a reader is open, every entry the
// program puts in the connection table (a mid-flow packet's, a UDP flow's,
// an embryonic flow promoted by its ACK) is recorded once with its real
// server; a SYN alone, a flow's later packets and anything while no reader
// is open are not.
func TestConnEventsRecordNewEntries(t *testing.T) {
	r1, r2 := real4(1, 1), real4(2, 1)
	d := openDP(t, state(
		svc4(sched.Maglev, 80, r1, r2),
		Service{Addr: vip4, Port: 53, Protocol: UDP, Scheduler: sched.Maglev, Reals: []Real{r1}},
	))
	send := func(p pktSpec) {
		t.Helper()
		if act, _ := runOut(t, d.program(), frame(t, p)); act != xdpTX {
			t.Fatalf("%+v: action %s", p, actionNames[act])
		}
	}
	before := flowN(1, 80)
	before.syn = false
	send(before) // no reader yet: not recorded

	ev, err := d.ConnEvents()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ConnEvents(); err == nil {
		t.Fatal("a second reader was opened")
	}
	mid := flowN(2, 80)
	mid.syn = false
	send(mid)
	send(mid) // its later packets add nothing
	send(before)
	udp := pktSpec{src: client4, dst: vip4, sport: 5353, dport: 53, proto: UDP}
	send(udp)
	hs := flowN(3, 80)
	send(hs) // the SYN: embryonic, not recorded
	hs.syn = false
	send(hs) // promoted

	got := readEvents(t, ev, 3)
	conns, err := d.Connections()
	if err != nil {
		t.Fatal(err)
	}
	realOfFlow := map[netip.AddrPort]netip.Addr{}
	for _, c := range conns {
		realOfFlow[c.Client] = c.Real
	}
	want := []pktSpec{mid, udp, hs}
	for i, p := range want {
		c := got[i]
		if c.Client != netip.AddrPortFrom(p.src, p.sport) || c.VIP != netip.AddrPortFrom(p.dst, p.dport) || c.Protocol != p.proto {
			t.Errorf("event %d: %+v, want flow %s:%d -> %s:%d %s", i, c, p.src, p.sport, p.dst, p.dport, p.proto)
		}
		if c.Real != realOfFlow[c.Client] || !c.Real.IsValid() {
			t.Errorf("event %d: real %s, the table says %s", i, c.Real, realOfFlow[c.Client])
		}
	}
	if ev.Lost() != 0 {
		t.Errorf("%d lost", ev.Lost())
	}
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Read(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	after := flowN(4, 80)
	after.syn = false
	send(after) // closed: not recorded

	// A new reader sees only what comes after it.
	ev2, err := d.ConnEvents()
	if err != nil {
		t.Fatal(err)
	}
	defer ev2.Close()
	last := flowN(5, 80)
	last.syn = false
	send(last)
	if c := readEvents(t, ev2, 1)[0]; c.Client != netip.AddrPortFrom(last.src, last.sport) {
		t.Fatalf("new reader's first event %+v, want flow %s:%d", c, last.src, last.sport)
	}
}
