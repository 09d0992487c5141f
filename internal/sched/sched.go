// Package sched holds the scheduler logic that is computed in user space and
// only looked up by the data plane: the names of the schedulers govs knows
// and the weighted sequence that rr and wrr step through.
package sched

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is an LVS scheduler, as named by lb_algo / lvs_sched.
type Kind string

// Schedulers the data plane implements.
const (
	RoundRobin              Kind = "rr"
	WeightedRoundRobin      Kind = "wrr"
	LeastConnection         Kind = "lc"
	WeightedLeastConnection Kind = "wlc"
	SourceHash              Kind = "sh"
	DestinationHash         Kind = "dh"
	Maglev                  Kind = "mh"
	// ShortestExpectedDelay picks the fewest (active+1)/weight.
	ShortestExpectedDelay Kind = "sed"
	// NeverQueue picks an idle server (no active connection) first, in
	// configuration order, else as sed.
	NeverQueue Kind = "nq"
	// WeightedFailover picks the available server with the highest weight.
	WeightedFailover Kind = "fo"
	// WeightedOverflow picks the highest-weight server whose active
	// connections do not exceed its weight; none: no server.
	WeightedOverflow Kind = "ovf"
	// LocalityLeastConnection keeps a destination address on its server
	// until that one is overloaded, then moves it to the wlc choice.
	LocalityLeastConnection Kind = "lblc"
	// LocalityLeastConnectionReplicated keeps a set of servers per
	// destination address, growing it with the wlc choice under overload.
	LocalityLeastConnectionReplicated Kind = "lblcr"
	// TwoChoices picks the less loaded of two weighted random servers.
	TwoChoices Kind = "twos"
)

// all are the schedulers govs implements, in the order error messages
// list them.
var all = []Kind{RoundRobin, WeightedRoundRobin, LeastConnection, WeightedLeastConnection, SourceHash, DestinationHash, Maglev,
	ShortestExpectedDelay, NeverQueue, WeightedFailover, WeightedOverflow,
	LocalityLeastConnection, LocalityLeastConnectionReplicated, TwoChoices}

// ParseKind validates a scheduler name: every IPVS scheduler is one.
func ParseKind(name string) (Kind, error) {
	k := Kind(strings.ToLower(name))
	if slices.Contains(all, k) {
		return k, nil
	}
	names := make([]string, len(all))
	for i, a := range all {
		names[i] = string(a)
	}
	return "", fmt.Errorf("unknown scheduler %q (want %s)", name, strings.Join(names, ", "))
}

// ScansReals reports whether the data plane chooses by scanning the
// service's real servers and their connection counts at each new
// connection (lc, wlc, sed, nq, fo, ovf), rather than by a lookup table;
// such services have at most a compiled number of real servers.
func (k Kind) ScansReals() bool {
	switch k {
	case LeastConnection, WeightedLeastConnection, ShortestExpectedDelay, NeverQueue, WeightedFailover, WeightedOverflow,
		LocalityLeastConnection, LocalityLeastConnectionReplicated, TwoChoices:
		return true
	}
	return false
}

// Weighted reports whether the scheduler honours weights beyond "zero or not".
// rr gives every server with weight > 0 the same share, as IPVS does.
func (k Kind) Weighted() bool { return k != RoundRobin }

// MaxSequence bounds the length of a weighted sequence; weights whose sum
// (after dividing by their gcd) exceeds it are scaled down proportionally.
const MaxSequence = 1 << 16

// WeightedSequence returns the order in which weighted round robin visits
// servers: indices into weights, each appearing in proportion to its weight,
// interleaved the way IPVS's wrr does (the heaviest servers first in every
// pass, then servers join as the current weight drops). Servers with weight
// 0 never appear; the result is empty when every weight is 0.
func WeightedSequence(weights []uint32) []int {
	ws := normalise(weights)
	var total, maxW uint64
	for _, w := range ws {
		total += w
		maxW = max(maxW, w)
	}
	if total == 0 {
		return nil
	}
	seq := make([]int, 0, total)
	// Pass cw = maxW, maxW-1, ..., 1: a server is picked in every pass whose
	// current weight is at most its own weight, so it appears w times.
	for cw := maxW; cw >= 1; cw-- {
		for i, w := range ws {
			if w >= cw {
				seq = append(seq, i)
			}
		}
	}
	return seq
}

// normalise divides weights by their gcd and, if the sequence would still
// be longer than MaxSequence, scales them down keeping every non-zero weight
// at least 1.
func normalise(weights []uint32) []uint64 {
	ws := make([]uint64, len(weights))
	var g, total uint64
	for i, w := range weights {
		ws[i] = uint64(w)
		g = gcd(g, uint64(w))
	}
	if g == 0 {
		return ws
	}
	for i := range ws {
		ws[i] /= g
		total += ws[i]
	}
	if total <= MaxSequence {
		return ws
	}
	for i, w := range ws {
		if w > 0 {
			ws[i] = max(1, w*(MaxSequence-uint64(len(ws)))/total)
		}
	}
	return ws
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
