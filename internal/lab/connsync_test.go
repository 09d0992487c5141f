package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedLabConnSyncFailover runs the scenario's failover with
// long-lived keep-alive connections: dir1 dies while they carry requests,
// dir2 takes the VIP. With lvs_sync_daemon (the lab's default
// configuration) dir2 knows every connection's real server and none
// breaks; with the line removed, dir2 schedules mid-flow packets afresh
// with rr and some reach the other web server, which resets them.
func TestPrivilegedLabConnSyncFailover(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	govs := netnstest.BuildGovs(t)
	t.Run("sync", func(t *testing.T) {
		broken, total := failover(t, govs, true)
		t.Logf("with connection sync: %d of %d connections broke", broken, total)
		if broken != 0 {
			t.Fatalf("%d of %d connections broke despite connection sync", broken, total)
		}
	})
	t.Run("nosync", func(t *testing.T) {
		broken, total := failover(t, govs, false)
		t.Logf("without connection sync: %d of %d connections broke", broken, total)
		if broken == 0 {
			t.Fatalf("no connection broke without sync: the failover did not move them, so the sync case proves nothing")
		}
	})
}

const failoverConns = 12

// failover brings a lab up, opens keep-alive connections, kills dir1 and
// returns how many connections failed after dir2 took over.
func failover(t *testing.T, govs string, withSync bool) (broken, total int) {
	cmd := []string{"{govs}", "run", "-f", "{conf}", "--socket", "{state}/{dir}.sock"}
	if !withSync {
		// The copy's name contains the conf path, so the process keeps the
		// marker the lab stops it by.
		cmd = []string{"sh", "-c", "sed /lvs_sync_daemon/d {conf} > {conf}.nosync && exec {govs} run -f {conf}.nosync --socket {state}/{dir}.sock"}
	}
	name := labName(t)
	st := upForTest(t, Options{Name: name, Webs: 2, WebServer: WebNginx, Govs: govs, DirectorCmd: cmd})
	topo := Topology{Name: name, Webs: 2}
	stateDir := filepath.Dir(st.Files["dir1"])
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range (Topology{}).DirectorRoles() {
				out, _ := exec.Command("tail", "-n", "30", filepath.Join(stateDir, d+".log")).CombinedOutput()
				t.Logf("%s log:\n%s", d, out)
			}
		}
	})
	waitState(t, filepath.Join(stateDir, "dir1.sock"), "MASTER", 15*time.Second)
	waitState(t, filepath.Join(stateDir, "dir2.sock"), "BACKUP", 15*time.Second)
	// Both web servers up in dir1's checks (rr alternates over both).
	deadline := time.Now().Add(20 * time.Second)
	seen := map[string]bool{}
	for len(seen) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the service did not answer from both web servers: %v", seen)
		}
		if body, err := Fetch(topo.NS("client"), PublicIP, Port, 2*time.Second); err == nil {
			seen[strings.TrimSpace(body)] = true
		}
		time.Sleep(100 * time.Millisecond)
	}

	conns := make([]*keepAlive, failoverConns)
	for i := range conns {
		c, err := dialKeepAlive(topo.NS("client"), fmt.Sprintf("%s:%d", PublicIP, Port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		conns[i] = c
	}
	servers := map[string]int{}
	for _, c := range conns {
		first, err := c.get()
		if err != nil {
			t.Fatalf("first request: %v", err)
		}
		c.server = first
		servers[first]++
	}
	t.Logf("connections per web server: %v", servers)
	if len(servers) < 2 {
		t.Fatalf("all connections on one web server (%v): rr did not spread them", servers)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(stop)
		}()
	}
	// Let a few sync rounds (200 ms) pass.
	time.Sleep(1500 * time.Millisecond)

	var dir1 Process
	for _, p := range st.Processes {
		if p.Role == "dir1" {
			dir1 = p
		}
	}
	if dir1.PID <= 1 || !alive(dir1.PID, dir1.Marker) {
		t.Fatalf("dir1's govs (%+v) is not running", dir1)
	}
	// A dead host answers nothing; a host whose daemon alone died still
	// holds the VIP, and its kernel would reset the flows itself. So the
	// host goes off the LAN with its daemon.
	nsOut(t, topo.NS("dir1"), "ip", "link", "set", "eth0", "down")
	if err := syscall.Kill(dir1.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill dir1's govs: %v", err)
	}
	killed := time.Now()
	waitState(t, filepath.Join(stateDir, "dir2.sock"), "MASTER", 15*time.Second)
	t.Logf("dir2 MASTER %s after dir1 died", time.Since(killed).Round(10*time.Millisecond))
	tookOver := time.Now()
	// Requests stall until the router learns the VIP's new MAC: give every
	// connection time to get through the takeover and carry on.
	time.Sleep(6 * time.Second)
	close(stop)
	wg.Wait()
	for i, c := range conns {
		switch {
		case c.err != nil:
			broken++
			t.Logf("connection %d (on %s) broke: %v", i, c.server, c.err)
		case c.lastOK.Before(tookOver):
			broken++
			t.Logf("connection %d (on %s) had no answer after the takeover", i, c.server)
		}
	}
	return broken, len(conns)
}

// waitState polls a director's control socket until its first VRRP
// instance is in state.
func waitState(t *testing.T, sock, state string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if c, err := control.Dial(sock); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			snap, err := c.Status(ctx)
			cancel()
			c.Close()
			if err == nil && len(snap.VRRP) > 0 {
				if snap.VRRP[0].State == state {
					return
				}
				last = snap.VRRP[0].State
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: VRRP state %s after %s, want %s", sock, last, timeout, state)
}

// keepAlive is one HTTP/1.1 connection that carries a request every 100 ms.
type keepAlive struct {
	c      net.Conn
	r      *bufio.Reader
	server string // web server that answered the first request
	err    error
	lastOK time.Time
}

// dialKeepAlive connects from inside namespace ns; the socket stays there.
func dialKeepAlive(ns, addr string) (*keepAlive, error) {
	var c net.Conn
	err := inNS(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, ns, err)
	}
	return &keepAlive{c: c, r: bufio.NewReader(c)}, nil
}

func (k *keepAlive) get() (string, error) {
	// Generous: a request sent while the VIP moves is retransmitted until
	// the router reaches the new MASTER.
	if err := k.c.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
		return "", err
	}
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: lab\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		return "", fmt.Errorf("status %s, close %v", resp.Status, resp.Close)
	}
	return strings.TrimSpace(string(b)), nil
}

// loop sends a request every 100 ms until stop or an error; every answer
// must come from the connection's first server.
func (k *keepAlive) loop(stop <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		srv, err := k.get()
		if err == nil && srv != k.server {
			err = fmt.Errorf("answered by %s, connection began on %s", srv, k.server)
		}
		if err != nil {
			k.err = err
			return
		}
		k.lastOK = time.Now()
	}
}

func (k *keepAlive) close() { k.c.Close() }
