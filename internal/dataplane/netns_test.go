package dataplane

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

// TestPrivilegedDRHTTP runs real HTTP connections, over IPv4 and IPv6,
// through the XDP director in DR mode:
//
//	client    198.18.0.50   2001:db8::50 ──┐
//	director  198.18.0.2    2001:db8::2  ──┤ br0 (ns lan)
//	real1     198.18.0.11   2001:db8::11 ──┤
//	real2     198.18.0.12   2001:db8::12 ──┘
//
// The VIPs (198.18.0.100, 2001:db8::100) are on the director's eth0 (it
// answers ARP/NDP for them) and on lo of each real server (arp_ignore=1,
// arp_announce=2; Linux answers NDP only for addresses of the receiving
// interface). The client's SYN reaches the director, XDP rewrites the
// destination MAC and sends the frame back out (XDP_TX); the real server
// answers the client directly.
func TestPrivilegedDRHTTP(t *testing.T) {
	netnstest.RequireRoot(t)
	const vip, vip6s = "198.18.0.100", "2001:db8::100"
	lan := netnstest.NewNS(t, "lan")
	lan.Bridge("br0")
	client := netnstest.NewNS(t, "client")
	director := netnstest.NewNS(t, "dir")
	reals := []*netnstest.NS{netnstest.NewNS(t, "real1"), netnstest.NewNS(t, "real2")}

	plug := func(ns *netnstest.NS, port, addr, addr6 string) {
		lan.Join(ns, port, addr)
		ns.MustRun("ip", "addr", "add", addr6, "dev", "eth0", "nodad")
		ns.Sysctl("net.ipv4.conf.all.rp_filter", "0")
		ns.Sysctl("net.ipv4.conf.eth0.rp_filter", "0")
	}
	plug(client, "pc", "198.18.0.50/24", "2001:db8::50/64")
	plug(director, "pd", "198.18.0.2/24", "2001:db8::2/64")
	director.Addr("eth0", vip+"/32")
	director.MustRun("ip", "addr", "add", vip6s+"/128", "dev", "eth0", "nodad")
	// Frames the director sends with XDP_TX arrive at its peer without an
	// skb; the peer needs a NAPI context to take them.
	netnstest.AttachXDPPass(t, lan, "pd")
	// veth hands on partial checksums; XDP_TX would forward them unfinished.
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	for i, ns := range reals {
		plug(ns, fmt.Sprintf("pr%d", i+1), fmt.Sprintf("198.18.0.%d/24", 11+i), fmt.Sprintf("2001:db8::%d/64", 11+i))
		ns.Addr("lo", vip+"/32")
		ns.MustRun("ip", "addr", "add", vip6s+"/128", "dev", "lo", "nodad")
		for _, dev := range []string{"all", "lo"} {
			ns.Sysctl("net.ipv4.conf."+dev+".arp_ignore", "1")
			ns.Sysctl("net.ipv4.conf."+dev+".arp_announce", "2")
		}
	}

	// A Go HTTP server in each real server namespace, listening on the VIPs.
	var mu sync.Mutex
	served := map[string]int{}
	body := strings.Repeat("x", 64<<10)
	for i, ns := range reals {
		name := fmt.Sprintf("real%d", i+1)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fam := "v4"
			if strings.HasPrefix(r.Host, "[") {
				fam = "v6"
			}
			mu.Lock()
			served[name+"/"+fam]++
			mu.Unlock()
			io.WriteString(w, body)
		}), ReadHeaderTimeout: 5 * time.Second}
		t.Cleanup(func() { srv.Close() })
		for _, addr := range []string{vip + ":80", "[" + vip6s + "]:80"} {
			var ln net.Listener
			if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
				t.Fatalf("listen on %s in %s: %v", addr, name, err)
			}
			go srv.Serve(ln)
		}
	}

	d, err := Open(Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	var rs, rs6 []Real
	for i, ns := range reals {
		mac, err := net.ParseMAC(strings.TrimSpace(ns.MustRun("cat", "/sys/class/net/eth0/address")))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, Real{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), Weight: 1, MAC: mac})
		rs6 = append(rs6, Real{Addr: netip.MustParseAddr(fmt.Sprintf("2001:db8::%d", 11+i)), Weight: 1, MAC: mac})
	}
	err = director.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		for i := range rs {
			rs[i].Ifindex, rs6[i].Ifindex = ifi.Index, ifi.Index
		}
		if err := d.Attach(ifi.Index, Native); err != nil {
			return err
		}
		return d.Apply(State{Services: []Service{
			// mh-port: one client's connections spread (plain mh, as IPVS's,
			// keeps a client on one server).
			{Addr: netip.MustParseAddr(vip), Port: 80, Protocol: TCP, Scheduler: sched.Maglev, HashPort: true, Reals: rs},
			{Addr: netip.MustParseAddr(vip6s), Port: 80, Protocol: TCP, Scheduler: sched.RoundRobin, Reals: rs6},
		}})
	})
	if err != nil {
		t.Fatalf("set up director: %v", err)
	}

	counter := func(ns *netnstest.NS, dev, name string) uint64 {
		out := ns.MustRun("cat", "/sys/class/net/"+dev+"/statistics/"+name)
		v, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	realTX := func() (n uint64) {
		for _, ns := range reals {
			n += counter(ns, "eth0", "tx_bytes")
		}
		return n
	}
	dirBytes := func() uint64 { return counter(director, "eth0", "rx_bytes") + counter(director, "eth0", "tx_bytes") }
	realTX0, dir0 := realTX(), dirBytes()

	const requests = 20 // per family
	for i := 0; i < 2*requests; i++ {
		addr := vip + ":80"
		if i%2 == 1 {
			addr = "[" + vip6s + "]:80"
		}
		got, err := httpGet(client, addr)
		if err != nil {
			st, _ := d.Stats()
			t.Logf("director eth0:\n%s", director.MustRun("ethtool", "-S", "eth0"))
			t.Fatalf("request %d to %s: %v (stats %+v)", i, addr, err, st)
		}
		if len(got) != len(body) {
			t.Fatalf("request %d: %d bytes, want %d", i, len(got), len(body))
		}
	}
	realSent, dirSeen := realTX()-realTX0, dirBytes()-dir0
	t.Logf("served %v; real servers sent %d bytes, director interface saw %d bytes", served, realSent, dirSeen)
	for _, k := range []string{"real1/v4", "real2/v4", "real1/v6", "real2/v6"} {
		if served[k] == 0 {
			t.Errorf("no connection reached %s: %v", k, served)
		}
	}
	if realSent < 2*requests*uint64(len(body)) {
		t.Errorf("real servers sent only %d bytes", realSent)
	}
	if dirSeen*10 > realSent {
		t.Errorf("director saw %d bytes for %d bytes of replies: replies cross the director", dirSeen, realSent)
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Services {
		if s.NewConns < requests || s.Reals[0].NewConns == 0 || s.Reals[1].NewConns == 0 {
			t.Errorf("counters of %s: %+v", s.Service, s)
		}
	}
	err = director.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return d.Detach(ifi.Index)
	})
	if err != nil {
		t.Errorf("detach: %v", err)
	}
	if out := director.MustRun("ip", "link", "show", "eth0"); strings.Contains(out, "xdp") {
		t.Errorf("XDP still attached after Detach: %s", out)
	}
}

// httpGet opens a TCP connection from inside ns and fetches / over it.
func httpGet(ns *netnstest.NS, addr string) ([]byte, error) {
	var conn net.Conn
	if err := ns.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
