package director_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// drRealServer makes ns a DR real server of vip: the VIP on lo with
// arp_ignore=1 and arp_announce=2, and an HTTP server on every address
// (the VIP for clients, its own for TCP_CHECK) answering "real\n".
func drRealServer(t *testing.T, ns *netnstest.NS, vip string) {
	t.Helper()
	ns.HoldVIP(vip)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "real\n") }),
		ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
}

// dialVIP opens a TCP connection from client to vip:80.
func dialVIP(client *netnstest.NS, vip string) (net.Conn, error) {
	var c net.Conn
	err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp", vip+":80", 2*time.Second); return err })
	return c, err
}

// getter returns one short request from client to vip:80 on a new
// connection.
func getter(client *netnstest.NS, vip string) func() error {
	return func() error {
		c, err := dialVIP(client, vip)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		_, err = exchange(c, bufio.NewReader(c))
		return err
	}
}

// waitUntil polls cond until it holds, failing the test after bound.
func waitUntil(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load is a client's traffic through a VIP: keep-alive connections with a
// request each every 100 ms, and a new short connection every 20 ms.
type load struct {
	short, failed atomic.Int64
	// broken marks the keep-alive connections that failed; ports are their
	// client ports.
	broken []atomic.Bool
	ports  []uint16
	stop   chan struct{}
	wg     sync.WaitGroup
}

// startLoad opens longLived keep-alive connections and starts the load;
// finish ends it.
func startLoad(t *testing.T, client *netnstest.NS, vip string, longLived int) *load {
	t.Helper()
	l := &load{broken: make([]atomic.Bool, longLived), stop: make(chan struct{})}
	for i := range longLived {
		c, err := dialVIP(client, vip)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		l.ports = append(l.ports, uint16(c.LocalAddr().(*net.TCPAddr).Port))
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			br := bufio.NewReader(c)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				if _, err := exchange(c, br); err != nil {
					l.broken[i].Store(true)
					return
				}
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	get := getter(client, vip)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.short.Add(1)
			if get() != nil {
				l.failed.Add(1)
			}
		}
	}()
	return l
}

// finish stops the load and returns how many keep-alive connections broke.
func (l *load) finish() int {
	close(l.stop)
	l.wg.Wait()
	n := 0
	for i := range l.broken {
		if l.broken[i].Load() {
			n++
		}
	}
	return n
}

// echoNginx starts nginx in ns, listening on port (IPv4 and IPv6) and
// answering every request with "$server_addr $remote_addr": the address it
// was reached at, and the client's as it sees it.
func echoNginx(t *testing.T, ns *netnstest.NS, nginx, dir, name string, port int) {
	t.Helper()
	startNginx(t, ns, nginx, dir, name, "$server_addr", port)
}

// startNginx starts nginx in ns on ports (IPv4 and IPv6), answering every
// request with "FIRST $remote_addr", keeping its files in dir.
func startNginx(t *testing.T, ns *netnstest.NS, nginx, dir, name, first string, ports ...int) {
	t.Helper()
	wdir := filepath.Join(dir, name)
	var listen string
	for _, p := range ports {
		listen += fmt.Sprintf("\t\tlisten %d;\n\t\tlisten [::]:%d;\n", p, p)
	}
	writeFile(t, wdir+".conf", fmt.Sprintf(`worker_processes 1;
error_log %[1]s.error.log;
pid %[1]s.pid;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s.body;
	proxy_temp_path %[1]s.proxy;
	fastcgi_temp_path %[1]s.fastcgi;
	uwsgi_temp_path %[1]s.uwsgi;
	scgi_temp_path %[1]s.scgi;
	server {
%[2]s		location / { return 200 "%[3]s $remote_addr\n"; }
	}
}
`, wdir, listen, first))
	ns.Start(nginx, "-c", wdir+".conf", "-p", dir, "-g", "daemon off;")
}

// flatLAN builds one LAN (bridge br0 in lan): a client (198.18.0.50) and a
// director (198.18.0.2, holding vip) on it, with the director's bridge port
// given a NAPI context for its XDP program's frames and the client's veth
// computing checksums in full (XDP_TX does not finish them).
func flatLAN(t *testing.T, role, vip string) (lan, client, director *netnstest.NS) {
	t.Helper()
	lan = netnstest.NewNS(t, role+"lan")
	lan.Bridge("br0")
	client, director = netnstest.NewNS(t, role+"cl"), netnstest.NewNS(t, role+"dir")
	lan.Join(client, "pc", "198.18.0.50/24")
	lan.Join(director, "pd", "198.18.0.2/24")
	director.Addr("eth0", vip+"/32")
	netnstest.AttachXDPPass(t, lan, "pd")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	return lan, client, director
}

// echoGet asks vip:80 from client on a new connection (HTTP/1.0) and
// returns what an echoNginx answered: its own address and the client's.
// (net/http's transport dials from goroutines of its own, outside the
// client's namespace, so the connection is made here.)
func echoGet(client *netnstest.NS, vip string) (server, seen string, err error) {
	return namedGet(client, "", vip, 80)
}

// twoArmed builds a two-armed director: client (client4/24, client6/64)
// on eth0 facing the director's ext0 (203.0.113.1, 2001:db8:113::1, and the
// VIPs), and the director's int0 (198.18.2.1, 2001:db8:2::1) on the bridge
// br0 of lan, where real servers join. Its veth senders compute checksums
// in full (NAT rewrites them incrementally, as a NIC's receiver would see
// them), and the veths the director's XDP program sends into have a NAPI
// context at the far end (docs/dataplane.md).
func twoArmed(t *testing.T, role, client4, client6, vip4, vip6 string) (client, director, lan *netnstest.NS) {
	t.Helper()
	client, director, lan = netnstest.NewNS(t, role+"cl"), netnstest.NewNS(t, role+"dir"), netnstest.NewNS(t, role+"lan")
	netnstest.Veth(t, client, "eth0", director, "ext0")
	client.MustRun("ip", "addr", "add", client4+"/24", "dev", "eth0")
	client.MustRun("ip", "addr", "add", client6+"/64", "dev", "eth0", "nodad")
	director.MustRun("ip", "addr", "add", "203.0.113.1/24", "dev", "ext0")
	director.MustRun("ip", "addr", "add", "2001:db8:113::1/64", "dev", "ext0", "nodad")
	director.MustRun("ip", "addr", "add", vip4+"/32", "dev", "ext0")
	director.MustRun("ip", "addr", "add", vip6+"/128", "dev", "ext0", "nodad")
	lan.Bridge("br0")
	netnstest.Veth(t, director, "int0", lan, "pd")
	lan.MustRun("ip", "link", "set", "pd", "master", "br0")
	director.MustRun("ip", "addr", "add", "198.18.2.1/24", "dev", "int0")
	director.MustRun("ip", "addr", "add", "2001:db8:2::1/64", "dev", "int0", "nodad")
	netnstest.AttachXDPPass(t, client, "eth0")
	netnstest.AttachXDPPass(t, lan, "pd")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	return client, director, lan
}

// waitResolved waits until the director's neighbour table has a MAC for
// each address: the data plane sends new connections to a real server only
// once it is resolved, so a test about how connections spread waits for all.
func waitResolved(t *testing.T, director *netnstest.NS, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		waitUntil(t, "the director to resolve "+a, 30*time.Second, func() bool {
			out, err := director.Run("ip", "neigh", "show", "to", a)
			return err == nil && strings.Contains(out, "lladdr")
		})
	}
}
