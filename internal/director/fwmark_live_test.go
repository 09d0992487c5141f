package director_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedFwmarkEndToEnd runs `govs run` with keepalived's fwmark
// virtual servers, marked by real nft rules: TCP 80 and 443 to the VIP
// (IPv4 and IPv6) get mark 1 in prerouting, and `virtual_server fwmark 1`
// (one per family) with persistence balances them in DR over three nginx
// real servers. Each of two clients' connections to both ports reach one
// real server; the clients (scheduled rr) reach different ones; the real
// servers see the client's address; a port the rules do not mark is not
// balanced (the director itself refuses it); and the marked packets took
// the fwmark path (the service's counters count them).
func TestPrivilegedFwmarkEndToEnd(t *testing.T) {
	netnstest.RequireRoot(t)
	nginx := netnstest.Nginx(t)
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()

	const vip4, vip6 = "198.18.2.100", "2001:db8:2::100"
	clients := []struct{ v4, v6 string }{{"198.18.2.50", "2001:db8:2::50"}, {"198.18.2.51", "2001:db8:2::51"},
		{"198.18.2.52", "2001:db8:2::52"}, {"198.18.2.53", "2001:db8:2::53"}}
	reals := []struct{ v4, v6 string }{{"198.18.2.11", "2001:db8:2::11"}, {"198.18.2.12", "2001:db8:2::12"}, {"198.18.2.13", "2001:db8:2::13"}}

	lan, director, client := netnstest.NewNS(t, "flan"), netnstest.NewNS(t, "fdir"), netnstest.NewNS(t, "fcl")
	lan.Bridge("br0")
	lan.Join(director, "pd", "198.18.2.1/24")
	director.MustRun("ip", "addr", "add", "2001:db8:2::1/64", "dev", "eth0", "nodad")
	director.MustRun("ip", "addr", "add", vip4+"/32", "dev", "eth0")
	// Deprecated, as govs's VRRP adds IPv6 VIPs: the director's own
	// traffic (its IPv6 checks) must not leave from the VIP, which the real
	// servers hold too.
	director.MustRun("ip", "addr", "add", vip6+"/128", "dev", "eth0", "nodad", "preferred_lft", "0")
	director.Sysctl("net.ipv4.ip_forward", "1")
	director.Sysctl("net.ipv6.conf.all.forwarding", "1")
	// The director's XDP program redirects into its veth, whose bridge
	// end needs a NAPI context (docs/dataplane.md).
	netnstest.AttachXDPPass(t, lan, "pd")
	lan.Join(client, "pc", clients[0].v4+"/24")
	for i, c := range clients {
		if i > 0 {
			client.MustRun("ip", "addr", "add", c.v4+"/24", "dev", "eth0")
		}
		client.MustRun("ip", "addr", "add", c.v6+"/64", "dev", "eth0", "nodad")
	}

	var servers4, servers6 string
	for i, r := range reals {
		ns := netnstest.NewNS(t, fmt.Sprintf("fw%d", i+1))
		lan.Join(ns, fmt.Sprintf("pw%d", i+1), r.v4+"/24")
		ns.MustRun("ip", "addr", "add", r.v6+"/64", "dev", "eth0", "nodad")
		ns.HoldVIP(vip4)
		ns.MustRun("ip", "addr", "add", vip6+"/128", "dev", "lo", "nodad")
		namedNginx(t, ns, nginx, dir, fmt.Sprintf("web%d", i+1), 80, 443)
		check := "        weight 1\n        TCP_CHECK {\n            connect_port 80\n            connect_timeout 1\n        }\n"
		servers4 += fmt.Sprintf("    real_server %s 80 {\n%s    }\n", r.v4, check)
		servers6 += fmt.Sprintf("    real_server %s 80 {\n%s    }\n", r.v6, check)
	}

	// The operator's rules, as an ipvsadm -f user writes them.
	director.MustRun("sh", "-c", fmt.Sprintf(`nft -f - <<'EOF'
table inet govs_test {
	chain premark {
		type filter hook prerouting priority mangle;
		ip daddr %s tcp dport { 80, 443 } meta mark set 1
		ip6 daddr %s tcp dport { 80, 443 } meta mark set 1
	}
}
EOF`, vip4, vip6))

	conf := filepath.Join(dir, "keepalived.conf")
	service := func(family, servers string) string {
		return fmt.Sprintf("virtual_server fwmark 1 {\n    ip_family %s\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    persistence_timeout 300\n%s}\n", family, servers)
	}
	writeFile(t, conf, service("inet", servers4)+service("inet6", servers6))
	sock := filepath.Join(dir, "govs.sock")
	pin := filepath.Join(netnstest.MountBPFFS(t), "govs")
	startGovs := func() *exec.Cmd { return director.Start(govs, "run", "-f", conf, "--socket", sock, "--pin-dir", pin) }
	cmd := startGovs()

	get := func(src, vip string, port int) (string, string, error) { return namedGet(client, src, vip, port) }
	for _, vip := range []string{vip4, vip6} {
		waitUntil(t, "fwmark service on "+vip+" to answer", 30*time.Second, func() bool { _, _, err := get("", vip, 80); return err == nil })
	}
	// The clients' first connections must find every server in the data plane.
	for _, r := range reals {
		waitResolved(t, director, r.v4, r.v6)
	}

	const requests = 100
	for _, fam := range []struct {
		vip string
		v6  bool
	}{{vip4, false}, {vip6, true}} {
		servedBy := map[string]string{}
		for _, c := range clients {
			src := c.v4
			if fam.v6 {
				src = c.v6
			}
			got := map[string]int{}
			for i := range requests {
				port := []int{80, 443}[i%2]
				server, seen, err := get(src, fam.vip, port)
				if err != nil {
					t.Fatalf("request %d from %s to %s:%d: %v", i, src, fam.vip, port, err)
				}
				if seen != src {
					t.Fatalf("%s saw the client as %s, want %s", server, seen, src)
				}
				got[server]++
			}
			if len(got) != 1 {
				t.Errorf("client %s: its connections to ports 80 and 443 of fwmark 1 went to %v, want one real server (persistence)", src, got)
			}
			for server := range got {
				servedBy[src] = server
			}
		}
		t.Logf("%s: %d requests per client, served by %v", fam.vip, requests, servedBy)
		// Persistence is not one server for everybody: rr (its position
		// is per CPU) spreads the clients' first connections.
		distinct := map[string]bool{}
		for _, s := range servedBy {
			distinct[s] = true
		}
		if len(distinct) < 2 {
			t.Errorf("%s: all %d clients on one real server %v", fam.vip, len(clients), servedBy)
		}
	}
	// Port 8080 is not marked: the director gets it and refuses it.
	if _, _, err := get("", vip4, 8080); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("an unmarked port: %v, want the director's own connection refused", err)
	}
	// The data plane outlives the daemon: with govs SIGKILLed, keep-alive
	// connections to both ports go on and new ones keep their server; a
	// restarted govs adopts it all.
	src := clients[0].v4
	want := servedByFirst(t, get, src, vip4)
	var keep []*keptConn
	for i := range 10 {
		kc, err := dialKept(client, src, vip4, []int{80, 443}[i%2])
		if err != nil {
			t.Fatal(err)
		}
		defer kc.c.Close()
		keep = append(keep, kc)
	}
	askAll := func(when string) {
		t.Helper()
		for i, kc := range keep {
			if server, err := kc.ask(); err != nil || server != want {
				t.Errorf("%s: keep-alive connection %d: %q, %v; want %s", when, i, server, err, want)
			}
		}
		for _, port := range []int{80, 443} {
			if server, _, err := get(src, vip4, port); err != nil || server != want {
				t.Errorf("%s: new connection to port %d: %q, %v; want %s", when, port, server, err, want)
			}
		}
	}
	askAll("before the kill")
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	askAll("govs killed")
	cmd = startGovs()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	waitUntil(t, "the restarted govs to answer", 20*time.Second, func() bool {
		_, err := director.Run(govs, "list", "--socket", sock, "-n")
		return err == nil
	})
	askAll("govs restarted")

	list := director.MustRun(govs, "list", "--socket", sock, "-n")
	for _, want := range []string{"FWM  1 rr persistent 300", "FWM  1 IPv6 rr persistent 300"} {
		if !strings.Contains(list, want) {
			t.Errorf("govs list has no %q:\n%s", want, list)
		}
	}
	// Every request went the fwmark way: its service counted it.
	stats := director.MustRun(govs, "list", "--socket", sock, "-n", "--stats", "--exact")
	t.Logf("govs list --stats:\n%s", stats)
	for _, line := range strings.Split(stats, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "FWM" {
			if conns := f[len(f)-5]; conns == "0" || len(conns) < 3 {
				t.Errorf("service line %q: %s connections, want at least %d", line, conns, requests*len(clients))
			}
		}
	}

	// A clean stop takes the routing away with the data plane: the
	// kernel has the marked packets again (as with IPVS unloaded).
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("govs run after SIGTERM: %v", err)
	}
	if rules := director.MustRun("ip", "rule"); strings.Contains(rules, "fwmark") {
		t.Errorf("fwmark rules left after a clean stop:\n%s", rules)
	}
	if _, err := director.Run("ip", "link", "show", "govs-fwm1"); err == nil {
		t.Error("govs-fwm1 left after a clean stop")
	}
	if _, _, err := get("", vip4, 80); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("port 80 after a clean stop: %v, want the director's own connection refused", err)
	}
}

// servedByFirst is the real server src's connections to vip go to.
func servedByFirst(t *testing.T, get func(src, vip string, port int) (string, string, error), src, vip string) string {
	t.Helper()
	server, _, err := get(src, vip, 80)
	if err != nil {
		t.Fatal(err)
	}
	return server
}

// keptConn is an HTTP/1.1 keep-alive connection to a namedNginx.
type keptConn struct {
	c  net.Conn
	br *bufio.Reader
}

func dialKept(client *netnstest.NS, src, vip string, port int) (*keptConn, error) {
	var c net.Conn
	err := client.Do(func() (err error) {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err = d.Dial("tcp", net.JoinHostPort(vip, fmt.Sprint(port)))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &keptConn{c: c, br: bufio.NewReader(c)}, nil
}

// ask sends one request and returns which real server answered.
func (k *keptConn) ask() (string, error) {
	k.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: govs\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(body))
	if len(f) != 2 {
		return "", fmt.Errorf("answer %q", body)
	}
	return f[0], nil
}

// namedNginx starts nginx in ns on ports (IPv4 and IPv6), answering every
// request with "NAME $remote_addr": which real server it is (in DR every
// real server is reached at the VIP) and the client's address as it sees it.
func namedNginx(t *testing.T, ns *netnstest.NS, nginx, dir, name string, ports ...int) {
	t.Helper()
	startNginx(t, ns, nginx, dir, name, name, ports...)
}

// namedGet asks vip:port from client (from address src, when set) on a new
// connection (HTTP/1.0) and returns the two words a namedNginx or an
// echoNginx answered. (net/http's transport dials from goroutines of its
// own, outside the client's namespace, so the connection is made here.)
func namedGet(client *netnstest.NS, src, vip string, port int) (server, seen string, err error) {
	var body []byte
	err = client.Do(func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		if src != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c, err := d.Dial("tcp", net.JoinHostPort(vip, fmt.Sprint(port)))
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(io.LimitReader(resp.Body, 512))
		return err
	})
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(string(body))
	if len(f) != 2 {
		return "", "", fmt.Errorf("answer %q", body)
	}
	return f[0], f[1], nil
}
