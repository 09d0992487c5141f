package director_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/status"
)

// TestPrivilegedFNATEndToEnd runs `govs run` with lb_kind FNAT and DPVS's
// local_address_group as a two-armed director: clients on 203.0.113.0/24
// and 2001:db8:113::/64 reach VIP:80; nginx real servers on a LAN behind it
// listen on :8080 and have no route to the clients at all (FullNAT needs
// none). 1000 requests per family succeed; the real servers see one of the
// local addresses govs put on its LAN interface, never the client; every
// reply crosses the director (its outgoing counters count them); and a
// clean stop gives the local addresses back.
func TestPrivilegedFNATEndToEnd(t *testing.T) {
	netnstest.RequireRoot(t)
	nginx := netnstest.Nginx(t)
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()

	const (
		vip4, vip6       = "203.0.113.100", "2001:db8:113::100"
		client4, client6 = "203.0.113.10", "2001:db8:113::10"
	)
	laddrs4 := []string{"198.18.2.201", "198.18.2.202"}
	laddrs6 := []string{"2001:db8:2::201"}
	reals := []struct{ v4, v6 string }{{"198.18.2.11", "2001:db8:2::11"}, {"198.18.2.12", "2001:db8:2::12"}}

	client, director, lan := twoArmed(t, "x", client4, client6, vip4, vip6)

	var servers4, servers6 string
	for i, r := range reals {
		ns := netnstest.NewNS(t, fmt.Sprintf("xw%d", i+1))
		lan.Join(ns, fmt.Sprintf("pw%d", i+1), r.v4+"/24")
		ns.MustRun("ip", "addr", "add", r.v6+"/64", "dev", "eth0", "nodad")
		// No default route: the clients are unreachable from here.
		ns.MustRun("ethtool", "-K", "eth0", "tx", "off")
		echoNginx(t, ns, nginx, dir, fmt.Sprintf("web%d", i+1), 8080)
		check := "        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n"
		servers4 += fmt.Sprintf("    real_server %s 8080 {\n%s    }\n", r.v4, check)
		servers6 += fmt.Sprintf("    real_server %s 8080 {\n%s    }\n", r.v6, check)
	}

	conf := filepath.Join(dir, "keepalived.conf")
	group := func(name string, addrs []string) string {
		return "local_address_group " + name + " {\n    " + strings.Join(addrs, " int0\n    ") + " int0\n}\n"
	}
	service := func(vip, group, servers string) string {
		return fmt.Sprintf("virtual_server %s 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind FNAT\n    laddr_group_name %s\n    protocol TCP\n%s}\n", vip, group, servers)
	}
	writeFile(t, conf, "global_defs {\n    govs_xdp_interface ext0\n}\n"+group("L4", laddrs4)+group("L6", laddrs6)+
		service(vip4, "L4", servers4)+service(vip6, "L6", servers6))
	sock := filepath.Join(dir, "govs.sock")
	cmd := director.Start(govs, "run", "-f", conf, "--socket", sock)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	})

	for _, vip := range []string{vip4, vip6} {
		waitUntil(t, "FullNAT service "+vip+" to answer", 30*time.Second, func() bool { _, _, err := echoGet(client, vip); return err == nil })
	}
	before := outPackets(t, sock, status.FullNat)

	const requests = 1000
	for _, fam := range []struct {
		vip    string
		laddrs []string
	}{{vip4, laddrs4}, {vip6, laddrs6}} {
		served, seenAs := map[string]int{}, map[string]int{}
		for i := range requests {
			server, seen, err := echoGet(client, fam.vip)
			if err != nil {
				t.Fatalf("request %d to %s: %v", i, fam.vip, err)
			}
			if !slices.Contains(fam.laddrs, seen) {
				t.Fatalf("real server %s saw the client as %s, want one of the local addresses %v", server, seen, fam.laddrs)
			}
			served[server]++
			seenAs[seen]++
		}
		t.Logf("%s: %d requests served by %v, seen from %v", fam.vip, requests, served, seenAs)
		if len(served) != len(reals) {
			t.Errorf("%s: rr used %d real servers, want %d: %v", fam.vip, len(served), len(reals), served)
		}
		if len(seenAs) != len(fam.laddrs) {
			t.Errorf("%s: connections came from %v, want every local address of %v", fam.vip, seenAs, fam.laddrs)
		}
	}
	after := outPackets(t, sock, status.FullNat)
	for _, vip := range []string{vip4, vip6} {
		if n := after[vip] - before[vip]; n < 3*requests {
			t.Errorf("%s: %d replies crossed the director for %d requests, want at least %d", vip, n, requests, 3*requests)
		}
	}
	if list := director.MustRun(govs, "list", "--socket", sock, "-n"); !strings.Contains(list, "FullNat") {
		t.Errorf("govs list does not show FullNat:\n%s", list)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := cmd.Wait(); err != nil {
		t.Errorf("govs run after SIGTERM: %v", err)
	}
	addrs := director.MustRun("ip", "addr", "show", "dev", "int0")
	for _, a := range append(slices.Clone(laddrs4), laddrs6...) {
		if strings.Contains(addrs, a+"/") {
			t.Errorf("local address %s left on int0 after a clean stop", a)
		}
	}
}
