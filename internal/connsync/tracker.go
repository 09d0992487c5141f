package connsync

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// flowKey identifies a connection across rounds.
type flowKey struct {
	proto       dataplane.Protocol
	client, vip netip.AddrPort
}

func keyOf(c dataplane.Conn) flowKey { return flowKey{c.Protocol, c.Client, c.VIP} }

// sentInfo is what was last sent of a connection. Times are Unix
// nanoseconds: a table of 100,000 connections is held here, so each
// entry is kept small.
type sentInfo struct {
	real     netip.Addr
	lastSeen int64
	at       int64
	// scan is the number of the last table scan that saw the connection;
	// entries a scan did not see are gone from the table.
	scan uint32
}

// tracker remembers what the sender sent, so that a table scan sends only
// what the receivers lack: connections not sent yet (the program's
// records were lost, or the director just became MASTER) or sent with
// another real server, and those that carried traffic since they were
// last sent, at most once per refreshEvery. It is pure: the caller passes
// the time.
type tracker struct {
	sent map[flowKey]sentInfo
	// refreshAfter is how far a connection's last-seen time must move
	// before it counts as refreshed (the program moves it in steps of about
	// a second, and reading it jitters by microseconds).
	refreshAfter time.Duration
	// refreshEvery bounds how often a busy connection is sent again: often
	// enough that it never times out on a receiver, rarely enough that a
	// table of busy connections costs little.
	refreshEvery time.Duration
	scans        uint32
}

func newTracker(refreshAfter, refreshEvery time.Duration) *tracker {
	return &tracker{sent: map[flowKey]sentInfo{}, refreshAfter: refreshAfter, refreshEvery: refreshEvery}
}

// reset forgets what was sent, so the next scan sends everything.
func (t *tracker) reset() { clear(t.sent) }

// fresh reports whether c is news to the receivers: not sent yet, or sent
// with another real server. A connection the program just recorded is
// sent when it is.
func (t *tracker) fresh(c dataplane.Conn) bool {
	s, ok := t.sent[keyOf(c)]
	return !ok || s.real != c.Real
}

// note records that c was sent at now.
func (t *tracker) note(c dataplane.Conn, now time.Time) {
	k := keyOf(c)
	t.sent[k] = sentInfo{real: c.Real, lastSeen: c.LastSeen.UnixNano(), at: now.UnixNano(), scan: t.sent[k].scan}
}

// scan takes a whole table: it returns what to send (every connection
// when all is set, as for a dump request; otherwise the fresh ones first,
// then the refreshed ones), records them as sent, and forgets connections
// no longer in the table.
func (t *tracker) scan(conns []dataplane.Conn, now time.Time, all bool) []dataplane.Conn {
	t.scans++
	var fresh, refreshed []dataplane.Conn
	nowNs := now.UnixNano()
	for _, c := range conns {
		k := keyOf(c)
		s, ok := t.sent[k]
		last := c.LastSeen.UnixNano()
		switch {
		case !ok || s.real != c.Real:
			fresh = append(fresh, c)
		case all, last-s.lastSeen >= int64(t.refreshAfter) && nowNs-s.at >= int64(t.refreshEvery):
			refreshed = append(refreshed, c)
		default:
			s.scan = t.scans
			t.sent[k] = s
			continue
		}
		t.sent[k] = sentInfo{real: c.Real, lastSeen: last, at: nowNs, scan: t.scans}
	}
	for k, s := range t.sent {
		if s.scan != t.scans {
			delete(t.sent, k)
		}
	}
	return append(fresh, refreshed...)
}
