// Package maglev builds Maglev consistent-hashing lookup tables, following
// "Maglev: A Fast and Reliable Software Network Load Balancer" (Eisenbud et
// al., NSDI 2016), extended with weights.
//
// The table maps a flow hash (modulo the table size) to a backend. Tables
// depend only on the backends' IDs and weights, never on their order or on
// the process that built them, so two directors with the same configuration
// send the same flow to the same real server, and a change of one backend
// moves only about 1/N of the table.
package maglev

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
)

// DefaultSize is the default table size: a prime, large enough that each of
// a few hundred backends owns many slots (the paper uses 65537).
const DefaultSize = 65537

// MaxSize bounds the table size so a configuration typo cannot make the
// daemon allocate gigabytes.
const MaxSize = 1 << 24

// Empty marks a slot that no backend owns (every weight is 0).
const Empty = -1

// Backend is one entry of the table: a stable identifier (for a real server,
// its address and port) and a weight. Weight 0 means "no new flows".
type Backend struct {
	ID     string
	Weight uint32
}

// Errors returned by Build.
var (
	ErrSizeNotPrime = errors.New("table size is not a prime")
	ErrDuplicateID  = errors.New("duplicate backend id")
)

// Build returns a lookup table of size entries, each an index into
// backends or Empty. Slots are shared among backends in proportion to their
// weights.
func Build(backends []Backend, size uint64) ([]int, error) {
	if size < 2 || size > MaxSize {
		return nil, fmt.Errorf("build maglev table: size %d outside [2, %d]", size, MaxSize)
	}
	if !isPrime(size) {
		return nil, fmt.Errorf("build maglev table: size %d: %w", size, ErrSizeNotPrime)
	}
	// Fill in ID order so the result does not depend on the caller's order.
	order := make([]int, len(backends))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return backends[order[a]].ID < backends[order[b]].ID })
	for k := 1; k < len(order); k++ {
		if backends[order[k]].ID == backends[order[k-1]].ID {
			return nil, fmt.Errorf("build maglev table: %q: %w", backends[order[k]].ID, ErrDuplicateID)
		}
	}

	type cursor struct {
		index  int    // into backends
		weight uint64 // divided by the weights' gcd
		pos    uint64 // next candidate slot of the permutation
		skip   uint64
		credit uint64
	}
	var (
		cursors []cursor
		g       uint64
		maxW    uint64
	)
	for _, i := range order {
		w := uint64(backends[i].Weight)
		if w == 0 {
			continue
		}
		offset, skip := permutation(backends[i].ID, size)
		cursors = append(cursors, cursor{index: i, weight: w, pos: offset, skip: skip})
		g = gcd(g, w)
		maxW = max(maxW, w)
	}

	table := make([]int, size)
	for i := range table {
		table[i] = Empty
	}
	if len(cursors) == 0 {
		return table, nil
	}
	maxW /= g
	for i := range cursors {
		cursors[i].weight /= g
	}

	// Each round every backend earns credit equal to its weight and takes one
	// turn per maxW of credit, so turns (and so slots) follow the weights; with
	// equal weights this is the paper's plain round robin.
	// Which slots are taken, one bit each: the probe loop below reads it
	// for every candidate slot, and at 8 KiB for the default size it stays
	// in the L1 cache where the table (512 KiB) does not.
	taken := make([]uint64, (size+63)/64)
	var filled uint64
	for {
		for i := range cursors {
			c := &cursors[i]
			c.credit += c.weight
			if c.credit < maxW {
				continue
			}
			c.credit -= maxW
			// pos and skip are below size, so one subtraction is the
			// modulo (a division here was 88% of the build). Locals, so
			// that the probe loop keeps them in registers.
			pos, skip := c.pos, c.skip
			for taken[pos>>6]&(1<<(pos&63)) != 0 {
				if pos += skip; pos >= size {
					pos -= size
				}
			}
			taken[pos>>6] |= 1 << (pos & 63)
			table[pos] = c.index
			if pos += skip; pos >= size {
				pos -= size
			}
			c.pos = pos
			filled++
			if filled == size {
				return table, nil
			}
		}
	}
}

// permutation derives a backend's preference list (offset + k*skip mod size)
// from two independent hashes of its ID.
func permutation(id string, size uint64) (offset, skip uint64) {
	offset = hash64(id, 0x9e) % size
	skip = hash64(id, 0x5b)%(size-1) + 1
	return offset, skip
}

// hash64 is FNV-1a over a seed byte and the ID, finished with the
// splitmix64 mixer so that similar IDs (10.0.0.1:80, 10.0.0.2:80) land far
// apart. It is stable across processes, versions and architectures.
func hash64(id string, seed byte) uint64 {
	h := fnv.New64a()
	h.Write([]byte{seed})
	h.Write([]byte(id))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// NextPrime returns the smallest prime >= n, for callers that derive a table
// size from a backend count.
func NextPrime(n uint64) uint64 {
	if n <= 2 {
		return 2
	}
	for !isPrime(n) {
		n++
	}
	return n
}
