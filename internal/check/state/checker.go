// Package state holds the pure health-check state machines: one per checker
// (retry counting, delay_before_retry, alpha), and one per virtual server that
// aggregates its real servers (all checkers must pass, inhibit_on_failure,
// misc_dynamic weights) and applies quorum, hysteresis, sorry_server and omega.
//
// Nothing here touches the network, the clock or processes: callers pass the
// current time and each probe's result, and get back the time of the next
// probe and the events to act on. That keeps keepalived's timing semantics
// testable with a fake clock.
package state

import (
	"fmt"
	"time"
)

// Result is the outcome of one probe.
type Result struct {
	// OK is true when the probe succeeded.
	OK bool
	// Err says why the probe failed (nil when OK).
	Err error
	// Weight is the weight asked for by a misc_dynamic script (exit code - 2);
	// it only counts when HasWeight is set. A dynamic script that exits 0
	// reports OK without a weight, which restores the configured weight.
	Weight    int
	HasWeight bool
	// Latency is how long the probe took (0: not measured).
	Latency time.Duration
}

// LatencyBuckets are the upper bounds of the probe latency histogram.
var LatencyBuckets = []time.Duration{time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond,
	100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second}

// Stats count what a checker's probes found, for metrics.
type Stats struct {
	// Checked is set once the checker has a result.
	Checked bool
	// Successes and Failures count probe results; Transitions counts the
	// times the checker went up or down.
	Successes, Failures, Transitions uint64
	// LastLatency is the latest probe's duration.
	LastLatency time.Duration
	// LatencyCounts[i] counts probes that took at most LatencyBuckets[i]
	// (cumulative, as Prometheus histograms are); LatencySum adds them up.
	LatencyCounts []uint64
	LatencySum    time.Duration
}

// CheckerConfig is the resolved timing of one checker (defaults already applied
// by the caller, see check.Spec).
type CheckerConfig struct {
	// Name identifies the checker in logs and events, e.g. "TCP_CHECK 198.18.0.2:80".
	Name             string
	DelayLoop        time.Duration
	DelayBeforeRetry time.Duration
	// Retry is how many extra probes a failing check of an up server gets
	// before the checker is declared down.
	Retry int
	// Warmup is the upper bound of the random delay before the first probe.
	Warmup time.Duration
	// Alpha makes the checker start down, so the server waits for a success.
	Alpha bool
}

// Checker is one checker's state. The zero value is not usable; use NewChecker.
type Checker struct {
	cfg     CheckerConfig
	up      bool
	hasRun  bool
	retryIt int
	// weight is the last misc_dynamic weight reported while up (valid if dynamic).
	weight  int
	dynamic bool
	lastErr error
	stats   Stats
}

// Outcome is what a probe result changed for one checker.
type Outcome struct {
	// Next is when the next probe is due.
	Next time.Time
	// Changed is set when the checker went up or down.
	Changed bool
	// Up is the checker's state after this result.
	Up bool
	// Retrying is set when the failure was absorbed by a retry.
	Retrying bool
	// WeightChanged is set when a misc_dynamic weight was set or cleared.
	WeightChanged bool
	// Reason describes the result that caused the change.
	Reason string
	// FirstRun is set for the checker's first result.
	FirstRun bool
}

// NewChecker returns a checker in its initial state: up, unless alpha.
func NewChecker(cfg CheckerConfig) *Checker {
	return &Checker{cfg: cfg, up: !cfg.Alpha}
}

// Config returns the checker's configuration.
func (c *Checker) Config() CheckerConfig { return c.cfg }

// Up reports whether the checker currently passes.
func (c *Checker) Up() bool { return c.up }

// Stats returns the checker's counters (a copy).
func (c *Checker) Stats() Stats {
	s := c.stats
	s.Checked = c.hasRun
	s.LatencyCounts = append([]uint64(nil), c.stats.LatencyCounts...)
	return s
}

func (c *Checker) count(res Result) {
	if res.OK {
		c.stats.Successes++
	} else {
		c.stats.Failures++
	}
	if c.stats.LatencyCounts == nil {
		c.stats.LatencyCounts = make([]uint64, len(LatencyBuckets))
	}
	c.stats.LastLatency = res.Latency
	c.stats.LatencySum += res.Latency
	for i, b := range LatencyBuckets {
		if res.Latency <= b {
			c.stats.LatencyCounts[i]++
		}
	}
}

// LastErr is the error of the latest failed probe (nil after a success).
func (c *Checker) LastErr() error { return c.lastErr }

// dynamicWeight returns the misc_dynamic weight in force, if any.
func (c *Checker) dynamicWeight() (int, bool) { return c.weight, c.dynamic }

// First returns when the first probe is due: a random point in [0, Warmup)
// after now, so that thousands of checkers loaded together do not fire
// together. r is a random number in [0, 1).
func (c *Checker) First(now time.Time, r float64) time.Time {
	if r < 0 || r >= 1 {
		r = 0
	}
	return now.Add(time.Duration(float64(c.cfg.Warmup) * r))
}

// Step applies the result of a probe that completed at now.
//
// keepalived's rules: a success (or the last allowed failure) resets the retry
// counter and the next probe comes after delay_loop. A failure of an up
// checker that still has retries left is retried after delay_before_retry and
// does not change the state. A checker that is already down is probed every
// delay_loop without retries. Before its first result an alpha checker is
// down, and one failure keeps it down.
func (c *Checker) Step(now time.Time, res Result) Outcome {
	st := Outcome{Next: now.Add(c.cfg.DelayLoop), FirstRun: !c.hasRun}
	c.count(res)
	if res.OK {
		c.lastErr = nil
	} else {
		c.lastErr = res.Err
		if c.lastErr == nil {
			c.lastErr = fmt.Errorf("check failed")
		}
	}
	switch {
	case res.OK || ((c.up || !c.hasRun) && c.retryIt >= c.cfg.Retry):
		c.retryIt = 0
		if res.OK {
			if res.HasWeight != c.dynamic || (res.HasWeight && res.Weight != c.weight) {
				st.WeightChanged = true
			}
			c.dynamic, c.weight = res.HasWeight, res.Weight
			if !c.up {
				c.up = true
				st.Changed = true
				st.Reason = fmt.Sprintf("%s succeeded", c.cfg.Name)
			}
		} else {
			if c.dynamic {
				st.WeightChanged = true
			}
			c.dynamic, c.weight = false, 0
			if c.up {
				c.up = false
				st.Changed = true
				if c.cfg.Retry > 0 && c.hasRun {
					st.Reason = fmt.Sprintf("%s failed after %d retries: %v", c.cfg.Name, c.cfg.Retry, c.lastErr)
				} else {
					st.Reason = fmt.Sprintf("%s failed: %v", c.cfg.Name, c.lastErr)
				}
			}
		}
	case c.up:
		c.retryIt++
		st.Next = now.Add(c.cfg.DelayBeforeRetry)
		st.Retrying = true
		st.Reason = fmt.Sprintf("%s failed (retry %d of %d): %v", c.cfg.Name, c.retryIt, c.cfg.Retry, c.lastErr)
	}
	c.hasRun = true
	if st.Changed {
		c.stats.Transitions++
	}
	st.Up = c.up
	return st
}
