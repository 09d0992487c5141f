package director

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/status"
)

// expireInterval is how often idle connection-table entries are removed
// and the lc/wlc counts resynchronised.
const expireInterval = 10 * time.Second

// isMaster reports whether the named VRRP instance is MASTER here, as its
// last reported state change says.
func (d *Director) isMaster(instance string) bool {
	m := d.masters.Load()
	return m != nil && (*m)[instance]
}

// syncConfig is the part of lvs_sync_daemon the running daemon depends on
// (not its position in the file).
func syncConfig(sd *config.LVSSyncDaemon) *config.LVSSyncDaemon {
	if sd == nil {
		return nil
	}
	c := *sd
	c.Pos = config.Pos{}
	return &c
}

// applySyncLocked starts, restarts or stops connection synchronisation to
// match the plan's setting.
func (d *Director) applySyncLocked(ctx context.Context, setting *config.LVSSyncDaemon) error {
	want := syncConfig(setting)
	if d.dp == nil {
		want = nil
	}
	if d.syncd != nil && want != nil && d.syncCfg != nil && *want == *d.syncCfg {
		return nil
	}
	d.stopSyncLocked()
	if want == nil {
		return nil
	}
	instance := want.Instance
	start := d.opts.ConnSync
	if start == nil {
		start = startConnSync
	}
	sd, err := start(ctx, connsync.Config{
		Interface: want.Interface, SyncID: uint8(want.SyncID), MaxLen: want.MaxLen,
		Group: want.Group, Port: want.Port, TTL: want.TTL,
		IsMaster: func() bool { return d.isMaster(instance) },
		Mesh:     want.Mesh,
		Ready:    d.dpReady.Load,
		Logger:   d.log,
		Key:      []byte(want.Key),
	}, d.dp)
	if err != nil {
		return fmt.Errorf("lvs_sync_daemon: %w", err)
	}
	d.syncd, d.syncCfg = sd, want
	d.syncGate.Store(&syncGate{instance: instance, since: d.opts.Clock.Now(), sync: sd})
	return nil
}

func (d *Director) stopSyncLocked() {
	if d.syncd != nil {
		d.syncd.Close()
		d.syncd, d.syncCfg = nil, nil
	}
	d.syncGate.Store(nil)
}

// ConnSyncFactory starts connection synchronisation (lvs_sync_daemon) over
// the data plane's connection table.
type ConnSyncFactory func(ctx context.Context, cfg connsync.Config, dp connsync.DataPlane) (ConnSync, error)

// ConnSync is a running connection synchroniser.
type ConnSync interface {
	// Close stops it and waits.
	Close()
	// Complete reports whether the master's connections have all arrived
	// (connsync.Daemon.Complete).
	Complete() bool
	// Stats counts what it did.
	Stats() connsync.Stats
}

// syncStatusLocked is the status view of the running sync daemon, if any.
func (d *Director) syncStatusLocked() *status.ConnSync {
	if d.syncd == nil || d.syncCfg == nil {
		return nil
	}
	st := d.syncd.Stats()
	other := st.Rejected - min(st.Rejected, st.WhileMaster+st.Unauthenticated+st.Replayed)
	return &status.ConnSync{
		Instance: d.syncCfg.Instance, Interface: d.syncCfg.Interface, Complete: d.syncd.Complete(),
		MessagesSent: st.MessagesSent, EntriesSent: st.EntriesSent,
		MessagesReceived: st.MessagesReceived, EntriesReceived: st.EntriesReceived, Inserted: st.Inserted,
		Rejected: map[string]uint64{"while_master": st.WhileMaster, "unauthenticated": st.Unauthenticated,
			"replayed": st.Replayed, "other": other},
		RequestsSent: st.RequestsSent, RequestsReceived: st.RequestsReceived, Dumps: st.Dumps,
		NewConnections: st.Events, NewConnectionsLost: st.EventsLost, Scans: st.Scans,
	}
}

// SyncPreemptWait bounds how long a director with connection sync holds
// back from preempting a lower-priority master while the master's
// connections arrive: a master that never says it is caught up (an older
// govs, a lossy link) is preempted after it, as without the gate.
const SyncPreemptWait = 30 * time.Second

// syncGate is the preemption hold of one sync daemon's instance.
type syncGate struct {
	instance string
	since    time.Time
	sync     ConnSync
	// released is set once the hold ended, so it is logged once.
	released atomic.Bool
}

// preemptHold is VRRPUnit.PreemptHold: the lvs_sync_daemon instance does
// not preempt a live lower-priority master until connection sync has all
// of its connections or SyncPreemptWait has passed, so a director that
// comes back (restarted, rebooted) does not take the VIP with an empty
// table and reset the connections the other one made meanwhile. Called
// from VRRP's goroutines: it takes no lock.
func (d *Director) preemptHold(instance string) bool {
	g := d.syncGate.Load()
	if g == nil || g.instance != instance || g.released.Load() {
		return false
	}
	waited := d.opts.Clock.Now().Sub(g.since)
	switch {
	case g.sync.Complete():
		d.log.Info("connection sync complete: VRRP may preempt", "instance", instance, "after", waited.Round(time.Millisecond))
	case waited >= SyncPreemptWait:
		d.log.Warn("connection sync not complete after the wait: VRRP may preempt", "instance", instance, "wait", SyncPreemptWait)
	default:
		return true
	}
	g.released.Store(true)
	return false
}

// startConnSync runs the sync protocol over multicast on cfg.Interface.
func startConnSync(ctx context.Context, cfg connsync.Config, dp connsync.DataPlane) (ConnSync, error) {
	return connsync.Start(ctx, cfg, dp)
}

// expireLoop removes idle connection-table entries until ctx ends.
func (d *Director) expireLoop(ctx context.Context) {
	t := d.opts.Clock.NewTicker(expireInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		d.mu.Lock()
		if d.dp != nil {
			if n, err := d.dp.ExpireConnections(); err != nil {
				d.log.Warn("expire connections", "err", err)
			} else if n > 0 {
				d.log.Debug("expired connections", "count", n)
			}
		}
		d.mu.Unlock()
	}
}
