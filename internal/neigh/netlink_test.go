package neigh

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// collector gathers updates and waits for one that matches.
type collector struct {
	t  *testing.T
	ch <-chan Update
}

func (c collector) waitFor(what string, timeout time.Duration, match func(Update) bool) Update {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case u, ok := <-c.ch:
			if !ok {
				c.t.Fatalf("update channel closed while waiting for %s", what)
			}
			c.t.Logf("update: %s", u)
			if match(u) {
				return u
			}
		case <-deadline:
			c.t.Fatalf("no update within %s: %s", timeout, what)
		}
	}
}

func (c collector) waitClosed(timeout time.Duration) {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-c.ch:
			if !ok {
				return
			}
		case <-deadline:
			c.t.Fatalf("update channel still open %s after cancel", timeout)
		}
	}
}

func macOf(t *testing.T, ns *netnstest.NS, dev string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// TestPrivilegedResolver resolves a peer over IPv4 and IPv6, follows a MAC
// change (announced by gratuitous ARP for IPv4, re-resolved after the entry
// is deleted for IPv6), and reports a silent host and an unroutable address.
//
//	director eth0 (198.18.0.1, 2001:db8::1) ──veth── eth0 server (198.18.0.2, 2001:db8::2)
func TestPrivilegedResolver(t *testing.T) {
	netnstest.RequireRoot(t)
	dir := netnstest.NewNS(t, "ndir")
	srv := netnstest.NewNS(t, "nsrv")
	netnstest.Veth(t, dir, "eth0", srv, "eth0")
	dir.Addr("eth0", "198.18.0.1/24")
	srv.Addr("eth0", "198.18.0.2/24")
	dir.MustRun("ip", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
	srv.MustRun("ip", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")

	h := dir.Handle()
	k, err := NewNetlinkKernel(&h)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	r, err := NewResolver(Options{Kernel: k, ResolveTimeout: time.Second, CheckInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	srv4, srv6 := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")
	silent, unroutable := netip.MustParseAddr("198.18.0.9"), netip.MustParseAddr("203.0.113.5")
	start := time.Now()
	c := collector{t: t, ch: r.Watch(ctx, []netip.Addr{srv4, srv6, silent, unroutable})}

	mac0 := macOf(t, srv, "eth0")
	ifindex := 0
	if err := dir.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		ifindex = ifi.Index
		return err
	}); err != nil {
		t.Fatal(err)
	}

	seen := map[netip.Addr]Update{}
	c.waitFor("both server addresses resolved, silent host and unroutable address reported", 5*time.Second, func(u Update) bool {
		seen[u.IP] = u
		return seen[srv4].Resolved && seen[srv6].Resolved && seen[silent].IP.IsValid() && seen[unroutable].IP.IsValid()
	})
	t.Logf("all four reported after %s", time.Since(start))
	for _, ip := range []netip.Addr{srv4, srv6} {
		if u := seen[ip]; u.MAC.String() != mac0.String() || u.Ifindex != ifindex {
			t.Errorf("%s: got %s on %d, want %s on %d", ip, u.MAC, u.Ifindex, mac0, ifindex)
		}
		if mac, idx, ok := r.Lookup(ip); !ok || mac.String() != mac0.String() || idx != ifindex {
			t.Errorf("Lookup(%s) = %s %d %v", ip, mac, idx, ok)
		}
	}
	if u := seen[silent]; u.Resolved || !errors.Is(u.Err, ErrTimeout) {
		t.Errorf("silent host: %+v, want unresolved with ErrTimeout", u)
	}
	if u := seen[unroutable]; u.Resolved || u.Err == nil || !strings.Contains(u.Err.Error(), "route") {
		t.Errorf("unroutable: %+v, want a route error", u)
	}
	if _, _, ok := r.Lookup(silent); ok {
		t.Error("Lookup(silent) resolved")
	}

	// The server is replaced (new MAC) and announces itself like keepalived
	// does: a gratuitous ARP request.
	mac1, _ := net.ParseMAC("02:00:5e:00:00:99")
	srv.MustRun("ip", "link", "set", "dev", "eth0", "address", mac1.String())
	if err := srv.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		ac, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer ac.Close()
		p, err := arp.NewPacket(arp.OperationRequest, mac1, srv4, ethernet.Broadcast, srv4)
		if err != nil {
			return err
		}
		return ac.WriteTo(p, ethernet.Broadcast)
	}); err != nil {
		t.Fatal(err)
	}
	c.waitFor("new MAC for "+srv4.String(), 5*time.Second, func(u Update) bool {
		return u.IP == srv4 && u.Resolved && u.MAC.String() == mac1.String()
	})

	// No announcement for IPv6: the entry is dropped, the resolver solicits again.
	dir.MustRun("ip", "neigh", "del", srv6.String(), "dev", "eth0")
	c.waitFor("new MAC for "+srv6.String(), 5*time.Second, func(u Update) bool {
		return u.IP == srv6 && u.Resolved && u.MAC.String() == mac1.String()
	})
	if mac, _, ok := r.Lookup(srv6); !ok || mac.String() != mac1.String() {
		t.Errorf("Lookup(%s) after change = %s %v", srv6, mac, ok)
	}

	cancel()
	c.waitClosed(2 * time.Second)
}
