package vrrpnet_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// The runner as the director embeds it: started from Go inside a namespace,
// reporting transitions through OnState and its state through Status.
func TestPrivilegedRunInProcess(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}}}
	changes := make(chan vrrpnet.StateChange, 16)
	var st vrrpnet.Status
	var logs syncLog
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{
				Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
				OnState: func(c vrrpnet.StateChange) { changes <- c },
				Status:  &st,
			})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	expect := func(from, to vrrp.State, reason string) {
		t.Helper()
		select {
		case c := <-changes:
			if c.Old != from || c.New != to || !strings.Contains(c.Reason, reason) || c.Instance != "VI_1" {
				t.Fatalf("state change %+v, want %v -> %v (%s)", c, from, to, reason)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no state change to %v", to)
		}
	}
	expect(vrrp.StateInit, vrrp.StateBackup, "start")
	expect(vrrp.StateBackup, vrrp.StateMaster, "Master_Down_Interval")
	snap := st.Snapshot()
	if len(snap) != 1 || snap[0].State != "MASTER" || snap[0].Master != netip.MustParseAddr(l.a.ip) || snap[0].EffectivePriority != 150 {
		t.Fatalf("status %+v", snap)
	}
	// A higher-priority peer appears: we step down and report who is master.
	side{version: 3, interval: 100 * time.Millisecond, vrid: 51, prio: 200}.run(t, l.b, l.a)
	expect(vrrp.StateMaster, vrrp.StateBackup, "higher priority 200")
	if _, ok := waitVIP(t, l.a, false, time.Second); !ok {
		t.Fatal("VIP kept after stepping down")
	}
	snap = st.Snapshot()
	if snap[0].State != "BACKUP" || snap[0].Master != netip.MustParseAddr(l.b.ip) {
		t.Fatalf("status %+v", snap)
	}
	if s, ok := st.Stats("VI_1"); !ok || s.AdvertsReceived == 0 || s.BecomeMaster != 1 || s.ReleaseMaster != 1 {
		t.Fatalf("stats %+v", s)
	}
	if s := st.Snapshot()[0].Stats; s.AdvertsReceived == 0 || s.AdvertsSent == 0 || s.BecameMaster != 1 || s.ReleasedMaster != 1 {
		t.Fatalf("status counters %+v", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	done <- nil // for the cleanup
	expect(vrrp.StateBackup, vrrp.StateStop, "shutdown")
	if !strings.Contains(logs.String(), "Entering BACKUP STATE") {
		t.Errorf("log:\n%s", logs.String())
	}
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
