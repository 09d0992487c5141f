package neigh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Resolver watches the neighbour entries of a set of addresses.
type Resolver struct {
	opts Options

	mu    sync.Mutex
	known map[netip.Addr]Update
}

// NewResolver returns a Resolver; opts.Kernel is required.
func NewResolver(opts Options) (*Resolver, error) {
	if opts.Kernel == nil {
		return nil, errors.New("new resolver: no kernel")
	}
	opts.defaults()
	return &Resolver{opts: opts, known: map[netip.Addr]Update{}}, nil
}

// Lookup returns the last MAC and interface seen for ip by a running Watch.
func (r *Resolver) Lookup(ip netip.Addr) (net.HardwareAddr, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.known[ip]
	if !ok || !u.Resolved {
		return nil, 0, false
	}
	return slices.Clone(u.MAC), u.Ifindex, true
}

// Watch resolves ips and sends an Update whenever one's MAC or interface
// changes, when one becomes unresolvable (entry FAILED or deleted, no route,
// or no answer within ResolveTimeout) and when it is resolved again. The
// channel is closed when ctx ends.
func (r *Resolver) Watch(ctx context.Context, ips []netip.Addr) <-chan Update {
	out := make(chan Update, len(ips)+8)
	go r.run(ctx, ips, out)
	return out
}

// target is the watch state of one address.
type target struct {
	ip       netip.Addr
	route    Route
	routeErr error
	resolved bool
	mac      net.HardwareAddr
	// waitingSince is when the address last became unresolved.
	waitingSince time.Time
	lastSolicit  time.Time
	// reported is set once the current unresolved state has been sent.
	reported bool
}

type watch struct {
	r       *Resolver
	ctx     context.Context
	out     chan<- Update
	targets []*target
}

func (r *Resolver) run(ctx context.Context, ips []netip.Addr, out chan<- Update) {
	defer close(out)
	w := &watch{r: r, ctx: ctx, out: out}
	now := r.opts.Now()
	for _, ip := range ips {
		ip = ip.Unmap()
		if slices.ContainsFunc(w.targets, func(t *target) bool { return t.ip == ip }) {
			continue
		}
		w.targets = append(w.targets, &target{ip: ip, waitingSince: now})
	}
	done := make(chan struct{})
	defer close(done)

	ticks := r.opts.Ticks
	if ticks == nil {
		tk := time.NewTicker(r.opts.CheckInterval)
		defer tk.Stop()
		ticks = tk.C
	}
	// Subscribe before listing so that no change falls between the two.
	events, err := r.opts.Kernel.Subscribe(done)
	if err != nil {
		events = nil
		err = fmt.Errorf("subscribe to neighbour events: %w", err)
	}
	w.reroute(now)
	w.relist(now)
	if err != nil {
		for _, t := range w.targets {
			if !t.resolved {
				t.reported = true
				w.send(Update{IP: t.ip, Ifindex: t.route.Ifindex, NextHop: t.route.NextHop, Src: t.route.Src, Err: err})
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-events:
			if !ok {
				events = nil // resubscribed on the next tick
				continue
			}
			w.apply(e, r.opts.Now())
		case <-ticks:
			now := r.opts.Now()
			if events == nil {
				if ev, err := r.opts.Kernel.Subscribe(done); err == nil {
					events = ev
					w.relist(now)
				}
			}
			if w.reroute(now) {
				w.relist(now)
			}
			w.check(now)
		}
	}
}

func (w *watch) send(u Update) {
	w.r.mu.Lock()
	w.r.known[u.IP] = u
	w.r.mu.Unlock()
	select {
	case w.out <- u:
	case <-w.ctx.Done():
	}
}

func (w *watch) resolvedUpdate(t *target) Update {
	return Update{IP: t.ip, MAC: slices.Clone(t.mac), Ifindex: t.route.Ifindex, NextHop: t.route.NextHop, Src: t.route.Src, Resolved: true}
}

// unresolve marks t unresolved and reports it now.
func (w *watch) unresolve(t *target, now time.Time, why error) {
	t.resolved, t.mac = false, nil
	t.waitingSince, t.reported = now, true
	w.send(Update{IP: t.ip, Ifindex: t.route.Ifindex, NextHop: t.route.NextHop, Src: t.route.Src, Err: why})
}

// reroute looks up every target's route and reports whether one changed.
func (w *watch) reroute(now time.Time) bool {
	changed := false
	for _, t := range w.targets {
		rt, err := w.r.opts.Kernel.RouteTo(t.ip)
		if err != nil {
			if t.routeErr == nil || t.resolved {
				t.routeErr = err
				t.route = Route{}
				changed = true
				w.unresolve(t, now, fmt.Errorf("route to %s: %w", t.ip, err))
			}
			continue
		}
		if t.routeErr != nil || rt != t.route {
			wasRouted := t.route.Ifindex != 0
			t.routeErr, t.route = nil, rt
			changed = true
			if t.resolved && wasRouted {
				w.unresolve(t, now, fmt.Errorf("route to %s changed", t.ip))
			} else if !t.resolved {
				t.waitingSince, t.reported = now, false
			}
		}
	}
	return changed
}

// relist reads the whole neighbour table and solicits what it lacks.
func (w *watch) relist(now time.Time) {
	entries, err := w.r.opts.Kernel.Neighbours()
	if err == nil {
		for _, e := range entries {
			w.apply(e, now)
		}
	}
	for _, t := range w.targets {
		if t.routeErr == nil && t.route.Ifindex != 0 && !t.resolved {
			w.solicit(t, now)
		}
	}
}

func (w *watch) solicit(t *target, now time.Time) {
	t.lastSolicit = now
	// An error here (e.g. the interface went away) shows up as the address
	// staying unresolved; the next check tries again.
	_ = w.r.opts.Kernel.Solicit(t.route.Ifindex, t.route.NextHop)
}

// apply folds one neighbour entry or event into the targets that use it.
func (w *watch) apply(e Entry, now time.Time) {
	ip := e.IP.Unmap()
	for _, t := range w.targets {
		if t.routeErr != nil || t.route.Ifindex == 0 || t.route.NextHop != ip || t.route.Ifindex != e.Ifindex {
			continue
		}
		switch {
		case !e.Deleted && e.State.usable() && len(e.MAC) > 0:
			if !t.resolved || !bytes.Equal(t.mac, e.MAC) {
				t.resolved, t.mac, t.reported = true, slices.Clone(e.MAC), false
				w.send(w.resolvedUpdate(t))
			}
			// A STALE entry still works but may be out of date (the server
			// was replaced): have the kernel confirm it.
			if e.State == StateStale && now.Sub(t.lastSolicit) >= w.r.opts.CheckInterval {
				w.solicit(t, now)
			}
		case e.Deleted || e.State == StateFailed || e.State == StateNone:
			if t.resolved {
				w.unresolve(t, now, fmt.Errorf("neighbour entry %s", stateOrDeleted(e)))
			}
			if now.Sub(t.lastSolicit) >= w.r.opts.ResolveTimeout {
				w.solicit(t, now)
			}
		}
	}
}

func stateOrDeleted(e Entry) string {
	if e.Deleted {
		return "deleted"
	}
	return e.State.String()
}

// check reports addresses unresolved for too long and solicits them again.
func (w *watch) check(now time.Time) {
	for _, t := range w.targets {
		if t.resolved || t.routeErr != nil || t.route.Ifindex == 0 {
			continue
		}
		if !t.reported && now.Sub(t.waitingSince) >= w.r.opts.ResolveTimeout {
			t.reported = true
			w.send(Update{IP: t.ip, Ifindex: t.route.Ifindex, NextHop: t.route.NextHop, Src: t.route.Src, Err: ErrTimeout})
		}
		if now.Sub(t.lastSolicit) >= w.r.opts.ResolveTimeout {
			w.solicit(t, now)
		}
	}
}
