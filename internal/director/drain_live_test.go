package director_test

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedDrainUnderLoad: `govs drain REAL` on a running director
// sends no new connection to the real server while every established one,
// to it too, goes on answering; `govs undrain REAL` brings new connections
// back to it.
func TestPrivilegedDrainUnderLoad(t *testing.T) {
	netnstest.RequireRoot(t)
	nginx := netnstest.Nginx(t)
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()
	const vip = "198.18.0.100"
	lan, client, director := flatLAN(t, "d", vip)
	var servers string
	for i := range 2 {
		ns := netnstest.NewNS(t, fmt.Sprintf("dw%d", i+1))
		addr := fmt.Sprintf("198.18.0.%d", 11+i)
		lan.Join(ns, fmt.Sprintf("pw%d", i+1), addr+"/24")
		ns.HoldVIP(vip)
		namedNginx(t, ns, nginx, dir, fmt.Sprintf("web%d", i+1), 80)
		servers += fmt.Sprintf("    real_server %s 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n", addr)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, conf, "global_defs {\n    govs_xdp_interface eth0\n}\nvirtual_server "+vip+" 80 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n"+servers+"}\n")
	sock := filepath.Join(dir, "govs.sock")
	cmd := director.Start(govs, "run", "-f", conf, "--socket", sock)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	get := func() (string, error) { s, _, err := namedGet(client, "", vip, 80); return s, err }
	// Both servers in the data plane (each is added once its MAC resolves).
	seen := map[string]bool{}
	waitUntil(t, "both real servers to answer", 30*time.Second, func() bool {
		if s, err := get(); err == nil {
			seen[s] = true
		}
		return seen["web1"] && seen["web2"]
	})

	// Keep-alive connections on both servers.
	var kept []*keptConn
	on := map[string]int{}
	for len(kept) < 10 {
		kc, err := dialKept(client, "198.18.0.50", vip, 80)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kc.c.Close() })
		server, err := kc.ask()
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, kc)
		on[server]++
	}
	if on["web2"] == 0 {
		t.Fatalf("no keep-alive connection on web2: %v", on)
	}
	director.MustRun(govs, "drain", "--socket", sock, "198.18.0.12")
	served := map[string]int{}
	for i := range 200 {
		server, err := get()
		if err != nil {
			t.Fatalf("new request %d after the drain: %v", i, err)
		}
		served[server]++
		// Established connections, to the drained server too, go on.
		if i%20 == 0 {
			for j, kc := range kept {
				if _, err := kc.ask(); err != nil {
					t.Fatalf("keep-alive connection %d broke after the drain: %v", j, err)
				}
			}
		}
	}
	if served["web2"] != 0 || served["web1"] != 200 {
		t.Errorf("after draining web2, new connections went to %v", served)
	}
	director.MustRun(govs, "undrain", "--socket", sock, "198.18.0.12")
	served = map[string]int{}
	for range 20 {
		if server, err := get(); err == nil {
			served[server]++
		}
	}
	if served["web2"] == 0 {
		t.Errorf("after undrain, new connections went to %v", served)
	}
	t.Logf("keep-alive connections %v; all answered through the drain", on)
}
