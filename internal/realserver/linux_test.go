package realserver

import (
	"errors"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/mdlayher/arp"
	"golang.org/x/sys/unix"
)

// inNS runs fn with a LinuxHost-backed Manager inside ns.
func inNS(t *testing.T, ns *netnstest.NS, state string, fn func(m *Manager) error) {
	t.Helper()
	err := ns.Do(func() error {
		h, err := NewLinuxHost()
		if err != nil {
			return err
		}
		defer h.Close()
		return fn(&Manager{Host: h, StatePath: state})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPrivilegedUpStatusDown(t *testing.T) {
	netnstest.RequireRoot(t)
	tests := []struct {
		name string
		vips []VIP
	}{
		{"dr ipv4", vips(ModeDR, "198.18.0.100")},
		{"dr ipv6", vips(ModeDR, "2001:db8::100")},
		{"dr both", vips(ModeDR, "198.18.0.100", "2001:db8::100", "198.18.0.101")},
		{"tun ipv4", vips(ModeTUN, "198.18.0.100")},
		{"tun ipv6", vips(ModeTUN, "2001:db8::100")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := netnstest.NewNS(t, "rs")
			ns.Sysctl("net.ipv4.conf.all.rp_filter", "1")
			state := filepath.Join(t.TempDir(), "realserver.json")
			before := ns.MustRun("sh", "-c", "ip -o addr; sysctl -a --pattern 'net.ipv4.conf.(all|lo).(arp_|rp_filter)'")
			inNS(t, ns, state, func(m *Manager) error {
				if _, items, err := m.Status(tt.vips); err != nil || Ready(items) {
					t.Errorf("status before up: ready=%v err=%v", Ready(items), err)
				}
				_, err := m.Up(tt.vips)
				if tt.vips[0].Mode == ModeTUN && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
					if _, derr := m.Down(nil, ""); derr != nil {
						t.Errorf("down after unsupported tunnel: %v", derr)
					}
					t.Skipf("kernel lacks the tunnel device: %v", err)
				}
				if err != nil {
					return err
				}
				if _, items, err := m.Status(tt.vips); err != nil || !Ready(items) {
					t.Errorf("status after up: ready=%v err=%v %+v", Ready(items), err, items)
				}
				if acts, err := m.Up(tt.vips); err != nil || len(acts) != 0 {
					t.Errorf("second up: %v, %v; want no change", acts, err)
				}
				return nil
			})
			out := ns.MustRun("ip", "-o", "addr")
			for _, v := range tt.vips {
				if !strings.Contains(out, v.Prefix().String()) {
					t.Errorf("VIP %s not configured:\n%s", v.Prefix(), out)
				}
				if v.Addr.Is4() && !strings.Contains(out, v.Label()) {
					t.Errorf("VIP %s lacks label %s:\n%s", v.Addr, v.Label(), out)
				}
			}
			if tt.vips[0].Addr.Is4() {
				if got := strings.TrimSpace(ns.MustRun("sysctl", "-n", "net.ipv4.conf.all.arp_ignore")); got != "1" {
					t.Errorf("all.arp_ignore = %s", got)
				}
			}
			inNS(t, ns, state, func(m *Manager) error {
				_, err := m.Down(nil, "")
				return err
			})
			after := ns.MustRun("sh", "-c", "ip -o addr; sysctl -a --pattern 'net.ipv4.conf.(all|lo).(arp_|rp_filter)'")
			if before != after {
				t.Errorf("down did not restore the namespace:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestPrivilegedARPIgnore proves that up stops the host answering ARP for
// the VIP on lo, which it does with the kernel's defaults.
//
//	client (198.18.0.1) eth0 ──veth── eth0 server (198.18.0.2, VIP 198.18.0.100 on lo)
func TestPrivilegedARPIgnore(t *testing.T) {
	netnstest.RequireRoot(t)
	client := netnstest.NewNS(t, "rscli")
	server := netnstest.NewNS(t, "rssrv")
	netnstest.Veth(t, client, "eth0", server, "eth0")
	client.Addr("eth0", "198.18.0.1/24")
	server.Addr("eth0", "198.18.0.2/24")
	vip := netip.MustParseAddr("198.18.0.100")

	ask := func(target netip.Addr) (net.HardwareAddr, error) {
		var mac net.HardwareAddr
		err := client.Do(func() error {
			ifi, err := net.InterfaceByName("eth0")
			if err != nil {
				return err
			}
			c, err := arp.Dial(ifi)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
				return err
			}
			mac, err = c.Resolve(target)
			return err
		})
		return mac, err
	}

	// Sanity: the server answers for its own address.
	if _, err := ask(netip.MustParseAddr("198.18.0.2")); err != nil {
		t.Fatalf("ARP for the server's own address: %v", err)
	}
	server.Addr("lo", "198.18.0.100/32")
	if _, err := ask(vip); err != nil {
		t.Fatalf("with default sysctls the server should answer ARP for a VIP on lo: %v", err)
	}
	server.MustRun("ip", "addr", "del", "198.18.0.100/32", "dev", "lo")

	state := filepath.Join(t.TempDir(), "realserver.json")
	inNS(t, server, state, func(m *Manager) error {
		_, err := m.Up([]VIP{{Addr: vip, Mode: ModeDR}})
		return err
	})
	if mac, err := ask(vip); err == nil {
		t.Fatalf("after up the server still answers ARP for the VIP (MAC %s)", mac)
	}
	if _, err := ask(netip.MustParseAddr("198.18.0.2")); err != nil {
		t.Fatalf("after up the server stopped answering for its own address: %v", err)
	}
	inNS(t, server, state, func(m *Manager) error {
		_, err := m.Down(nil, "")
		return err
	})
}

// TestPrivilegedNDPIgnoresIPv6VIP backs the claim that IPv6 needs no sysctl:
// after up, a neighbour on the link cannot resolve the VIP (Linux answers
// solicitations only for addresses on the receiving interface), while it
// resolves the server's own address.
func TestPrivilegedNDPIgnoresIPv6VIP(t *testing.T) {
	netnstest.RequireRoot(t)
	client := netnstest.NewNS(t, "rs6cli")
	server := netnstest.NewNS(t, "rs6srv")
	netnstest.Veth(t, client, "eth0", server, "eth0")
	client.MustRun("ip", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad")
	server.MustRun("ip", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
	state := filepath.Join(t.TempDir(), "realserver.json")
	inNS(t, server, state, func(m *Manager) error {
		_, err := m.Up(vips(ModeDR, "2001:db8::100"))
		return err
	})
	if _, err := client.Run("ping", "-6", "-c", "1", "-W", "2", "2001:db8::2"); err != nil {
		t.Fatalf("server's own address: %v", err)
	}
	if out, err := client.Run("ping", "-6", "-c", "1", "-W", "1", "2001:db8::100"); err == nil {
		t.Fatalf("the VIP answered from the link:\n%s", out)
	}
	if out := client.MustRun("ip", "-6", "neigh", "show", "2001:db8::100"); strings.Contains(out, "lladdr") {
		t.Errorf("client resolved the VIP: %s", out)
	}
}
