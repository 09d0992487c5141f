package connsync

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

func conn(i int, lastSeen time.Time) dataplane.Conn {
	return dataplane.Conn{Protocol: dataplane.TCP, Client: netip.AddrPortFrom(netip.MustParseAddr("198.19.0.1"), uint16(1000+i)),
		VIP: netip.MustParseAddrPort("203.0.113.1:80"), Real: netip.MustParseAddr("198.18.0.11"), LastSeen: lastSeen}
}

func ports(cs []dataplane.Conn) []int {
	out := make([]int, len(cs))
	for i, c := range cs {
		out[i] = int(c.Client.Port()) - 1000
	}
	return out
}

func TestTrackerRounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTracker(500*time.Millisecond, 5*time.Second)
	tick := 200 * time.Millisecond
	a, b, c := conn(0, t0), conn(1, t0), conn(2, t0)
	moved := b
	moved.Real = netip.MustParseAddr("198.18.0.12")
	busy := c
	busy.LastSeen = t0.Add(time.Second)
	for _, r := range []struct {
		name  string
		at    time.Duration
		conns []dataplane.Conn
		max   int
		want  []int
	}{
		{"first round: all new", 0, []dataplane.Conn{a, b}, 10, []int{0, 1}},
		{"nothing changed", tick, []dataplane.Conn{a, b}, 10, []int{}},
		{"a jitter below refreshAfter is no refresh", 2 * tick, []dataplane.Conn{conn(0, t0.Add(time.Millisecond)), b}, 10, []int{}},
		{"cap: new before refreshed", 3 * tick, []dataplane.Conn{a, b, busy}, 1, []int{2}},
		{"the rest next round", 4 * tick, []dataplane.Conn{a, b, busy}, 10, []int{}},
		{"rescheduled to another real counts as new", 5 * tick, []dataplane.Conn{a, moved, busy}, 10, []int{1}},
		{"refreshed", 6 * tick, []dataplane.Conn{conn(0, t0.Add(time.Second)), moved, busy}, 10, []int{0}},
		{"periodic full refresh, bounded", 5*time.Second + 5*tick, []dataplane.Conn{conn(0, t0.Add(time.Second)), moved, busy}, 2, []int{1, 2}},
		{"gone entries are forgotten", 5*time.Second + 5*tick, []dataplane.Conn{conn(0, t0.Add(time.Second))}, 10, []int{}},
		{"and new when they come back", 5*time.Second + 5*tick, []dataplane.Conn{conn(0, t0.Add(time.Second)), moved}, 10, []int{1}},
	} {
		got := ports(tr.due(r.conns, t0.Add(r.at), r.max))
		if len(got) != len(r.want) || (len(got) > 0 && !equalInts(got, r.want)) {
			t.Fatalf("%s: sent %v, want %v", r.name, got, r.want)
		}
	}
	tr.reset()
	if got := tr.due([]dataplane.Conn{a}, t0.Add(time.Minute), 10); len(got) != 1 {
		t.Fatalf("after reset: sent %d, want 1", len(got))
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
