package announce

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

var (
	vipA = netip.MustParseAddr("198.18.0.100")
	vipB = netip.MustParseAddr("2001:db8::100")
)

// step is one input to the machine: at offset At from the start, VIP A's
// readiness, and what must follow.
type step struct {
	At     time.Duration
	A      Reason
	Want   bool          // A announced after the step
	Wake   time.Duration // the decision's Wake, as an offset (0: none)
	Reason Reason        // A's reported reason
}

// TestMachine walks VIP A through gating, withdrawal reasons and damping
// on an injected clock.
func TestMachine(t *testing.T) {
	policy := Policy{HoldDown: time.Second, MaxHoldDown: 4 * time.Second, Stable: 10 * time.Second, MaxUpdates: 4, Window: 30 * time.Second}
	s := time.Second
	tests := []struct {
		name  string
		steps []step
	}{
		{"gated until ready, then announced at once", []step{
			{At: 0, A: ChecksPending, Reason: ChecksPending},
			{At: 0, A: SyncPending, Reason: SyncPending},
			{At: s, A: Ready, Want: true},
		}},
		{"pending checks after a reload do not withdraw", []step{
			{At: 0, A: Ready, Want: true},
			{At: s, A: ChecksPending, Want: true, Reason: ChecksPending},
			{At: 2 * s, A: SyncPending, Want: true, Reason: SyncPending},
		}},
		{"every health reason withdraws at once", []step{
			{At: 0, A: Ready, Want: true},
			{At: s, A: QuorumLost, Reason: QuorumLost},
		}},
		{"a flap is held down, the hold doubles up to the cap", []step{
			{At: 0, A: Ready, Want: true},
			{At: s, A: NoUsableReal, Reason: NoUsableReal},
			// Held for 1 s from the withdrawal.
			{At: 1500 * time.Millisecond, A: Ready, Wake: 2 * s},
			{At: 2 * s, A: Ready, Want: true},
			{At: 3 * s, A: QuorumLost, Reason: QuorumLost},
			{At: 4 * s, A: Ready, Wake: 5 * s}, // second flap: 2 s
			{At: 5 * s, A: Ready, Want: true},
			{At: 6 * s, A: InterfaceDown, Reason: InterfaceDown},
			{At: 9 * s, A: Ready, Wake: 10 * s}, // third: 4 s
			{At: 10 * s, A: Ready, Want: true},
		}},
		{"a VIP stable for Stable starts over at HoldDown", []step{
			{At: 0, A: Ready, Want: true},
			{At: s, A: QuorumLost, Reason: QuorumLost},
			{At: 2 * s, A: Ready, Want: true},
			{At: 3 * s, A: QuorumLost, Reason: QuorumLost},
			{At: 5 * s, A: Ready, Want: true},
			{At: 16 * s, A: NoDataPlane, Reason: NoDataPlane},
			{At: 16500 * time.Millisecond, A: Ready, Wake: 17 * s},
		}},
		{"a drain is not a flap: undrain announces at once", []step{
			{At: 0, A: Ready, Want: true},
			{At: 100 * time.Millisecond, A: Drained, Reason: Drained},
			{At: 200 * time.Millisecond, A: Ready, Want: true},
			{At: 300 * time.Millisecond, A: Drained, Reason: Drained},
			{At: 400 * time.Millisecond, A: Ready, Want: true},
		}},
		{"at most MaxUpdates announcements in Window", []step{
			{At: 0, A: Ready, Want: true},
			{At: s, A: Drained, Reason: Drained},
			{At: 2 * s, A: Ready, Want: true},
			{At: 3 * s, A: Drained, Reason: Drained},
			{At: 4 * s, A: Ready, Want: true},
			{At: 5 * s, A: Drained, Reason: Drained},
			{At: 6 * s, A: Ready, Want: true},
			{At: 7 * s, A: Drained, Reason: Drained},
			// The fifth in 30 s waits for the first to leave the window.
			{At: 8 * s, A: Ready, Wake: 30 * s},
			{At: 30 * s, A: Ready, Want: true},
		}},
		{"withdrawals are never capped", []step{
			{At: 0, A: Ready, Want: true},
			{At: s, A: Drained, Reason: Drained},
			{At: 2 * s, A: Ready, Want: true},
			{At: 3 * s, A: Drained, Reason: Drained},
			{At: 4 * s, A: Ready, Want: true},
			{At: 5 * s, A: Drained, Reason: Drained},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
			m := New(policy)
			for i, st := range tt.steps {
				now := start.Add(st.At)
				d := m.Step(now, map[netip.Addr]Reason{vipA: st.A})
				got := slices.Contains(d.Announce, vipA)
				if got != st.Want {
					t.Fatalf("step %d (+%v, %v): announced %v, want %v", i, st.At, st.A, got, st.Want)
				}
				var wantWake time.Time
				if st.Wake > 0 {
					wantWake = start.Add(st.Wake)
				}
				if !d.Wake.Equal(wantWake) {
					t.Fatalf("step %d (+%v): wake %v, want %v", i, st.At, d.Wake, wantWake)
				}
				if len(d.VIPs) != 1 || d.VIPs[0].Reason != st.Reason || d.VIPs[0].Announced != got {
					t.Fatalf("step %d: VIPs %+v, want reason %v", i, d.VIPs, st.Reason)
				}
			}
		})
	}
}

// TestMachineVIPsAreIndependent: one VIP's flaps do not hold another, a
// VIP that leaves the configuration is withdrawn and comes back unheld,
// and Changed reports exactly the steps that change the announcements.
func TestMachineVIPsAreIndependent(t *testing.T) {
	start := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	m := New(Policy{})
	d := m.Step(start, map[netip.Addr]Reason{vipA: Ready, vipB: Ready})
	if !slices.Equal(d.Announce, []netip.Addr{vipA, vipB}) || !d.Changed {
		t.Fatalf("first step: %+v", d)
	}
	if d = m.Step(start, map[netip.Addr]Reason{vipA: Ready, vipB: Ready}); d.Changed {
		t.Fatal("the same input changed the announcements")
	}
	d = m.Step(start.Add(time.Second), map[netip.Addr]Reason{vipA: QuorumLost, vipB: Ready})
	if !slices.Equal(d.Announce, []netip.Addr{vipB}) || !d.Changed {
		t.Fatalf("A failed: %+v", d)
	}
	d = m.Step(start.Add(1100*time.Millisecond), map[netip.Addr]Reason{vipA: Ready, vipB: Ready})
	if !slices.Equal(d.Announce, []netip.Addr{vipB}) || d.Changed || !d.Wake.Equal(start.Add(2*time.Second)) {
		t.Fatalf("A held down: %+v", d)
	}
	// A leaves the configuration and comes back: no hold.
	m.Step(start.Add(1200*time.Millisecond), map[netip.Addr]Reason{vipB: Ready})
	d = m.Step(start.Add(1300*time.Millisecond), map[netip.Addr]Reason{vipA: Ready, vipB: Ready})
	if !slices.Equal(d.Announce, []netip.Addr{vipA, vipB}) || !d.Changed {
		t.Fatalf("A back in the configuration: %+v", d)
	}
	d = m.Step(start.Add(1400*time.Millisecond), map[netip.Addr]Reason{vipA: Ready})
	if !slices.Equal(d.Announce, []netip.Addr{vipA}) || !d.Changed {
		t.Fatalf("B removed: %+v", d)
	}
}

func TestReasonNames(t *testing.T) {
	for r := Ready; r <= Drained; r++ {
		if r.String() == "unknown" || r.String() == "" {
			t.Errorf("reason %d has no name", r)
		}
	}
}
