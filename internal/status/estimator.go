package status

import (
	"math"
	"sync"
	"time"
)

// EstimatorInterval is how often the estimator samples counters, the same
// two seconds as the kernel's IPVS estimator.
const EstimatorInterval = 2 * time.Second

// Estimator turns cumulative counters into per-second rates the way the IPVS
// estimator (net/netfilter/ipvs/ip_vs_est.c) does: every two seconds it takes
// the counters' growth over the interval as a rate sample and moves an
// exponentially weighted moving average a quarter of the way towards it
// (avg += (sample - avg) / 4). A step change therefore shows up as 25 %, 44 %,
// 58 %, ... of its size on successive samples and is within 10 % of it after
// eight samples (16 seconds).
//
// Two differences from the kernel, both deliberate: the kernel keeps the
// averages in fixed point and assumes each tick is exactly two seconds apart,
// while Estimator uses floating point and divides by the time that actually
// passed between samples, so a late tick does not read as a burst. Rates are
// reported rounded to the nearest integer.
//
// Estimator is driven by snapshot times, not a clock of its own: call Update
// (or Observe) with each new snapshot; samples closer together than
// EstimatorInterval are ignored, so it is safe to call on every status
// request as well as from a ticker, from any goroutine.
type Estimator struct {
	mu       sync.Mutex
	last     time.Time
	services map[ServiceKey]*estimate
	reals    map[RealKey]*estimate
}

// estimate is the state of one estimator: the counters at the last sample
// and the smoothed rates.
type estimate struct {
	last                              Counters
	cps, inPPS, outPPS, inBPS, outBPS float64
	seen                              bool
}

// NewEstimator returns an estimator with no history.
func NewEstimator() *Estimator {
	return &Estimator{
		services: map[ServiceKey]*estimate{},
		reals:    map[RealKey]*estimate{},
	}
}

// Update samples the snapshot's counters (see Observe) and then writes the
// current rates into it (see Fill).
func (e *Estimator) Update(s *Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observe(*s)
	e.fill(s)
}

// Observe takes a sample from the snapshot if at least EstimatorInterval has
// passed since the previous one. The first sample of a service or real server
// only records its counters: a rate needs two. Services and real servers
// missing from the snapshot are forgotten, as the kernel drops an estimator
// with its service or destination.
func (e *Estimator) Observe(s Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observe(s)
}

func (e *Estimator) observe(s Snapshot) {
	if !e.last.IsZero() && s.Time.Sub(e.last) < EstimatorInterval {
		return
	}
	dt := s.Time.Sub(e.last).Seconds()
	first := e.last.IsZero()
	e.last = s.Time

	liveSvc := make(map[ServiceKey]bool, len(s.Services))
	liveReal := map[RealKey]bool{}
	for i := range s.Services {
		svc := &s.Services[i]
		sk := svc.Key()
		liveSvc[sk] = true
		e.sample(e.service(sk), svc.Stats, dt, first)
		for j := range svc.Reals {
			r := &svc.Reals[j]
			rk := RealKey{Service: sk, Addr: r.Addr, Port: r.Port}
			liveReal[rk] = true
			e.sample(e.real(rk), r.Stats, dt, first)
		}
	}
	for k := range e.services {
		if !liveSvc[k] {
			delete(e.services, k)
		}
	}
	for k := range e.reals {
		if !liveReal[k] {
			delete(e.reals, k)
		}
	}
}

// Fill writes the current rates into every service and real server of the
// snapshot; those the estimator has not seen get zero rates.
func (e *Estimator) Fill(s *Snapshot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fill(s)
}

func (e *Estimator) fill(s *Snapshot) {
	for i := range s.Services {
		svc := &s.Services[i]
		sk := svc.Key()
		svc.Rates = e.services[sk].rates()
		for j := range svc.Reals {
			r := &svc.Reals[j]
			svc.Reals[j].Rates = e.reals[RealKey{Service: sk, Addr: r.Addr, Port: r.Port}].rates()
		}
	}
}

func (e *Estimator) service(k ServiceKey) *estimate {
	est, ok := e.services[k]
	if !ok {
		est = &estimate{}
		e.services[k] = est
	}
	return est
}

func (e *Estimator) real(k RealKey) *estimate {
	est, ok := e.reals[k]
	if !ok {
		est = &estimate{}
		e.reals[k] = est
	}
	return est
}

func (e *Estimator) sample(est *estimate, c Counters, dt float64, first bool) {
	if !est.seen || first || dt <= 0 {
		est.last, est.seen = c, true
		return
	}
	rate := func(now, before uint64) float64 {
		// Counters that went backwards were reset (a restarted data plane,
		// a zeroed service); count that interval as no traffic.
		if now < before {
			return 0
		}
		return float64(now-before) / dt
	}
	ewma(&est.cps, rate(c.Conns, est.last.Conns))
	ewma(&est.inPPS, rate(c.InPkts, est.last.InPkts))
	ewma(&est.outPPS, rate(c.OutPkts, est.last.OutPkts))
	ewma(&est.inBPS, rate(c.InBytes, est.last.InBytes))
	ewma(&est.outBPS, rate(c.OutBytes, est.last.OutBytes))
	est.last = c
}

// ewma moves avg a quarter of the way towards sample, IPVS's weight.
func ewma(avg *float64, sample float64) {
	*avg += (sample - *avg) / 4
}

func (est *estimate) rates() Rates {
	if est == nil {
		return Rates{}
	}
	round := func(f float64) uint64 { return uint64(math.Round(f)) }
	return Rates{
		CPS:    round(est.cps),
		InPPS:  round(est.inPPS),
		OutPPS: round(est.outPPS),
		InBPS:  round(est.inBPS),
		OutBPS: round(est.outBPS),
	}
}
