package vrrpnet_test

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// TestPrivilegedUnicastTTLAndPromoteSecondaries: unicast adverts leave with
// unicast_ttl (so they can cross routers to peers that check min_ttl), and
// promote_secondaries is set on the instance's interface.
func TestPrivilegedUnicastTTLAndPromoteSecondaries(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	// The peer listens for VRRP (protocol 112) before the instance starts.
	var fd int
	if err := l.b.ns.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, 112)
		if err != nil {
			return err
		}
		tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}},
		UnicastPeers: []netip.Addr{netip.MustParseAddr(l.b.ip)}, UnicastTTL: 7, PromoteSecondaries: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{Logger: slog.New(slog.DiscardHandler)})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	buf := make([]byte, 1500)
	for {
		n, from, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			select {
			case rerr := <-done:
				done <- rerr
				t.Fatalf("no advert from the instance: %v; Run: %v", err, rerr)
			default:
			}
			t.Fatalf("no advert from the instance: %v", err)
		}
		if sa, ok := from.(*unix.SockaddrInet4); !ok || netip.AddrFrom4(sa.Addr).String() != l.a.ip || n < 20 {
			continue
		}
		if ttl := buf[8]; ttl != 7 {
			t.Fatalf("unicast advert with TTL %d, want unicast_ttl 7", ttl)
		}
		break
	}
	if got := strings.TrimSpace(l.a.ns.MustRun("cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries")); got != "1" {
		t.Errorf("promote_secondaries on eth0 = %s, want 1", got)
	}
}

// TestPrivilegedNotifyMasterRxLowerPri: a MASTER that hears a
// lower-priority master runs notify_master_rx_lower_pri (a split brain
// some external state must heal from, keepalived's AWS case).
func TestPrivilegedNotifyMasterRxLowerPri(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	marker := filepath.Join(t.TempDir(), "heard")
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}},
		UnicastPeers: []netip.Addr{netip.MustParseAddr(l.b.ip)},
		Notify:       vrrp.Notify{MasterRxLowerPri: "echo heard >> " + marker}}
	var st vrrpnet.Status
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{Logger: slog.New(slog.DiscardHandler), Status: &st})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s := st.Snapshot(); len(s) == 1 && s[0].State == "MASTER" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("never MASTER")
		}
	}
	// A lower-priority master's advert, from the peer.
	p := vrrp.Packet{Version: 3, VRID: 51, Priority: 50, Interval: 100 * time.Millisecond, Addresses: cfg.Addresses()}
	b, err := p.Encode(netip.MustParseAddr(l.b.ip), netip.MustParseAddr(l.a.ip))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.b.ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, 112)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, b, 0, &unix.SockaddrInet4{Addr: netip.MustParseAddr(l.a.ip).As4()})
	}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out, err := os.ReadFile(marker); err == nil && string(out) == "heard\n" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("notify_master_rx_lower_pri did not run")
		}
	}
	if s := st.Snapshot(); s[0].State != "MASTER" {
		t.Errorf("state %s after a lower-priority advert, want MASTER", s[0].State)
	}
}

// TestPrivilegedStartupDelay: with vrrp_startup_delay the instance leaves
// INIT only once the delay is over.
func TestPrivilegedStartupDelay(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}}}
	const delay = 400 * time.Millisecond
	changes := make(chan time.Time, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{Logger: slog.New(slog.DiscardHandler), StartupDelay: delay,
				OnState: func(vrrpnet.StateChange) { changes <- time.Now() }})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case at := <-changes:
		// A lower bound only: the instance may start later, never sooner.
		if d := at.Sub(started); d < delay {
			t.Errorf("first state change %v after Run, before the %v startup delay", d, delay)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the instance never started")
	}
}

// TestPrivilegedNotifyFIFOLines: every transition is a line in keepalived's
// FIFO format, and with notify_priority_changes so is a priority a tracked
// file moves.
func TestPrivilegedNotifyFIFOLines(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	weight := filepath.Join(t.TempDir(), "weight")
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}},
		TrackFiles: []vrrp.Track{{Name: "w", Weight: 1}}, NotifyPriorityChanges: true}
	lines := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{Logger: slog.New(slog.DiscardHandler),
				NotifyFIFO: func(s string) { lines <- s }, Files: []vrrp.TrackFile{{Name: "w", Path: weight}}})
		})
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("line %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no line %q", want)
		}
	}
	expect(`INSTANCE "VI_1" BACKUP 150`)
	expect(`INSTANCE "VI_1" MASTER 150`)
	if err := os.WriteFile(weight, []byte("-10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	expect(`INSTANCE "VI_1" MASTER_PRIORITY 140`)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := <-lines; got != `INSTANCE "VI_1" STOP 140` {
		t.Errorf("at the stop: %q", got)
	}
}

// TestPrivilegedTrackSrcIP: with track_src_ip, the instance is in FAULT
// while its unicast_src_ip is off its interface.
func TestPrivilegedTrackSrcIP(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	const src = "198.18.0.31"
	l.a.ns.MustRun("ip", "addr", "add", src+"/24", "dev", "eth0")
	cfg := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}},
		UnicastSrc: netip.MustParseAddr(src), TrackSrcIP: true}
	var st vrrpnet.Status
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.a.ns.Do(func() error {
			return vrrpnet.Run(ctx, []vrrp.InstanceConfig{cfg}, nil, vrrpnet.Options{Logger: slog.New(slog.DiscardHandler), Status: &st})
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	wait := func(what, state string) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if s := st.Snapshot(); len(s) == 1 && s[0].State == state {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("%s: state %+v, want %s", what, st.Snapshot(), state)
			}
		}
	}
	wait("start", "MASTER")
	l.a.ns.MustRun("ip", "addr", "del", src+"/24", "dev", "eth0")
	wait("source address removed", "FAULT")
	l.a.ns.MustRun("ip", "addr", "add", src+"/24", "dev", "eth0")
	wait("source address back", "MASTER")
}
