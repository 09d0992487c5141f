package status

import (
	"net/netip"
	"testing"
	"time"
)

// oneService is a snapshot at t with one service and one real server carrying
// the same counters.
func oneService(t time.Time, c Counters) Snapshot {
	return Snapshot{
		Time: t,
		Services: []Service{{
			Protocol: TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Scheduler: "rr",
			Stats: c,
			Reals: []Real{{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Weight: 1, Stats: c}},
		}},
	}
}

func TestEstimatorConvergesLikeIPVS(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := NewEstimator()
	// 100 connections/s, 1000 packets/s, 1 MB/s in; nothing out (DR).
	var c Counters
	var wantCPS = []uint64{0, 25, 44, 58, 68, 76}
	for i, want := range wantCPS {
		s := oneService(start.Add(time.Duration(i)*EstimatorInterval), c)
		e.Update(&s)
		if got := s.Services[0].Rates.CPS; got != want {
			t.Errorf("tick %d: service CPS = %d, want %d", i, got, want)
		}
		if got := s.Services[0].Reals[0].Rates.CPS; got != want {
			t.Errorf("tick %d: real CPS = %d, want %d", i, got, want)
		}
		if got := s.Services[0].Rates.OutBPS; got != 0 {
			t.Errorf("tick %d: OutBPS = %d, want 0", i, got)
		}
		c.Conns += 200
		c.InPkts += 2000
		c.InBytes += 2_000_000
	}
	// Long after the step the averages settle on the true rates.
	for i := len(wantCPS); i < 60; i++ {
		s := oneService(start.Add(time.Duration(i)*EstimatorInterval), c)
		e.Update(&s)
		r := s.Services[0].Rates
		if i == 59 && (r.CPS != 100 || r.InPPS != 1000 || r.InBPS != 1_000_000) {
			t.Errorf("settled rates = %+v, want 100 cps, 1000 pps, 1000000 bps", r)
		}
		c.Conns += 200
		c.InPkts += 2000
		c.InBytes += 2_000_000
	}
}

func TestEstimatorIgnoresSamplesCloserThanInterval(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := NewEstimator()
	s := oneService(start, Counters{})
	e.Update(&s)
	// A status request half a second later with many new connections must
	// not count as a sample (it would read as a 4x burst).
	s = oneService(start.Add(500*time.Millisecond), Counters{Conns: 1000})
	e.Update(&s)
	if got := s.Services[0].Rates.CPS; got != 0 {
		t.Fatalf("CPS after early sample = %d, want 0", got)
	}
	s = oneService(start.Add(2*time.Second), Counters{Conns: 1000})
	e.Update(&s)
	// 1000 connections over 2 s = 500/s; a quarter of that.
	if got := s.Services[0].Rates.CPS; got != 125 {
		t.Fatalf("CPS = %d, want 125", got)
	}
}

func TestEstimatorUsesElapsedTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := NewEstimator()
	s := oneService(start, Counters{})
	e.Update(&s)
	// A late tick: 4 s for 400 connections is 100/s, not 200/s.
	s = oneService(start.Add(4*time.Second), Counters{Conns: 400})
	e.Update(&s)
	if got := s.Services[0].Rates.CPS; got != 25 {
		t.Fatalf("CPS = %d, want 25", got)
	}
}

func TestEstimatorCounterResetAndRemoval(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := NewEstimator()
	s := oneService(start, Counters{Conns: 1000})
	e.Update(&s)
	// Counters went back (data plane restarted): no huge bogus rate.
	s = oneService(start.Add(2*time.Second), Counters{Conns: 10})
	e.Update(&s)
	if got := s.Services[0].Rates.CPS; got != 0 {
		t.Fatalf("CPS after reset = %d, want 0", got)
	}
	// The service disappears and comes back: it starts from scratch.
	empty := Snapshot{Time: start.Add(4 * time.Second)}
	e.Update(&empty)
	if len(e.services) != 0 || len(e.reals) != 0 {
		t.Fatalf("estimator kept %d services, %d reals after removal", len(e.services), len(e.reals))
	}
	s = oneService(start.Add(6*time.Second), Counters{Conns: 5000})
	e.Update(&s)
	if got := s.Services[0].Rates.CPS; got != 0 {
		t.Fatalf("CPS of a re-added service's first sample = %d, want 0", got)
	}
}
