package dataplane

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

// bpffs returns a pin path on a private bpf filesystem.
func bpffs(t *testing.T) string {
	return filepath.Join(netnstest.MountBPFFS(t), "govs", "test")
}

// TestPinnedStateIsAdopted: a data plane released with its state pinned
// (as a crashed or restarting govs leaves it) is adopted by the next Open:
// the connections are still there, every flow keeps its real server, the
// same configuration applied again changes nothing, and a changed one
// keeps established flows where they were. Close removes the pins.
func TestPinnedStateIsAdopted(t *testing.T) {
	pin := bpffs(t)
	first, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	if first.Adopted() {
		t.Fatal("adopted state from an empty pin path")
	}
	// Ids a fresh start would not give: real 1 retired, real 4 added.
	if err := first.Apply(state(svc4(sched.RoundRobin, 80, real4(1, 1), real4(2, 1), real4(3, 1)))); err != nil {
		t.Fatal(err)
	}
	st := state(svc4(sched.RoundRobin, 80, real4(2, 1), real4(3, 1), real4(4, 1)))
	if err := first.Apply(st); err != nil {
		t.Fatal(err)
	}
	const flows = 30
	before := sendFlows(t, first, flows, 80)
	conns, err := first.Connections()
	if err != nil || len(conns) != flows {
		t.Fatalf("%d connections (%v), want %d", len(conns), err, flows)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}

	second, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if !second.Adopted() {
		t.Fatal("the pinned state was not adopted")
	}
	if conns, err := second.Connections(); err != nil || len(conns) != flows {
		t.Fatalf("after adopting: %d connections (%v), want %d", len(conns), err, flows)
	}
	// The program still knows every flow before any Apply ...
	if got := sendFlows(t, second, flows, 80); !equalInts(got, before) {
		t.Fatalf("flows moved after adopting:\n%v\n%v", before, got)
	}
	// ... and after the same state and a changed one (a fourth real).
	if err := second.Apply(st); err != nil {
		t.Fatal(err)
	}
	if err := second.Apply(state(svc4(sched.RoundRobin, 80, real4(2, 1), real4(3, 1), real4(4, 1), real4(5, 1)))); err != nil {
		t.Fatal(err)
	}
	if got := sendFlows(t, second, flows, 80); !equalInts(got, before) {
		t.Fatalf("flows moved after re-applying:\n%v\n%v", before, got)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(layoutDir(pin)); !os.IsNotExist(err) {
		t.Errorf("pins left after Close: %v", err)
	}
}

// TestPinnedOtherLayoutIsDropped: pins of another layout version are
// removed, not misread.
func TestPinnedOtherLayoutIsDropped(t *testing.T) {
	pin := bpffs(t)
	old := filepath.Join(pin, "layout-0")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Adopted() {
		t.Error("adopted another layout's pins")
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("old layout's pins kept: %v", err)
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

// TestPinnedStateOfAnotherLayoutIsMigrated: a build of another layout
// version (played by Options.layout) finds the pins of this one, carries
// their connection and persistence tables over by address (its real-server
// ids differ), and removes the old pins. Every established flow keeps its
// real server, and a new connection of a persistent client goes where its
// persistence entry says; a fresh data plane would have moved most of them.
func TestPinnedStateOfAnotherLayoutIsMigrated(t *testing.T) {
	pin := bpffs(t)
	old, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	persistent := func(rs ...Real) Service {
		s := svc4(sched.RoundRobin, 80, rs...)
		s.PersistenceTimeout = 300 * time.Second
		return s
	}
	if err := old.Apply(state(persistent(real4(1, 1), real4(2, 1), real4(3, 1)))); err != nil {
		t.Fatal(err)
	}
	const flows = 30
	// Established: embryonic flows (a SYN only) are not migrated.
	before := sendEstablished(t, old, flows, 80)
	if err := old.Release(); err != nil {
		t.Fatal(err)
	}

	// The next build: another layout, and the same servers in another
	// order (other ids), plus one more.
	next := state(persistent(real4(4, 1), real4(3, 1), real4(2, 1), real4(1, 1)))
	fresh := openDP(t, next)
	moved := 0
	for i, r := range sendFlows(t, fresh, flows, 80) {
		if r != before[i] {
			moved++
		}
	}
	if moved < flows/3 {
		t.Fatalf("without migration only %d of %d flows would move: the test cannot tell", moved, flows)
	}

	d, err := Open(Options{PinPath: pin, layout: layoutVersion + 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if !d.Adopted() {
		t.Error("Adopted is false after a migration")
	}
	if got := len(d.AdoptedReals()); got != 3 {
		t.Errorf("%d real servers known before the first apply, want the old layout's 3", got)
	}
	if err := d.Apply(next); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(layoutDir(pin)); !os.IsNotExist(err) {
		t.Errorf("the old layout's pins are still there: %v", err)
	}
	conns, err := d.Connections()
	if err != nil || len(conns) != flows {
		t.Fatalf("%d connections migrated (%v), want %d", len(conns), err, flows)
	}
	if got := sendFlows(t, d, flows, 80); !equalInts(got, before) {
		t.Errorf("flows moved across the migration (%d would without it):\nbefore %v\nafter  %v", moved, before, got)
	}
	// New connections (other source ports) of the same clients: the
	// persistence entries decide.
	for i := range flows {
		p := flowN(i, 80)
		p.sport += 7
		act, out := runOut(t, d.program(), frame(t, p))
		if r := realOf(t, act, out); r != before[i] {
			t.Errorf("client %v's new connection went to real %d, its persistence entry says %d", p.src, r, before[i])
		}
	}
}

// TestPinnedResizedTablesAreMigrated: a restart with other table sizes
// (govs_conn_table_size) cannot adopt the pinned maps; it migrates their
// connections into tables of the new size, and every flow keeps its real
// server.
func TestPinnedResizedTablesAreMigrated(t *testing.T) {
	pin := bpffs(t)
	old, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	st := state(svc4(sched.RoundRobin, 80, reals4(1, 1, 1)...))
	if err := old.Apply(st); err != nil {
		t.Fatal(err)
	}
	const flows = 30
	before := sendEstablished(t, old, flows, 80)
	if err := old.Release(); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Options{PinPath: pin, ConnTableSize: 4096, EmbryoTableSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if got := d.objs.Conns.MaxEntries(); got != 4096 {
		t.Fatalf("connection table of %d entries, want 4096", got)
	}
	if st, err := d.Stats(); err != nil || st.EmbryoTableSize != 2048 {
		t.Fatalf("embryonic-flow table size %d (%v), want 2048", st.EmbryoTableSize, err)
	}
	if !d.Adopted() {
		t.Error("the resized state was not migrated")
	}
	if err := d.Apply(st); err != nil {
		t.Fatal(err)
	}
	if conns, err := d.Connections(); err != nil || len(conns) != flows {
		t.Fatalf("%d connections after resizing (%v), want %d", len(conns), err, flows)
	}
	if got := sendFlows(t, d, flows, 80); !equalInts(got, before) {
		t.Errorf("flows moved across the resize:\nbefore %v\nafter  %v", before, got)
	}
}
