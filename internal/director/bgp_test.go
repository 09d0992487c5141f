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

	"github.com/govs/govs/internal/bgp"
	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/dpstate"
)

// recordedBGP is a BGP speaker factory whose speakers record what they
// announce.
type recordedBGP struct {
	mu        sync.Mutex
	started   int
	announced []netip.Addr
	cfg       desired.BGP
}

func (r *recordedBGP) factory(_ context.Context, cfg desired.BGP, _ *slog.Logger) (BGPSpeaker, error) {
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
	if err := f.d.SetBGPDrain(true); err != nil {
		t.Fatal(err)
	}
	if v := f.bgp.vips(); len(v) != 0 {
		t.Fatalf("drained, still announcing %v", v)
	}
	if err := f.d.SetBGPDrain(false); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	waitUntil(t, "the VIP withdrawn when its server fails", func() bool { return len(f.bgp.vips()) == 0 })
}
