package state

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

var errRefused = errors.New("connection refused")

// step is one probe in a scripted run: its result, and what must follow.
type step struct {
	ok       bool
	wantNext float64 // seconds after t0
	wantUp   bool
	wantChg  bool
	wantRtry bool
}

func TestCheckerTiming(t *testing.T) {
	// Each probe completes `probe` seconds after it starts, so the next one
	// starts at the previous Next; timings are measured from completion,
	// as keepalived arms its timer when a check finishes.
	tests := []struct {
		name  string
		cfg   CheckerConfig
		probe float64
		steps []step
	}{
		{
			name:  "retry 1: one retry after delay_before_retry, then down; no retries while down",
			cfg:   CheckerConfig{Name: "TCP_CHECK", DelayLoop: 6 * time.Second, DelayBeforeRetry: 3 * time.Second, Retry: 1},
			probe: 0,
			steps: []step{
				{ok: true, wantNext: 6, wantUp: true},
				{ok: false, wantNext: 9, wantUp: true, wantRtry: true},
				{ok: false, wantNext: 15, wantUp: false, wantChg: true},
				{ok: false, wantNext: 21, wantUp: false},
				{ok: true, wantNext: 27, wantUp: true, wantChg: true},
			},
		},
		{
			name:  "recovery during retries resets the counter",
			cfg:   CheckerConfig{Name: "HTTP_GET", DelayLoop: 10 * time.Second, DelayBeforeRetry: 2 * time.Second, Retry: 2},
			probe: 0.5,
			steps: []step{
				{ok: false, wantNext: 2.5, wantUp: true, wantRtry: true},  // done at 0.5
				{ok: false, wantNext: 5, wantUp: true, wantRtry: true},    // started 2.5, done 3
				{ok: true, wantNext: 15.5, wantUp: true},                  // started 5, done 5.5
				{ok: false, wantNext: 18, wantUp: true, wantRtry: true},   // started 15.5, done 16: counter was reset
				{ok: false, wantNext: 20.5, wantUp: true, wantRtry: true}, // done 18.5
				{ok: false, wantNext: 31, wantUp: false, wantChg: true},   // done 21: third failure in a row
				{ok: true, wantNext: 41.5, wantUp: true, wantChg: true},   // done 31.5
				{ok: false, wantNext: 44, wantUp: true, wantRtry: true},   // done 42
				{ok: true, wantNext: 54.5, wantUp: true, wantChg: false},  // done 44.5
				{ok: true, wantNext: 65, wantUp: true},                    // done 55
			},
		},
		{
			name: "retry 0: first failure is down",
			cfg:  CheckerConfig{Name: "MISC_CHECK", DelayLoop: 5 * time.Second, DelayBeforeRetry: time.Second, Retry: 0},
			steps: []step{
				{ok: false, wantNext: 5, wantUp: false, wantChg: true},
				{ok: true, wantNext: 10, wantUp: true, wantChg: true},
			},
		},
		{
			name: "retry 3 takes three retries",
			cfg:  CheckerConfig{Name: "DNS_CHECK", DelayLoop: 5 * time.Second, DelayBeforeRetry: time.Second, Retry: 3},
			steps: []step{
				{ok: false, wantNext: 1, wantUp: true, wantRtry: true},
				{ok: false, wantNext: 2, wantUp: true, wantRtry: true},
				{ok: false, wantNext: 3, wantUp: true, wantRtry: true},
				{ok: false, wantNext: 8, wantUp: false, wantChg: true},
			},
		},
		{
			name: "alpha starts down; failures keep it down without retries; success brings it up",
			cfg:  CheckerConfig{Name: "TCP_CHECK", DelayLoop: 4 * time.Second, DelayBeforeRetry: time.Second, Retry: 2, Alpha: true},
			steps: []step{
				{ok: false, wantNext: 4, wantUp: false},
				{ok: false, wantNext: 8, wantUp: false},
				{ok: true, wantNext: 12, wantUp: true, wantChg: true},
				{ok: false, wantNext: 13, wantUp: true, wantRtry: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(tt.cfg)
			if c.Up() == tt.cfg.Alpha {
				t.Fatalf("initial Up() = %v with alpha %v", c.Up(), tt.cfg.Alpha)
			}
			start := t0
			for i, s := range tt.steps {
				done := start.Add(time.Duration(tt.probe * float64(time.Second)))
				res := Result{OK: s.ok}
				if !s.ok {
					res.Err = errRefused
				}
				o := c.Step(done, res)
				if !o.Next.Equal(at(s.wantNext)) || o.Up != s.wantUp || o.Changed != s.wantChg || o.Retrying != s.wantRtry {
					t.Fatalf("step %d (ok=%v at %v): got next=%v up=%v changed=%v retrying=%v (%s); want next=%v up=%v changed=%v retrying=%v",
						i, s.ok, done.Sub(t0), o.Next.Sub(t0), o.Up, o.Changed, o.Retrying, o.Reason,
						at(s.wantNext).Sub(t0), s.wantUp, s.wantChg, s.wantRtry)
				}
				if o.Changed && o.Reason == "" {
					t.Errorf("step %d: change without a reason", i)
				}
				start = o.Next
			}
		})
	}
}

func TestCheckerDownReasonNamesCheckAndError(t *testing.T) {
	c := NewChecker(CheckerConfig{Name: "HTTP_GET 198.18.0.2:80", DelayLoop: time.Second, Retry: 1})
	c.Step(at(0), Result{Err: errRefused})
	o := c.Step(at(1), Result{Err: errors.New("status 503 not in 200-299")})
	want := "HTTP_GET 198.18.0.2:80 failed after 1 retries: status 503 not in 200-299"
	if !o.Changed || o.Reason != want {
		t.Fatalf("reason = %q, want %q", o.Reason, want)
	}
	if c.LastErr() == nil {
		t.Fatal("LastErr() = nil after a failure")
	}
}

func TestCheckerFirstSpreadsOverWarmup(t *testing.T) {
	c := NewChecker(CheckerConfig{Name: "x", DelayLoop: time.Second, Warmup: 10 * time.Second})
	for _, tc := range []struct {
		r    float64
		want time.Duration
	}{{0, 0}, {0.5, 5 * time.Second}, {0.999, 9990 * time.Millisecond}, {-1, 0}, {1, 0}} {
		if got := c.First(t0, tc.r).Sub(t0); got != tc.want {
			t.Errorf("First(r=%v) = %v, want %v", tc.r, got, tc.want)
		}
	}
	noWarmup := NewChecker(CheckerConfig{Name: "x", DelayLoop: time.Second})
	if got := noWarmup.First(t0, 0.7); !got.Equal(t0) {
		t.Errorf("warmup 0: First = %v, want now", got.Sub(t0))
	}
}

// TestCheckerStats: every result is counted, with its latency in the
// histogram; transitions count the changes of state, not the retries.
func TestCheckerStats(t *testing.T) {
	c := NewChecker(CheckerConfig{Name: "TCP_CHECK", DelayLoop: time.Second, DelayBeforeRetry: time.Second, Retry: 1})
	if c.Stats().Checked {
		t.Fatal("checked before any result")
	}
	now := time.Unix(0, 0)
	results := []struct {
		ok      bool
		latency time.Duration
	}{{true, 500 * time.Microsecond}, {false, 3 * time.Second}, {false, 2 * time.Second}, {true, 20 * time.Millisecond}, {false, 10 * time.Second}}
	for _, r := range results {
		c.Step(now, Result{OK: r.ok, Latency: r.latency})
	}
	st := c.Stats()
	// up, retry, down (1), up (2), retry: two transitions.
	if !st.Checked || st.Successes != 2 || st.Failures != 3 || st.Transitions != 2 || st.LastLatency != 10*time.Second {
		t.Fatalf("stats %+v", st)
	}
	want := []uint64{1, 1, 2, 2, 2, 2, 4} // <=1ms, 5ms, 25ms, 100ms, 500ms, 1s, 5s
	for i, n := range want {
		if st.LatencyCounts[i] != n {
			t.Errorf("bucket %s: %d, want %d", LatencyBuckets[i], st.LatencyCounts[i], n)
		}
	}
	if st.LatencySum != 500*time.Microsecond+15*time.Second+20*time.Millisecond {
		t.Errorf("sum %s", st.LatencySum)
	}
}
