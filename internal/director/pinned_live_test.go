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
	lan.Join(client, "pc", "198.18.0.50/24")
	lan.Join(director, "pd", "198.18.0.2/24")
	lan.Join(real, "pw", "198.18.0.11/24")
	director.Addr("eth0", vip+"/32")
	netnstest.AttachXDPPass(t, lan, "pd")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	drRealServer(t, real, vip)

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
	get := getter(client, vip)
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
	waitUntil(t, "the first govs to balance", 20*time.Second, func() bool { return get() == nil })

	// Load: 50 keep-alive connections, a request each every 100 ms, and a
	// new short connection every 20 ms.
	const longLived = 50
	ld := startLoad(t, client, vip, longLived)
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
	waitUntil(t, "the restarted govs to answer", 20*time.Second, func() bool { return clientPorts() != nil })
	after := clientPorts()
	time.Sleep(time.Second) // load after the restart
	broken := ld.finish()
	failed, short, longPorts := &ld.failed, &ld.short, ld.ports
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
