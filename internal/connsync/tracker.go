package connsync

import (
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// flowKey identifies a connection across rounds. Tables of 100,000s of
// connections are held in the tracker, so its keys and values are small
// and free of pointers (the garbage collector does not scan such a map):
// addresses as 16 bytes, times as Unix nanoseconds.
type flowKey struct {
	client, vip  [16]byte
	cport, vport uint16
	proto        dataplane.Protocol
}

func keyOf(c dataplane.Conn) flowKey {
	return flowKey{client: c.Client.Addr().As16(), vip: c.VIP.Addr().As16(), cport: c.Client.Port(), vport: c.VIP.Port(), proto: c.Protocol}
}

// sentInfo is what was last sent of a connection.
type sentInfo struct {
	real     [16]byte
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
	return !ok || s.real != c.Real.As16()
}

// note records that c was sent at now.
func (t *tracker) note(c dataplane.Conn, now time.Time) {
	k := keyOf(c)
	t.sent[k] = sentInfo{real: c.Real.As16(), lastSeen: c.LastSeen.UnixNano(), at: now.UnixNano(), scan: t.sent[k].scan}
}

// begin starts a table scan: visit each connection of the table, then
// end.
func (t *tracker) begin() { t.scans++ }

// visit reports whether a scan sends c (every connection when all is set,
// as for a dump request; otherwise the fresh ones and the refreshed ones)
// and records it as seen, and as sent when it is.
func (t *tracker) visit(c dataplane.Conn, now time.Time, all bool) bool {
	k := keyOf(c)
	s, ok := t.sent[k]
	last, real, nowNs := c.LastSeen.UnixNano(), c.Real.As16(), now.UnixNano()
	send := all || !ok || s.real != real ||
		last-s.lastSeen >= int64(t.refreshAfter) && nowNs-s.at >= int64(t.refreshEvery)
	if send {
		s = sentInfo{real: real, lastSeen: last, at: nowNs}
	}
	s.scan = t.scans
	t.sent[k] = s
	return send
}

// end forgets the connections the scan did not see: they left the table.
func (t *tracker) end() {
	for k, s := range t.sent {
		if s.scan != t.scans {
			delete(t.sent, k)
		}
	}
}

// scan is begin, visit and end over a table held whole: it returns what
// to send, in conns' own array.
func (t *tracker) scan(conns []dataplane.Conn, now time.Time, all bool) []dataplane.Conn {
	t.begin()
	due := conns[:0] // written behind the reading position
	for _, c := range conns {
		if t.visit(c, now, all) {
			due = append(due, c)
		}
	}
	t.end()
	return due
}
