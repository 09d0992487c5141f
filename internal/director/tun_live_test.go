package director_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/decap"
	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedTUNEndToEnd runs `govs run` with lb_kind TUN, IPv4 and
// IPv6, in IP-in-IP and in GUE (type gue port 6080), on this kernel, which
// has no ipip, ip6tnl or fou module: the nginx real
// servers are prepared with `govs realserver up --mode tun --interface
// eth0`, which decapsulates with govs's XDP program (internal/decap) and
// holds the VIPs on lo. 1000 requests per family succeed, nginx sees the VIP as
// its own address and the client's as the peer's, every request reached
// it through the decapsulation program (its counter), and the replies go
// straight to the client: the director's XDP program forwards nothing
// but client packets.
func TestPrivilegedTUNEndToEnd(t *testing.T) {
	netnstest.RequireRoot(t)
	nginx := netnstest.Nginx(t)
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()
	const (
		vip4, vip6       = "198.18.0.100", "2001:db8::100"
		gue4, gue6       = "198.18.0.101", "2001:db8::101" // lb_kind TUN type gue port 6080
		client4, client6 = "198.18.0.50", "2001:db8::50"
	)
	reals := []struct{ v4, v6 string }{{"198.18.0.11", "2001:db8::11"}, {"198.18.0.12", "2001:db8::12"}}
	// auto picks XDP on this kernel (no ipip); a kernel with the modules
	// would pick its tunnel devices, so the test asks for XDP there.
	decapMode := "auto"
	if _, err := os.Stat("/sys/module/ipip"); err == nil {
		decapMode = "xdp"
	}

	lan := netnstest.NewNS(t, "tlan")
	lan.Bridge("br0")
	client, director := netnstest.NewNS(t, "tcl"), netnstest.NewNS(t, "tdir")
	lan.Join(client, "pc", client4+"/24")
	client.MustRun("ip", "addr", "add", client6+"/64", "dev", "eth0", "nodad")
	lan.Join(director, "pd", "198.18.0.2/24")
	director.MustRun("ip", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad")
	director.MustRun("ip", "addr", "add", vip4+"/32", "dev", "eth0")
	// Deprecated, as govs's VRRP adds IPv6 VIPs: the director's own
	// traffic (its IPv6 checks) must not leave from the VIP, which the real
	// servers hold too.
	director.MustRun("ip", "addr", "add", vip6+"/128", "dev", "eth0", "nodad", "preferred_lft", "0")
	director.MustRun("ip", "addr", "add", gue4+"/32", "dev", "eth0")
	director.MustRun("ip", "addr", "add", gue6+"/128", "dev", "eth0", "nodad", "preferred_lft", "0")
	// Frames the director's XDP program sends back into a veth need a
	// NAPI context at the far end (docs/dataplane.md).
	netnstest.AttachXDPPass(t, lan, "pd")
	// A veth hands locally made packets over with the checksum still to
	// be computed (CHECKSUM_PARTIAL); XDP programs see them as they are,
	// so the senders compute checksums in full, as a NIC's receiver sees
	// them.
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	director.MustRun("ethtool", "-K", "eth0", "tx", "off")

	var realNS []*netnstest.NS
	var servers4, servers6 string
	for i, r := range reals {
		ns := netnstest.NewNS(t, fmt.Sprintf("tw%d", i+1))
		lan.Join(ns, fmt.Sprintf("pw%d", i+1), r.v4+"/24")
		ns.MustRun("ip", "addr", "add", r.v6+"/64", "dev", "eth0", "nodad")
		ns.MustRun("ip", "link", "set", "lo", "up")
		ns.MustRun("ethtool", "-K", "eth0", "tx", "off")
		// What an operator runs: with no ipip/ip6tnl in the kernel, tun
		// mode puts the VIPs on lo and attaches the XDP program.
		state := filepath.Join(dir, fmt.Sprintf("rs%d.json", i+1))
		vips := strings.Join([]string{vip4, vip6, gue4, gue6}, ",")
		out := ns.MustRun(govs, "realserver", "up", "--mode", "tun", "--decap", decapMode, "--interface", "eth0",
			"--gue-port", "6080", "--vip", vips, "--state", state)
		if !strings.Contains(out, "attach XDP decapsulation to eth0") {
			t.Fatalf("govs realserver up did not attach the decapsulation program:\n%s", out)
		}
		t.Cleanup(func() { _, _ = ns.Run(govs, "realserver", "down", "--state", state) })
		if out, err := ns.Run(govs, "realserver", "status", "--mode", "tun", "--decap", decapMode, "--interface", "eth0", "--gue-port", "6080", "--vip", vips, "--state", state); err != nil {
			t.Fatalf("govs realserver status after up: %v\n%s", err, out)
		}
		echoNginx(t, ns, nginx, dir, fmt.Sprintf("web%d", i+1), 80)
		realNS = append(realNS, ns)
		check := "        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n"
		servers4 += fmt.Sprintf("    real_server %s 80 {\n%s    }\n", r.v4, check)
		servers6 += fmt.Sprintf("    real_server %s 80 {\n%s    }\n", r.v6, check)
	}

	conf := filepath.Join(dir, "keepalived.conf")
	service := func(vip, kind, servers string) string {
		return fmt.Sprintf("virtual_server %s 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind %s\n    protocol TCP\n%s}\n", vip, kind, servers)
	}
	const gue = "TUN type gue port 6080"
	writeFile(t, conf, "global_defs {\n    govs_xdp_interface eth0\n}\n"+service(vip4, "TUN", servers4)+service(vip6, "TUN", servers6)+
		service(gue4, gue, servers4)+service(gue6, gue, servers6))
	cmd := director.Start(govs, "run", "-f", conf, "--socket", filepath.Join(dir, "govs.sock"))
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})

	httpGet := func(vip string) (string, error) {
		server, seen, err := echoGet(client, vip)
		return server + " " + seen, err
	}
	const n = 1000
	for _, fam := range []struct{ vip, client string }{{vip4, client4}, {vip6, client6}, {gue4, client4}, {gue6, client6}} {
		waitUntil(t, "requests to "+fam.vip, 20*time.Second, func() bool { _, err := httpGet(fam.vip); return err == nil })
		failed := 0
		for i := range n {
			got, err := httpGet(fam.vip)
			if err != nil {
				// Each failure may take the dial timeout: stop early.
				if failed++; failed > 10 {
					t.Fatalf("requests to %s: %d failed, the last after %d: %v", fam.vip, failed, i, err)
				}
				continue
			}
			if want := fam.vip + " " + fam.client; got != want {
				t.Fatalf("request %d to %s: the real server says %q, want %q (its address, then the client's)", i, fam.vip, got, want)
			}
		}
		if failed != 0 {
			t.Errorf("%d of %d requests to %s failed", failed, n, fam.vip)
		}
	}
	var decapsulated uint64
	for i, ns := range realNS {
		var info decap.Info
		if err := ns.Do(func() (err error) { info, err = decap.Status("eth0"); return err }); err != nil {
			t.Fatal(err)
		}
		if !info.Attached || len(info.VIPs) != 4 || len(info.GUEPorts) != 1 || info.GUEPorts[0] != 6080 {
			t.Fatalf("real server %d: decapsulation %+v", i+1, info)
		}
		decapsulated += info.Counters.Decapsulated
	}
	// Each request is at least a SYN, the request and an ACK or FIN.
	if decapsulated < 3*4*n {
		t.Errorf("the real servers decapsulated %d packets for %d requests", decapsulated, 4*n)
	}
	t.Logf("TUN (IP-in-IP and GUE), decapsulated by govs's XDP program: %d requests, %d packets decapsulated", 4*n, decapsulated)
	for i, ns := range realNS {
		ns.MustRun(govs, "realserver", "down", "--state", filepath.Join(dir, fmt.Sprintf("rs%d.json", i+1)))
		var info decap.Info
		if err := ns.Do(func() (err error) { info, err = decap.Status("eth0"); return err }); err != nil || info.Attached {
			t.Fatalf("after detach: %+v, %v", info, err)
		}
	}
}
