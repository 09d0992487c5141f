package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

// The child process of TestPrivilegedPinnedSurvivesKill: it runs inside
// the director's namespace, opens the data plane pinned at $GOVS_PIN,
// attaches it to eth0, programs the service, says "ready" and waits to be
// killed, as a `govs run` would be.
func TestPinnedChild(t *testing.T) {
	pin := os.Getenv("GOVS_PIN")
	if pin == "" {
		t.Skip("run by TestPrivilegedPinnedSurvivesKill")
	}
	d, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	st, err := pinnedTestState(os.Getenv("GOVS_REAL_MAC"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Attach(st.Services[0].Reals[0].Ifindex, Native); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(st); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	select {}
}

// pinnedTestState is the service both processes program: VIP:80 to one
// real server behind this namespace's eth0.
func pinnedTestState(mac string) (State, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return State{}, err
	}
	ifi, err := net.InterfaceByName("eth0")
	if err != nil {
		return State{}, err
	}
	return State{Services: []Service{{Addr: netip.MustParseAddr("198.18.0.100"), Port: 80, Protocol: TCP, Scheduler: sched.RoundRobin,
		Reals: []Real{{Addr: netip.MustParseAddr("198.18.0.11"), Weight: 1, MAC: hw, Ifindex: ifi.Index}}}}}, nil
}

// TestPrivilegedPinnedSurvivesKill: the process owning a pinned data plane
// is SIGKILLed; XDP goes on forwarding (a keep-alive connection opened
// before and new connections work while no govs runs), and a new data
// plane adopts it: the connection is still in its table, and stays up
// through the adoption and until a clean Close detaches XDP.
func TestPrivilegedPinnedSurvivesKill(t *testing.T) {
	netnstest.RequireRoot(t)
	pin := bpffs(t)
	const vip = "198.18.0.100"
	lan := netnstest.NewNS(t, "lan")
	lan.Bridge("br0")
	client, director, real := netnstest.NewNS(t, "client"), netnstest.NewNS(t, "dir"), netnstest.NewNS(t, "real")
	lan.Join(client, "pc", "198.18.0.50/24")
	lan.Join(director, "pd", "198.18.0.2/24")
	lan.Join(real, "pr", "198.18.0.11/24")
	director.Addr("eth0", vip+"/32")
	netnstest.AttachXDPPass(t, lan, "pd")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	real.HoldVIP(vip)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "real\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	var ln net.Listener
	if err := real.Do(func() (err error) { ln, err = net.Listen("tcp", vip+":80"); return err }); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	mac := strings.TrimSpace(real.MustRun("cat", "/sys/class/net/eth0/address"))

	child := director.Command(os.Args[0], "-test.run=^TestPinnedChild$", "-test.v")
	child.Env = append(os.Environ(), "GOVS_PIN="+pin, "GOVS_REAL_MAC="+mac)
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-child.Process.Pid, syscall.SIGKILL)
		_ = child.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				io.Copy(io.Discard, out)
				return
			}
		}
		ready <- fmt.Errorf("child ended before it was ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child not ready")
	}

	// A keep-alive connection through the director, opened while the
	// child owns the data plane.
	var kc net.Conn
	if err := client.Do(func() (err error) { kc, err = net.DialTimeout("tcp", vip+":80", 3*time.Second); return err }); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	br := bufio.NewReader(kc)
	keepAlive := func(when string) {
		t.Helper()
		kc.SetDeadline(time.Now().Add(5 * time.Second))
		req, _ := http.NewRequest("GET", "http://"+vip+"/", nil)
		if err := req.Write(kc); err != nil {
			t.Fatalf("%s: keep-alive request: %v", when, err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("%s: keep-alive connection broken: %v", when, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "real\n" {
			t.Fatalf("%s: keep-alive answer %q", when, b)
		}
	}
	fresh := func(when string) {
		t.Helper()
		if b, err := httpGet(client, vip+":80"); err != nil || string(b) != "real\n" {
			t.Fatalf("%s: new connection: %q, %v", when, b, err)
		}
	}
	keepAlive("before the kill")

	if err := syscall.Kill(-child.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if out := director.MustRun("ip", "link", "show", "eth0"); !strings.Contains(out, "xdp") {
		t.Fatalf("XDP left eth0 with its process:\n%s", out)
	}
	keepAlive("with no process owning the data plane")
	fresh("with no process owning the data plane")

	var d *Dataplane
	var st State
	if err := director.Do(func() (err error) {
		if d, err = Open(Options{PinPath: pin}); err != nil {
			return err
		}
		if st, err = pinnedTestState(mac); err != nil {
			return err
		}
		return d.Attach(st.Services[0].Reals[0].Ifindex, Native)
	}); err != nil {
		t.Fatal(err)
	}
	if !d.Adopted() {
		t.Fatal("the pinned state was not adopted")
	}
	conns, err := d.Connections()
	if err != nil {
		t.Fatal(err)
	}
	local := kc.LocalAddr().(*net.TCPAddr)
	found := false
	for _, c := range conns {
		found = found || c.Client.Port() == uint16(local.Port)
	}
	if !found {
		t.Errorf("the keep-alive connection (port %d) is not in the adopted table (%d entries)", local.Port, len(conns))
	}
	if err := director.Do(func() error { return d.Apply(st) }); err != nil {
		t.Fatal(err)
	}
	keepAlive("after the adoption")
	fresh("after the adoption")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if out := director.MustRun("ip", "link", "show", "eth0"); strings.Contains(out, "xdp") {
		t.Errorf("XDP still attached after a clean Close:\n%s", out)
	}
	t.Logf("%d connections adopted; table entries survived the kill", len(conns))

}
