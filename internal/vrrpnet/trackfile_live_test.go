package vrrpnet_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// TestPrivilegedTrackFile: a track_file's value moves the running
// instance's priority as it is written, faults it past -253 (written by a
// rename, as tools that replace files atomically do), and a removed file
// counts as 0.
func TestPrivilegedTrackFile(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	zero := 0
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}},
		TrackFiles: []vrrp.Track{{Name: "w", Weight: 1}}}
	var st vrrpnet.Status
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{Logger: slog.New(slog.DiscardHandler), Status: &st,
				Files: []vrrp.TrackFile{{Name: "w", Path: path, Init: &zero}}})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait := func(what, state string, prio int) {
		t.Helper()
		var last string
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			s := st.Snapshot()
			if len(s) == 1 && s[0].State == state && (prio == 0 || s[0].EffectivePriority == prio) {
				return
			}
			if len(s) == 1 {
				last = s[0].State
			}
		}
		t.Fatalf("%s: state %s, want %s at priority %d (%+v)", what, last, state, prio, st.Snapshot())
	}
	wait("start: init_file wrote 0", "MASTER", 150)
	if b, err := os.ReadFile(path); err != nil || string(b) != "0\n" {
		t.Fatalf("init_file: %q, %v", b, err)
	}
	if err := os.WriteFile(path, []byte("-50\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait("-50 written", "MASTER", 100)
	tmp := filepath.Join(dir, "weight.new")
	if err := os.WriteFile(tmp, []byte("-254\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	wait("-254 renamed in", "FAULT", 0)
	if _, ok := waitVIP(t, l.a, false, time.Second); !ok {
		t.Fatal("VIP kept in FAULT")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	wait("file removed (0)", "MASTER", 150)
}
