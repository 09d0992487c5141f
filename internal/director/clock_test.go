package director

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/status"
)

// manualClock is a Clock that moves only when told: tick fires the tickers
// of one period, After never fires on its own.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers map[time.Duration][]chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), tickers: map[time.Duration][]chan time.Time{}}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

func (c *manualClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.tickers[d] = append(c.tickers[d], ch)
	return manualTicker{ch}
}

// tick moves the clock by d and fires every ticker of period d.
func (c *manualClock) tick(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, ch := range c.tickers[d] {
		select {
		case ch <- c.now:
		default:
		}
	}
}

func (c *manualClock) hasTicker(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers[d]) > 0
}

type manualTicker struct{ ch chan time.Time }

func (t manualTicker) C() <-chan time.Time { return t.ch }
func (t manualTicker) Stop()               {}

// expiryCounter is the fake data plane counting expiry passes.
type expiryCounter struct {
	*dataplane.Fake
	n atomic.Int32
}

func (e *expiryCounter) ExpireConnections() (int, error) {
	e.n.Add(1)
	return e.Fake.ExpireConnections()
}

// TestDirectorClock: the connection-table expiry runs each time the
// injected clock's expiry ticker fires, not on the wall clock, and
// snapshots carry the injected time.
func TestDirectorClock(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(corpus.Files()[0].Src), 0o644); err != nil {
		t.Fatal(err)
	}
	clk := newManualClock()
	dp := &expiryCounter{Fake: dataplane.NewFake()}
	vr := &recordedVRRP{}
	d, err := New(Options{ConfigPath: conf, SocketPath: "-", Log: slog.New(slog.DiscardHandler), Dataplane: dp,
		InterfaceIndex: func(string) (int, error) { return 10, nil }, Resolver: resolveAll{}, VRRP: vr.factory,
		Checks: check.Options{Probe: healthy}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitUntil(t, "the expiry and estimator tickers", func() bool {
		return clk.hasTicker(expireInterval) && clk.hasTicker(status.EstimatorInterval)
	})
	if n := dp.n.Load(); n != 0 {
		t.Fatalf("%d expiry passes before the clock moved", n)
	}
	for want := int32(1); want <= 3; want++ {
		clk.tick(expireInterval)
		waitUntil(t, "an expiry pass", func() bool { return dp.n.Load() >= want })
	}
	if got := d.Snapshot().Time; !got.Equal(clk.Now()) {
		t.Errorf("snapshot time %v, want the injected %v", got, clk.Now())
	}
}
