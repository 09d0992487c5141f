package director

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/announce"
	"github.com/govs/govs/internal/bgp"
	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/status"
)

// recordedBGP is a BGP speaker factory whose speakers record what they
// announce.
type recordedBGP struct {
	mu        sync.Mutex
	started   int
	announced []netip.Addr
	cfg       desired.BGP
}

func (r *recordedBGP) factory(_ context.Context, cfg desired.BGP, _ bool, _ *slog.Logger) (BGPSpeaker, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
	r.cfg = cfg
	return &recordedSpeaker{r: r}, nil
}

func (r *recordedBGP) vips() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.announced)
}

type recordedSpeaker struct{ r *recordedBGP }

func (s *recordedSpeaker) Config() desired.BGP { s.r.mu.Lock(); defer s.r.mu.Unlock(); return s.r.cfg }
func (s *recordedSpeaker) Announce(vips []netip.Addr) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.announced = slices.Clone(vips)
	return nil
}
func (s *recordedSpeaker) Announced() []netip.Prefix {
	var out []netip.Prefix
	for _, v := range s.r.vips() {
		out = append(out, desired.BGPPrefix(v))
	}
	return out
}
func (s *recordedSpeaker) Peers(context.Context) ([]bgp.Peer, error) { return nil, nil }
func (s *recordedSpeaker) Stop()                                     { _ = s.Announce(nil) }

// TestBGPAnnouncesOnlyCheckedServers: a VIP is announced only once its
// real server's checker has a result (not on its configured state), is
// withdrawn when the checker fails, and a drain withdraws it.
func TestBGPAnnouncesOnlyCheckedServers(t *testing.T) {
	release := make(chan struct{})
	var failing atomic.Bool
	probe := func(check.Spec, netip.AddrPort) (check.Prober, error) {
		return check.ProberFunc(func(ctx context.Context) state.Result {
			select {
			case <-release:
			case <-ctx.Done():
				return state.Result{Err: ctx.Err()}
			}
			return state.Result{OK: !failing.Load()}
		}), nil
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, `govs_bgp {
    router_id 198.18.0.2
    local_as 65001
    neighbor 198.18.0.1 {
        remote_as 65000
    }
}
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 5
            retry 0
        }
    }
}
global_defs {
    govs_xdp_interface eth0
}
`)
	f, err := startFake(t, conf, probe)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the speaker started", func() bool { f.bgp.mu.Lock(); defer f.bgp.mu.Unlock(); return f.bgp.started == 1 })
	// The data plane is programmed and the server up by configuration, but
	// unchecked: nothing is announced.
	if _, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 && len(st.Services[0].Reals) == 1 }); !ok {
		t.Fatal("not programmed")
	}
	if v := f.bgp.vips(); len(v) != 0 {
		t.Fatalf("announced %v before any check result", v)
	}
	close(release)
	vip := netip.MustParseAddr("198.18.0.100")
	waitUntil(t, "the VIP announced once checked", func() bool { return slices.Equal(f.bgp.vips(), []netip.Addr{vip}) })
	if err := f.d.SetBGPDrain(true, 0); err != nil {
		t.Fatal(err)
	}
	if v := f.bgp.vips(); len(v) != 0 {
		t.Fatalf("drained, still announcing %v", v)
	}
	if err := f.d.SetBGPDrain(false, 0); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	waitUntil(t, "the VIP withdrawn when its server fails", func() bool { return len(f.bgp.vips()) == 0 })
}

// bgpVIPState is VIP v's announcement state in the director's snapshot.
func bgpVIPState(f *fakeDirector, v netip.Addr) status.BGPVIP {
	if b := f.d.Snapshot().BGP; b != nil {
		for _, s := range b.VIPs {
			if s.VIP == v {
				return s
			}
		}
	}
	return status.BGPVIP{}
}

// TestBGPWaitsForSyncAndWithdrawsOnLinkDown: with govs_bgp's
// connection_sync a director starts a mesh sync and announces only once
// the peers' tables have arrived; an interface of the data plane going
// down withdraws at once, and coming back announces after the hold-down
// (a health withdrawal); the snapshot says why a VIP is not announced.
func TestBGPWaitsForSyncAndWithdrawsOnLinkDown(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, `govs_bgp {
    router_id 198.18.0.2
    local_as 65001
    hold_down 0.3
    sync_wait 60
    connection_sync eth1
    neighbor 198.18.0.1 {
        remote_as 65000
    }
}
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 5
        }
    }
}
global_defs {
    govs_xdp_interface eth0
}
`)
	rec := &recordedSync{}
	rec.incomplete.Store(true)
	f, err := startFakeWith(t, conf, healthy, func(f *fakeDirector) { f.sync = rec })
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.18.0.100")
	waitUntil(t, "the VIP held back for the peers' connections", func() bool {
		return bgpVIPState(f, vip).Reason == announce.SyncPending.String()
	})
	if cfgs := rec.started(); len(cfgs) != 1 || !cfgs[0].Mesh || cfgs[0].Interface != "eth1" {
		t.Fatalf("sync started with %+v, want a mesh on eth1", cfgs)
	}
	if v := f.bgp.vips(); len(v) != 0 {
		t.Fatalf("announced %v before sync was complete", v)
	}
	rec.incomplete.Store(false)
	waitUntil(t, "the VIP announced once sync is complete", func() bool { return slices.Equal(f.bgp.vips(), []netip.Addr{vip}) })

	f.links.set("eth0", false)
	waitUntil(t, "the VIP withdrawn when eth0 goes down", func() bool { return len(f.bgp.vips()) == 0 })
	if st := bgpVIPState(f, vip); st.Reason != announce.InterfaceDown.String() || st.Announced {
		t.Fatalf("state %+v, want withdrawn for the interface", st)
	}
	f.links.set("eth0", true)
	waitUntil(t, "the VIP held down after the link came back", func() bool { return bgpVIPState(f, vip).HeldUntil != nil })
	waitUntil(t, "the VIP announced again after the hold-down", func() bool { return slices.Equal(f.bgp.vips(), []netip.Addr{vip}) })
	if b := f.d.Snapshot().BGP; b.Announcements != 2 || b.Withdrawals != 1 {
		t.Fatalf("updates: %d announcements, %d withdrawals; want 2 and 1", b.Announcements, b.Withdrawals)
	}
}

// periodClock is the system clock, except that After(period) returns a
// channel the test fires.
type periodClock struct {
	systemClock
	period time.Duration
	mu     sync.Mutex
	timers []chan time.Time
}

func (c *periodClock) After(d time.Duration) <-chan time.Time {
	if d != c.period {
		return c.systemClock.After(d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, ch)
	return ch
}

func (c *periodClock) fire(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.timers[i] <- time.Time{}
}

// TestBGPDrainPeriodStopsTheDirector: `govs bgp drain --stop-after P`
// withdraws at once and stops the director when P has passed; an undrain
// meanwhile cancels the stop.
func TestBGPDrainPeriodStopsTheDirector(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, `govs_bgp {
    router_id 198.18.0.2
    local_as 65001
    neighbor 198.18.0.1 {
        remote_as 65000
    }
}
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
    }
}
global_defs {
    govs_xdp_interface eth0
}
`)
	clock := &periodClock{period: time.Hour}
	f, err := startFakeWith(t, conf, healthy, func(f *fakeDirector) { f.clock = clock })
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("198.18.0.100")
	waitUntil(t, "the VIP announced", func() bool { return slices.Equal(f.bgp.vips(), []netip.Addr{vip}) })
	if err := f.d.SetBGPDrain(true, time.Hour); err != nil {
		t.Fatal(err)
	}
	if v := f.bgp.vips(); len(v) != 0 {
		t.Fatalf("drained, still announcing %v", v)
	}
	// Undrained before the period is over: the stop is off.
	if err := f.d.SetBGPDrain(false, 0); err != nil {
		t.Fatal(err)
	}
	clock.fire(0)
	waitUntil(t, "the VIP announced again", func() bool { return slices.Equal(f.bgp.vips(), []netip.Addr{vip}) })
	select {
	case err := <-f.done:
		t.Fatalf("the director stopped after an undrain cancelled its drain period: %v", err)
	case <-time.After(200 * time.Millisecond): // the cancelled stop cannot come later than this
	}
	if err := f.d.SetBGPDrain(true, time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.fire(1)
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Run after the drain period: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the director did not stop when its drain period was over")
	}
}
