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

func TestTrackerScans(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTracker(500*time.Millisecond, 30*time.Second)
	a, b, c := conn(0, t0), conn(1, t0), conn(2, t0)
	moved := b
	moved.Real = netip.MustParseAddr("198.18.0.12")
	busy := func(at time.Duration) dataplane.Conn { x := c; x.LastSeen = t0.Add(at); return x }
	for _, r := range []struct {
		name  string
		at    time.Duration
		conns []dataplane.Conn
		all   bool
		want  []int
	}{
		{"first scan: all fresh", 0, []dataplane.Conn{a, b}, false, []int{0, 1}},
		{"nothing changed", 10 * time.Second, []dataplane.Conn{a, b}, false, []int{}},
		{"a jitter below refreshAfter is no refresh", 40 * time.Second, []dataplane.Conn{conn(0, t0.Add(time.Millisecond)), b}, false, []int{}},
		{"a new one", 41 * time.Second, []dataplane.Conn{a, b, busy(0)}, false, []int{2}},
		{"traffic, but sent less than refreshEvery ago", 50 * time.Second, []dataplane.Conn{a, b, busy(49 * time.Second)}, false, []int{}},
		{"rescheduled to another real is fresh; and a refreshed one", 72 * time.Second, []dataplane.Conn{a, busy(71 * time.Second), moved}, false, []int{2, 1}},
		{"a dump sends everything", 73 * time.Second, []dataplane.Conn{a, moved, busy(71 * time.Second)}, true, []int{0, 1, 2}},
		{"gone entries are forgotten", 80 * time.Second, []dataplane.Conn{a}, false, []int{}},
		{"and fresh when they come back", 81 * time.Second, []dataplane.Conn{a, moved}, false, []int{1}},
	} {
		got := ports(tr.scan(r.conns, t0.Add(r.at), r.all))
		if !equalInts(got, r.want) {
			t.Fatalf("%s: sent %v, want %v", r.name, got, r.want)
		}
	}
	// What the program recorded and the sender sent is not sent again by
	// the next scan.
	d := conn(3, t0.Add(90*time.Second))
	if !tr.fresh(d) {
		t.Fatal("an unsent connection is not fresh")
	}
	tr.note(d, t0.Add(90*time.Second))
	if tr.fresh(d) {
		t.Fatal("a sent connection is still fresh")
	}
	if got := ports(tr.scan([]dataplane.Conn{a, moved, d}, t0.Add(91*time.Second), false)); len(got) != 0 {
		t.Fatalf("scan after the record: sent %v", got)
	}
	tr.reset()
	if got := tr.scan([]dataplane.Conn{a}, t0.Add(time.Hour), false); len(got) != 1 {
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
