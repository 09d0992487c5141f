package director_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedBGPAnnouncesReadyVIPs runs `govs run` with a govs_bgp block
// against BIRD 2 as the router: the director announces its VIP as a /32
// with its own address as next hop once its real server is up (BIRD
// installs the route and the router reaches the real server through the
// director); it withdraws it when the real server's check fails (quorum
// lost) and announces it again when the server is back; `govs bgp drain`
// withdraws it and `govs bgp undrain` announces it again; a clean stop
// withdraws it.
func TestPrivilegedBGPAnnouncesReadyVIPs(t *testing.T) {
	netnstest.RequireRoot(t)
	birdPath, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("bird (Debian's bird2) is not installed")
	}
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()
	const vip, routerIP, directorIP, realIP = "198.18.5.100", "198.18.5.1", "198.18.5.11", "198.18.5.21"

	lan := netnstest.NewNS(t, "blan")
	lan.Bridge("br0")
	router, director, real := netnstest.NewNS(t, "brt"), netnstest.NewNS(t, "bdir"), netnstest.NewNS(t, "bweb")
	lan.Join(router, "pr", routerIP+"/24")
	lan.Join(director, "pd", directorIP+"/24")
	lan.Join(real, "pw", realIP+"/24")
	netnstest.AttachXDPPass(t, lan, "pd")
	// The router's own packets leave its veth with the checksum to be
	// computed; XDP_TX does not finish it (docs/dataplane.md).
	router.MustRun("ethtool", "-K", "eth0", "tx", "off")
	drRealServer(t, real, vip)

	birdConf := filepath.Join(dir, "bird.conf")
	birdSock := filepath.Join(dir, "bird.ctl")
	writeFile(t, birdConf, fmt.Sprintf(`router id %s;
protocol device {}
protocol kernel {
	ipv4 { import none; export all; };
}
protocol bgp director {
	local %s as 65000;
	neighbor %s as 65001;
	hold time 9;
	ipv4 { import all; export none; };
}
`, routerIP, routerIP, directorIP))
	router.Start(birdPath, "-f", "-c", birdConf, "-s", birdSock)
	birdRoute := func() string {
		out, _ := router.Run("birdc", "-s", birdSock, "show", "route", "for", vip+"/32", "all")
		return out
	}

	conf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, conf, fmt.Sprintf(`global_defs {
    govs_xdp_interface eth0
}
govs_bgp {
    router_id %s
    local_as 65001
    community 65001:100
    neighbor %s {
        remote_as 65000
        hold_time 9
        keepalive_interval 3
    }
}
virtual_server %s 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server %s 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`, directorIP, routerIP, vip, realIP))
	sock := filepath.Join(dir, "govs.sock")
	cmd := director.Start(govs, "run", "-f", conf, "--socket", sock)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	})

	announced := func() bool { r := birdRoute(); return strings.Contains(r, "via "+directorIP) }
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := router.Run("birdc", "-s", birdSock, "show", "route", "all")
			out2, _ := router.Run("birdc", "-s", birdSock, "show", "protocols", "all", "director")
			out3, _ := router.Run("ip", "route")
			t.Logf("BIRD routes:\n%s\nBIRD protocol:\n%s\nrouter's routes:\n%s\nGET: %v", out, out2, out3, getter(router, vip)())
		}
	})
	waitUntil(t, "BIRD to learn the VIP from govs", 30*time.Second, announced)
	r := birdRoute()
	t.Logf("BIRD:\n%s", r)
	if !strings.Contains(r, "(65001,100)") || !strings.Contains(r, "BGP.as_path: 65001") {
		t.Errorf("announcement lacks the community or the AS path:\n%s", r)
	}
	// The router, as ECMP routers do, sends the VIP's traffic to the
	// director, which balances it.
	waitUntil(t, "the router to reach the VIP through the director", 10*time.Second, func() bool { return getter(router, vip)() == nil })

	real.MustRun("ip", "link", "set", "eth0", "down")
	waitUntil(t, "the VIP withdrawn once its only real server is down", 20*time.Second, func() bool { return !announced() })
	real.MustRun("ip", "link", "set", "eth0", "up")
	waitUntil(t, "the VIP announced again with the server back", 20*time.Second, announced)

	// A drain withdraws it while the director keeps running; undrain
	// brings it back.
	director.MustRun(govs, "bgp", "drain", "--socket", sock)
	waitUntil(t, "the VIP withdrawn by govs bgp drain", 10*time.Second, func() bool { return !announced() })
	director.MustRun(govs, "bgp", "undrain", "--socket", sock)
	waitUntil(t, "the VIP announced again by govs bgp undrain", 10*time.Second, announced)

	list := director.MustRun(govs, "list", "--socket", sock, "-n")
	for _, want := range []string{"BGP AS 65001 router id " + directorIP, "BGP neighbor " + routerIP + " AS 65000: established", "BGP announcing " + vip + "/32"} {
		if !strings.Contains(list, want) {
			t.Errorf("govs list has no %q:\n%s", want, list)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if err := cmd.Wait(); err != nil {
		t.Errorf("govs run after SIGTERM: %v", err)
	}
	waitUntil(t, "the VIP withdrawn after a clean stop", 10*time.Second, func() bool { return !announced() })
}
