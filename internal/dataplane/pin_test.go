package dataplane

import (
	"os"
	"path/filepath"
	"testing"

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
