package director_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedKillAndRestartLosesNothing: one director (`govs run
// --pin-dir`) balances a stream of short requests and 50 keep-alive
// connections; it is SIGKILLed (or stopped with SIGTERM under
// --keep-dataplane, a planned restart or upgrade) and started again 2 s
// later. No request fails, every keep-alive connection still works, and the
// connection table survived the restart.
func TestPrivilegedKillAndRestartLosesNothing(t *testing.T) {
	netnstest.RequireRoot(t)
	govs := netnstest.BuildGovs(t)
	for _, tt := range []struct {
		name string
		sig  syscall.Signal
		keep bool
	}{{"SIGKILL", syscall.SIGKILL, false}, {"SIGTERM with --keep-dataplane", syscall.SIGTERM, true}} {
		t.Run(tt.name, func(t *testing.T) { killAndRestart(t, govs, tt.sig, tt.keep) })
	}
}

func killAndRestart(t *testing.T, govs string, sig syscall.Signal, keep bool) {
	dir := t.TempDir()
	bpf := netnstest.MountBPFFS(t)
	pin := filepath.Join(bpf, "govs")

	const vip = "198.18.0.100"
	lan := netnstest.NewNS(t, "lan")
	lan.Bridge("br0")
	client, director, real := netnstest.NewNS(t, "cl"), netnstest.NewNS(t, "dir"), netnstest.NewNS(t, "web")
	for _, p := range []struct {
		ns         *netnstest.NS
		port, addr string
	}{{client, "pc", "198.18.0.50/24"}, {director, "pd", "198.18.0.2/24"}, {real, "pw", "198.18.0.11/24"}} {
		netnstest.Veth(t, p.ns, "eth0", lan, p.port)
		lan.MustRun("ip", "link", "set", p.port, "master", "br0")
		p.ns.Addr("eth0", p.addr)
	}
	director.Addr("eth0", vip+"/32")
	netnstest.AttachXDPPass(t, lan, "pd")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	real.Addr("lo", vip+"/32")
	for _, dev := range []string{"all", "lo"} {
		real.Sysctl("net.ipv4.conf."+dev+".arp_ignore", "1")
		real.Sysctl("net.ipv4.conf."+dev+".arp_announce", "2")
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "real\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	var ln net.Listener
	// On every address: the VIP for clients, its own for the TCP_CHECK.
	if err := real.Do(func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)

	conf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, conf, `global_defs {
    govs_xdp_interface eth0
}
virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`)
	sock := filepath.Join(dir, "govs.sock")
	startGovs := func() *procHandle {
		args := []string{"run", "-f", conf, "--socket", sock, "--pin-dir", pin}
		if keep {
			args = append(args, "--keep-dataplane")
		}
		cmd := director.Start(govs, args...)
		return &procHandle{cmd.Process.Pid, cmd.Wait}
	}
	get := func() error {
		var c net.Conn
		if err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp", vip+":80", 2*time.Second); return err }); err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		_, err := exchange(c, bufio.NewReader(c))
		return err
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		end := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// clientPorts are the client ports in the director's connection
	// table (nil while it does not answer).
	clientPorts := func() map[uint16]bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		c, err := control.DialContext(ctx, sock)
		if err != nil {
			return nil
		}
		defer c.Close()
		conns, err := c.Connections(ctx)
		if err != nil {
			return nil
		}
		out := map[uint16]bool{}
		for _, cn := range conns {
			out[cn.Client.Port()] = true
		}
		return out
	}

	first := startGovs()
	waitUntil("the first govs to balance", func() bool { return get() == nil })

	// Load: 50 keep-alive connections, a request each every 100 ms, and a
	// new short connection every 20 ms.
	const longLived = 50
	var failed, short atomic.Int64
	var longFailed [longLived]atomic.Int64
	var longPorts []uint16
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < longLived; i++ {
		var c net.Conn
		if err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp", vip+":80", 2*time.Second); return err }); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		longPorts = append(longPorts, uint16(c.LocalAddr().(*net.TCPAddr).Port))
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := exchange(c, br); err != nil {
					longFailed[i].Add(1)
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			short.Add(1)
			if get() != nil {
				failed.Add(1)
			}
		}
	}()
	time.Sleep(time.Second) // load before the kill
	before := clientPorts()

	if err := syscall.Kill(first.pid, sig); err != nil {
		t.Fatal(err)
	}
	if err := first.wait(); sig == syscall.SIGTERM && err != nil {
		t.Errorf("govs run after SIGTERM with --keep-dataplane: %v", err)
	}
	// The scenario: the director comes back 2 s later.
	time.Sleep(2 * time.Second)
	second := startGovs()
	waitUntil("the restarted govs to answer", func() bool { return clientPorts() != nil })
	after := clientPorts()
	time.Sleep(time.Second) // load after the restart
	close(stop)
	wg.Wait()

	broken := 0
	for i := range longFailed {
		if longFailed[i].Load() > 0 {
			broken++
		}
	}
	t.Logf("%d short requests, %d failed; %d of %d keep-alive connections broken; connection table %d entries before the kill, %d after the restart",
		short.Load(), failed.Load(), broken, longLived, len(before), len(after))
	if failed.Load() != 0 || short.Load() < 100 {
		t.Errorf("%d of %d short requests failed", failed.Load(), short.Load())
	}
	if broken != 0 {
		t.Errorf("%d of %d keep-alive connections broke", broken, longLived)
	}
	for _, p := range longPorts {
		if !before[p] || !after[p] {
			t.Errorf("keep-alive connection from port %d: in the table before the kill %v, after the restart %v", p, before[p], after[p])
		}
	}
	if err := syscall.Kill(second.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(); err != nil {
		t.Errorf("govs run after SIGTERM: %v", err)
	}
	out := director.MustRun("ip", "link", "show", "eth0")
	if keep != strings.Contains(out, "xdp") {
		t.Errorf("XDP attached after a clean stop: %v, want %v (--keep-dataplane %v):\n%s", !keep, keep, keep, out)
	}
}

type procHandle struct {
	pid  int
	wait func() error
}

// exchange sends one HTTP/1.1 request on c and reads the answer.
func exchange(c net.Conn, br *bufio.Reader) (string, error) {
	req, _ := http.NewRequest("GET", "http://198.18.0.100/", nil)
	if err := req.Write(c); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && string(b) != "real\n" {
		err = fmt.Errorf("answer %q", b)
	}
	return string(b), err
}
