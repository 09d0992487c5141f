package vrrpnet_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/govs/govs/internal/netnstest"
)

// advert is one VRRP advertisement seen on the wire.
type advert struct {
	at       time.Time
	priority int
}

// adverts records the VRRP adverts to 224.0.0.18 that reach h.
type adverts struct {
	mu   sync.Mutex
	seen []advert
	conn net.PacketConn
	done chan struct{}
}

func captureAdverts(t *testing.T, h host) *adverts {
	t.Helper()
	a := &adverts{done: make(chan struct{})}
	err := h.ns.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			c.Close()
			return err
		}
		if err := ipv4.NewPacketConn(c).JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)}); err != nil {
			c.Close()
			return err
		}
		a.conn = c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(a.done)
		buf := make([]byte, 1500)
		for {
			// The IPv4 header is stripped: byte 2 is the VRRP priority.
			n, _, err := a.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 8 {
				a.mu.Lock()
				a.seen = append(a.seen, advert{time.Now(), int(buf[2])})
				a.mu.Unlock()
			}
		}
	}()
	t.Cleanup(a.stop)
	return a
}

func (a *adverts) stop() {
	a.conn.Close()
	<-a.done
}

// since returns the adverts seen from t on.
func (a *adverts) since(t time.Time) []advert {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []advert
	for _, ad := range a.seen {
		if !ad.at.Before(t) {
			out = append(out, ad)
		}
	}
	return out
}

// TestPrivilegedReloadKeepsMaster reloads a MASTER govs after editing
// something no VRRP instance depends on (notification_email): the
// instance keeps advertising at its priority, sends no priority-0 advert
// (which would make the backup take over) and never drops the VIP. Then an
// edit of the instance's priority does restart it, which the same capture
// sees: the test can tell the two apart.
func TestPrivilegedReloadKeepsMaster(t *testing.T) {
	netnstest.RequireRoot(t)
	l := newLab(t)
	s := side{version: 3, interval: 200 * time.Millisecond, vrid: 51, prio: 150, master: true}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	text := s.keepalivedConf(l.a, l.b)
	write := func() {
		t.Helper()
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write()
	capture := captureAdverts(t, l.b)
	p := start(t, l.a.ns, "govs "+l.a.ip, govsBinary(t), "run", "-f", conf, "--socket", "-", "--no-dataplane")
	if _, ok := waitVIP(t, l.a, true, 5*time.Second); !ok {
		t.Fatal("govs never became MASTER")
	}

	reload := func(what string) time.Time {
		t.Helper()
		before := strings.Count(p.out.String(), "configuration reloaded")
		at := time.Now()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		end := time.Now().Add(5 * time.Second)
		for strings.Count(p.out.String(), "configuration reloaded") == before {
			if time.Now().After(end) {
				t.Fatalf("%s: no reload logged", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return at
	}
	// watch polls the VIP until limit and reports whether it was ever missing.
	watch := func(limit time.Duration) (lost bool) {
		end := time.Now().Add(limit)
		for time.Now().Before(end) {
			if !hasVIP(t, l.a) {
				lost = true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return lost
	}

	text = strings.Replace(text, "global_defs {\n", "global_defs {\n  notification_email {\n    ops@example.org\n  }\n  notification_email_from lb@example.org\n", 1)
	write()
	at := reload("notification_email")
	lost := watch(5 * s.interval)
	ads := capture.since(at)
	if lost {
		t.Error("the VIP left the master during a reload that changes no VRRP setting")
	}
	if len(ads) < 3 {
		t.Errorf("%d adverts in the %v after the reload, want ≥ 3 (interval %v)", len(ads), 5*s.interval, s.interval)
	}
	for _, ad := range ads {
		if ad.priority != 150 {
			t.Errorf("advert with priority %d after the reload, want 150 throughout", ad.priority)
		}
	}

	// Control: a VRRP edit restarts the instance, which leaves cleanly.
	text = strings.Replace(text, "priority 150", "priority 160", 1)
	write()
	at = reload("priority")
	if _, ok := waitVIP(t, l.a, true, 5*time.Second); !ok {
		t.Fatal("no VIP after the priority edit")
	}
	watch(3 * s.interval)
	var zero, restarted bool
	for _, ad := range capture.since(at) {
		zero = zero || ad.priority == 0
		restarted = restarted || ad.priority == 160
	}
	if !zero || !restarted {
		t.Errorf("priority edit: priority-0 advert seen %v, priority 160 seen %v; the capture should see the restart", zero, restarted)
	}
	p.term()
	p.wait(t)
}
