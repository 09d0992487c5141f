package director_test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

	// BFD is off by default: GoBGP opens no BFD socket, and a pause of
	// govs longer than the 1 s that tore GoBGP v4.8's BFD sessions down
	// leaves the session (BIRD's "since" unchanged) and the route alone.
	if out := director.MustRun("ss", "-Hunl", "sport = :3784"); strings.TrimSpace(out) != "" {
		t.Errorf("a BFD socket is open with no bfd configured:\n%s", out)
	}
	session := func() string {
		out, _ := router.Run("birdc", "-s", birdSock, "show", "protocols", "director")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "director") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		return ""
	}
	before := session()
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the pause under test, not a wait for anything
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	holdRE := regexp.MustCompile(`Hold timer:\s+([0-9.]+)/9`)
	waitUntil(t, "BIRD to hear from govs after the pause", 10*time.Second, func() bool {
		out, _ := router.Run("birdc", "-s", birdSock, "show", "protocols", "all", "director")
		m := holdRE.FindStringSubmatch(out)
		if m == nil {
			return false
		}
		left, err := strconv.ParseFloat(m[1], 64)
		heard := time.Now().Add(-time.Duration((9 - left) * float64(time.Second)))
		return err == nil && heard.After(resumed)
	})
	if after := session(); after != before || !strings.Contains(after, "Established") || !announced() {
		t.Errorf("a 1.5 s pause of govs flapped the session: %q before, %q after", before, after)
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

// TestPrivilegedBGPGracefulRestart: with graceful_restart and a pinned
// data plane, `govs run` killed with SIGKILL leaves BIRD holding the VIP's
// route (the session closed without a NOTIFICATION from a speaker that
// said its forwarding survives) while the data plane goes on forwarding a
// long-lived connection; the next `govs run` adopts the data plane,
// re-establishes the session with the Restart State bit and announces the
// VIP before its End-of-RIB, so the router's FIB never loses the route and
// the connection never misses an answer.
func TestPrivilegedBGPGracefulRestart(t *testing.T) {
	netnstest.RequireRoot(t)
	birdPath, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("bird (Debian's bird2) is not installed")
	}
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()
	const vip, routerIP, directorIP, realIP = "198.18.5.100", "198.18.5.1", "198.18.5.11", "198.18.5.21"
	lan := netnstest.NewNS(t, "glan")
	lan.Bridge("br0")
	router, director, real := netnstest.NewNS(t, "grt"), netnstest.NewNS(t, "gdir"), netnstest.NewNS(t, "gweb")
	lan.Join(router, "pr", routerIP+"/24")
	lan.Join(director, "pd", directorIP+"/24")
	lan.Join(real, "pw", realIP+"/24")
	netnstest.AttachXDPPass(t, lan, "pd")
	router.MustRun("ethtool", "-K", "eth0", "tx", "off")
	real.HoldVIP(vip)
	echoName(t, real, "web")

	birdConf, birdSock := filepath.Join(dir, "bird.conf"), filepath.Join(dir, "bird.ctl")
	writeFile(t, birdConf, fmt.Sprintf(`router id %s;
protocol device {}
protocol kernel {
	ipv4 { import none; export all; };
}
protocol bgp director {
	local %s as 65000;
	neighbor %s as 65001;
	hold time 9;
	connect retry time 1;
	error wait time 1, 2;
	graceful restart on;
	ipv4 { import all; export none; };
}
`, routerIP, routerIP, directorIP))
	var mu sync.Mutex
	var deleted []string
	startWatched(t, router, func(line string) {
		if strings.Contains(line, "Deleted") && strings.Contains(line, vip) {
			mu.Lock()
			deleted = append(deleted, line)
			mu.Unlock()
		}
	}, "ip", "-ts", "monitor", "route")
	router.Start(birdPath, "-f", "-c", birdConf, "-s", birdSock)
	birdc := func(args ...string) string {
		out, _ := router.Run("birdc", append([]string{"-s", birdSock}, args...)...)
		return out
	}
	kernelRoute := func() bool {
		out, _ := router.Run("ip", "route", "show", vip)
		return strings.Contains(out, "via "+directorIP)
	}
	established := func() bool { return strings.Contains(birdc("show", "protocols", "director"), "Established") }

	conf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, conf, fmt.Sprintf(`global_defs {
    govs_xdp_interface eth0
}
govs_bgp {
    router_id %s
    local_as 65001
    graceful_restart 30
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
        }
    }
}
`, directorIP, routerIP, vip, realIP))
	sock := filepath.Join(dir, "govs.sock")
	pin := filepath.Join(netnstest.MountBPFFS(t), "govs")
	start := func() *exec.Cmd { return director.Start(govs, "run", "-f", conf, "--socket", sock, "--pin-dir", pin) }
	cmd := start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("BIRD:\n%s\n%s", birdc("show", "protocols", "all", "director"), birdc("show", "route", "all"))
		}
	})
	waitUntil(t, "the router's route to the VIP through the director", 30*time.Second, kernelRoute)

	// A long-lived connection from the router, asking every 100 ms.
	var c net.Conn
	if err := router.Do(func() (err error) { c, err = net.DialTimeout("tcp", vip+":80", 5*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var failed atomic.Value
	var answers atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := bufio.NewReader(c)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			c.SetDeadline(time.Now().Add(time.Second))
			if _, err := c.Write([]byte("name?\n")); err != nil {
				failed.Store(err.Error())
				return
			}
			if _, err := r.ReadString('\n'); err != nil {
				failed.Store(err.Error())
				return
			}
			answers.Add(1)
		}
	}()
	defer func() { close(stop); <-done }()
	waitUntil(t, "answers on the long-lived connection", 10*time.Second, func() bool { return answers.Load() >= 5 })

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitUntil(t, "BIRD to see the session go", 15*time.Second, func() bool { return !established() })
	if !kernelRoute() {
		t.Fatalf("the route went with the session: BIRD did not keep it for the restart\n%s", birdc("show", "protocols", "all", "director"))
	}
	// The pinned data plane forwards with no govs running.
	before := answers.Load()
	waitUntil(t, "answers with govs dead", 10*time.Second, func() bool { return answers.Load() >= before+5 })

	start()
	waitUntil(t, "the session back", 30*time.Second, established)
	waitUntil(t, "the restarted govs to announce the VIP", 30*time.Second, func() bool {
		return strings.Contains(birdc("show", "route", "for", vip, "all"), "BGP.as_path: 65001") && kernelRoute()
	})
	// Past the restarted speaker's End-of-RIB, after which BIRD drops
	// whatever stale route was not announced again.
	after := answers.Load()
	waitUntil(t, "answers after the restart", 10*time.Second, func() bool { return answers.Load() >= after+20 })
	if f := failed.Load(); f != nil {
		t.Fatalf("the long-lived connection failed: %v", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deleted) > 0 {
		t.Fatalf("the router's FIB lost the VIP's route during the restart: %q", deleted)
	}
}
