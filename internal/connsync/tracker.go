package connsync

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// flowKey identifies a connection across rounds.
type flowKey struct {
	proto       dataplane.Protocol
	client, vip netip.AddrPort
}

type sentInfo struct {
	real     netip.Addr
	lastSeen time.Time
	at       time.Time
}

// tracker decides which connections a round sends: new ones first, then
// those that carried traffic since they were last sent, then those not
// sent for a full-refresh period (so a director that starts late learns
// every connection). At most max per round; the rest wait for later
// rounds. It is pure: the caller passes the time.
type tracker struct {
	sent map[flowKey]sentInfo
	// refreshAfter is how far a connection's last-seen time must move
	// before it is sent again (the program moves it in steps of about a
	// second, and reading it jitters by microseconds).
	refreshAfter time.Duration
	fullEvery    time.Duration
}

func newTracker(refreshAfter, fullEvery time.Duration) *tracker {
	return &tracker{sent: map[flowKey]sentInfo{}, refreshAfter: refreshAfter, fullEvery: fullEvery}
}

// reset forgets what was sent, so the next round sends everything.
func (t *tracker) reset() { clear(t.sent) }

const (
	prioNew = iota
	prioRefreshed
	prioPeriodic
)

func (t *tracker) due(conns []dataplane.Conn, now time.Time, max int) []dataplane.Conn {
	out, _ := t.dueAll(conns, now, max)
	return out
}

// dueAll is due, and reports whether the round sends everything due: then
// every connection of conns has been sent within fullEvery (the
// caught-up marker's promise).
func (t *tracker) dueAll(conns []dataplane.Conn, now time.Time, max int) ([]dataplane.Conn, bool) {
	type cand struct {
		prio int
		c    dataplane.Conn
	}
	present := make(map[flowKey]bool, len(conns))
	var cands []cand
	for _, c := range conns {
		k := flowKey{c.Protocol, c.Client, c.VIP}
		present[k] = true
		s, ok := t.sent[k]
		switch {
		case !ok || s.real != c.Real:
			cands = append(cands, cand{prioNew, c})
		case c.LastSeen.Sub(s.lastSeen) >= t.refreshAfter:
			cands = append(cands, cand{prioRefreshed, c})
		case now.Sub(s.at) >= t.fullEvery:
			cands = append(cands, cand{prioPeriodic, c})
		}
	}
	for k := range t.sent {
		if !present[k] {
			delete(t.sent, k)
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(a.prio, b.prio) })
	all := len(cands) <= max
	if !all {
		cands = cands[:max]
	}
	out := make([]dataplane.Conn, len(cands))
	for i, cd := range cands {
		out[i] = cd.c
		t.sent[flowKey{cd.c.Protocol, cd.c.Client, cd.c.VIP}] = sentInfo{real: cd.c.Real, lastSeen: cd.c.LastSeen, at: now}
	}
	return out, all
}
