package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/vrrpnet"
)

// vrrpGroup runs the VRRP instances of a configuration in the background.
type vrrpGroup struct {
	cancel context.CancelFunc
	done   chan struct{}
	status vrrpnet.Status

	mu      sync.Mutex
	pending int
	// started is closed when every instance has reported its first state.
	started chan struct{}
}

// defaultVRRP starts the instances with the kernel (raw sockets, netlink).
func defaultVRRP(ctx context.Context, u VRRPUnit, log *slog.Logger) (VRRP, error) {
	v := u.Plan
	insts := slices.Clone(v.Instances)
	groups, scripts := v.SyncGroups, v.Scripts
	for i := range insts {
		insts[i] = insts[i].WithDefaults()
		if err := insts[i].Validate(); err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", insts[i].Name, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &vrrpGroup{cancel: cancel, done: make(chan struct{}), pending: len(insts), started: make(chan struct{})}
	seen := map[string]bool{}
	errc := make(chan error, 1)
	go func() {
		defer close(g.done)
		errc <- vrrpnet.Run(ctx, insts, groups, vrrpnet.Options{
			Logger:       log,
			Scripts:      scripts,
			Files:        v.Files,
			Status:       &g.status,
			Siblings:     u.Siblings,
			VIPFilter:    u.VIPFilter,
			Resume:       u.Resume,
			PreemptHold:  u.PreemptHold,
			StartupDelay: u.StartupDelay,
			NotifyFIFO:   u.NotifyFIFO,
			OnState: func(c vrrpnet.StateChange) {
				u.OnState(c.Instance, c.New)
				g.reported(seen, c.Instance)
			},
		})
	}()
	// Run returns configuration and socket errors before it starts anything:
	// wait for them (or for every instance's first state) so that `govs run`
	// fails loudly on them.
	select {
	case err := <-errc:
		cancel()
		if err == nil {
			err = errors.New("stopped at start")
		}
		return nil, err
	case <-g.started:
	case <-time.After(time.Second):
	}
	return g, nil
}

// reported counts instances that reported their first state. Run calls
// OnState from its own goroutine only, so seen needs no lock.
func (g *vrrpGroup) reported(seen map[string]bool, instance string) {
	if seen[instance] {
		return
	}
	seen[instance] = true
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending--; g.pending == 0 {
		close(g.started)
	}
}

// Status reports every instance's state.
func (g *vrrpGroup) Status() []status.VRRPInstance { return g.status.Snapshot() }

// Stop leaves cleanly and waits for the instances to finish.
func (g *vrrpGroup) Stop() {
	g.cancel()
	<-g.done
}
