package webui_test

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/govs/govs/internal/metrics"
	"github.com/govs/govs/internal/status"
)

// trafficStatus is a daemon's status whose counters grow once traffic is
// switched on, and whose second real server can fail.
type trafficStatus struct {
	mu      sync.Mutex
	traffic bool
	failed  bool
	pkts    uint64
	reload  uint64
}

func (f *trafficStatus) snapshot() status.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.traffic {
		f.pkts += 5000
	}
	vip := netip.MustParseAddr("198.18.0.100")
	r1 := status.Real{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Method: status.Route, Weight: 1, Healthy: true,
		ActiveConn: 3, Stats: status.Counters{Conns: f.pkts / 10, InPkts: f.pkts / 2}}
	r2 := status.Real{Addr: netip.MustParseAddr("198.18.0.12"), Port: 80, Method: status.Route, Weight: 1, Healthy: !f.failed,
		Stats: status.Counters{Conns: f.pkts / 10, InPkts: f.pkts / 2}}
	if f.failed {
		r2.Weight = 0
	}
	return status.Snapshot{
		Time: time.Now(), Version: "test", ConnTableSize: 262144,
		Services: []status.Service{{Protocol: status.TCP, VIP: vip, Port: 80, Scheduler: "wlc", Method: status.Route,
			Reals: []status.Real{r1, r2}, Stats: status.Counters{Conns: f.pkts / 5, InPkts: f.pkts}}},
		VRRP: []status.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, State: "MASTER", Priority: 150, EffectivePriority: 150,
			VIPs: []netip.Addr{vip}}},
		BGP: &status.BGP{LocalAS: 65001, RouterID: netip.MustParseAddr("198.18.0.2"),
			Peers:     []status.BGPPeer{{Addr: netip.MustParseAddr("198.18.0.1"), RemoteAS: 65000, State: "established", Established: true}},
			Announced: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/32")}},
		Reloads: status.Reloads{Succeeded: f.reload, LastOK: true},
	}
}

// TestStatusPageInChromium loads the status page in a real headless
// Chromium (Debian's chromium): it renders the table of virtual and real
// servers, VRRP and BGP; the service's graph rises once traffic flows; a
// real server failing and a reload show up as events. A screenshot is kept.
func TestStatusPageInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (scripts/deps.sh installs it)")
	}
	f := &trafficStatus{}
	srv := httptest.NewServer(metrics.Routes(f.snapshot))
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	// The browser lives as long as the context of the first action: no
	// timeout on it; each action below gets one of its own.
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 60*time.Second) }
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("load the page: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		c, done := step()
		defer done()
		s, err := chromedp.Run(c, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	{
		c, done := step()
		err := chromedp.Do(c, chromedp.WaitVisible(`tr[data-real="TCP 198.18.0.100:80 -> 198.18.0.12:80"]`))
		done()
		if err != nil {
			t.Fatalf("the page shows no real server: %v", err)
		}
	}
	table, vrrp, bgp := text("#services"), text("#vrrp"), text("#bgp")
	for _, want := range []string{"TCP 198.18.0.100:80", "198.18.0.11:80", "198.18.0.12:80", "wlc", "Route", "up"} {
		if !strings.Contains(table, want) {
			t.Errorf("services table has no %q:\n%s", want, table)
		}
	}
	if !strings.Contains(vrrp, "VI_1") || !strings.Contains(vrrp, "MASTER") {
		t.Errorf("VRRP: %q", vrrp)
	}
	if !strings.Contains(bgp, "neighbor 198.18.0.1 AS 65000: established") || !strings.Contains(bgp, "198.18.0.100/32") {
		t.Errorf("BGP: %q", bgp)
	}

	// No traffic yet: the graph is flat.
	points := func() []float64 {
		t.Helper()
		c, done := step()
		defer done()
		a, err := chromedp.Run(c, chromedp.AttributeValue(`canvas[data-key="TCP 198.18.0.100:80"]`, "data-points"))
		if err != nil {
			t.Fatalf("read the graph: %v", err)
		}
		var out []float64
		for _, p := range strings.Split(a.Value, ",") {
			v, _ := strconv.ParseFloat(p, 64)
			out = append(out, v)
		}
		return out
	}
	if p := points(); p[len(p)-1] != 0 {
		t.Fatalf("graph before any traffic: %v", p)
	}
	f.mu.Lock()
	f.traffic = true
	f.mu.Unlock()
	waitFor(t, "the graph to rise with traffic", func() bool { p := points(); return len(p) >= 2 && p[len(p)-1] > 0 })

	f.mu.Lock()
	f.failed, f.reload = true, 1
	f.mu.Unlock()
	var evs string
	waitFor(t, "the failure and the reload among the events", func() bool {
		evs = text("#events")
		return strings.Contains(evs, "198.18.0.12:80 is down") && strings.Contains(evs, "configuration reloaded")
	})

	c, done := step()
	shot, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	done()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("GOVS_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "govs-artefacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "status-page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes); events:\n%s", path, len(shot), evs)
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
