package director

import (
	"context"
	"fmt"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/connsync"
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
		Logger:   d.log,
		Key:      []byte(want.Key),
	}, d.dp)
	if err != nil {
		return fmt.Errorf("lvs_sync_daemon: %w", err)
	}
	d.syncd, d.syncCfg = sd, want
	return nil
}

func (d *Director) stopSyncLocked() {
	if d.syncd != nil {
		d.syncd.Close()
		d.syncd, d.syncCfg = nil, nil
	}
}

// ConnSyncFactory starts connection synchronisation (lvs_sync_daemon) over
// the data plane's connection table.
type ConnSyncFactory func(ctx context.Context, cfg connsync.Config, dp connsync.DataPlane) (ConnSync, error)

// ConnSync is a running connection synchroniser.
type ConnSync interface {
	// Close stops it and waits.
	Close()
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
