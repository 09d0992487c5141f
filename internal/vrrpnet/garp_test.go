package vrrpnet_test

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
)

// garps records the gratuitous ARPs for addr that reach h.
type garps struct {
	mu   sync.Mutex
	seen []time.Time
	c    *arp.Client
	done chan struct{}
}

func captureGARPs(t *testing.T, h host, addr netip.Addr) *garps {
	t.Helper()
	g := &garps{done: make(chan struct{})}
	if err := h.ns.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		g.c, err = arp.Dial(ifi)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(g.done)
		for {
			p, _, err := g.c.Read()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
			if p.Operation == arp.OperationRequest && p.SenderIP == addr && p.TargetIP == addr {
				g.mu.Lock()
				g.seen = append(g.seen, time.Now())
				g.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		g.c.Close()
		<-g.done
	})
	return g
}

func (g *garps) times() []time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.seen...)
}

// TestPrivilegedGARPPacedOffTheLoop: a MASTER's burst of gratuitous ARPs
// is paced by vrrp_garp_interval, and while it lasts (here 4 × 300 ms)
// the instance keeps advertising every 100 ms: the burst does not hold up
// the VRRP event loop, which would let a backup take over.
func TestPrivilegedGARPPacedOffTheLoop(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	vip := netip.MustParseAddr(vipAddr)
	arps := captureGARPs(t, l.b, vip)
	ads := captureAdverts(t, l.b)
	const gap = 300 * time.Millisecond
	in := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, Interval: 100 * time.Millisecond,
		Version: 3, InitialMaster: true, VIPs: []vrrp.VIP{{Prefix: netip.PrefixFrom(vip, 24)}},
		GARP: vrrp.GARP{MasterRepeat: 5, MasterDelay: -1, Interval: gap}}
	start := time.Now()
	p := runGovs(t, l.a, map[string]any{"instances": []vrrp.InstanceConfig{in}})
	end := time.Now().Add(10 * time.Second)
	for len(arps.times()) < 5 && time.Now().Before(end) {
		time.Sleep(20 * time.Millisecond)
	}
	got := arps.times()
	if len(got) != 5 {
		t.Fatalf("%d gratuitous ARPs for %s, want the burst of 5", len(got), vip)
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].Sub(got[i-1]); d < gap-50*time.Millisecond {
			t.Errorf("gratuitous ARPs %d and %d %v apart, want ≥ %v (vrrp_garp_interval)", i, i+1, d, gap)
		}
	}
	// Adverts during the burst: none of the gaps may approach the burst.
	var prev time.Time
	n := 0
	for _, a := range ads.since(start) {
		if a.at.After(got[len(got)-1]) {
			break
		}
		if a.at.Before(got[0]) {
			prev = a.at
			continue
		}
		if !prev.IsZero() && a.at.Sub(prev) > 250*time.Millisecond {
			t.Errorf("no advert for %v during the gratuitous ARP burst (advert_int 100ms)", a.at.Sub(prev))
		}
		prev = a.at
		n++
	}
	if n < 8 {
		t.Errorf("%d adverts during the %v burst, want ≥ 8 at 100 ms", n, got[len(got)-1].Sub(got[0]))
	}
	p.term()
	p.wait(t)
}
