package director_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/status"
)

// TestPrivilegedNATEndToEnd runs `govs run` with keepalived's default
// method, NAT, as a two-armed director: clients on 203.0.113.0/24 and
// 2001:db8:113::/64 reach VIP:80, nginx real servers on a LAN behind the
// director listen on :8080 and route through it. 1000 requests per family
// succeed; the real servers see the client's address; every reply crosses
// the director (its outgoing counters count them); and an ICMP
// frag-needed / packet-too-big a real server's side sends about a flow
// reaches the client from the VIP, quoting the VIP's port.
func TestPrivilegedNATEndToEnd(t *testing.T) {
	netnstest.RequireRoot(t)
	nginx := netnstest.Nginx(t)
	govs := netnstest.BuildGovs(t)
	dir := t.TempDir()

	const (
		vip4, vip6       = "203.0.113.100", "2001:db8:113::100"
		client4, client6 = "203.0.113.10", "2001:db8:113::10"
	)
	reals := []struct{ v4, v6 string }{{"198.18.2.11", "2001:db8:2::11"}, {"198.18.2.12", "2001:db8:2::12"}}

	client, director, lan := twoArmed(t, "n", client4, client6, vip4, vip6)

	var realNS []*netnstest.NS
	var servers4, servers6 string
	for i, r := range reals {
		ns := netnstest.NewNS(t, fmt.Sprintf("nw%d", i+1))
		lan.Join(ns, fmt.Sprintf("pw%d", i+1), r.v4+"/24")
		ns.MustRun("ip", "addr", "add", r.v6+"/64", "dev", "eth0", "nodad")
		ns.MustRun("ip", "route", "add", "default", "via", "198.18.2.1")
		ns.MustRun("ip", "-6", "route", "add", "default", "via", "2001:db8:2::1")
		ns.MustRun("ethtool", "-K", "eth0", "tx", "off")
		ns.MustRun("ip", "link", "set", "lo", "up")
		echoNginx(t, ns, nginx, dir, fmt.Sprintf("web%d", i+1), 8080)
		realNS = append(realNS, ns)
		check := "        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n"
		servers4 += fmt.Sprintf("    real_server %s 8080 {\n%s    }\n", r.v4, check)
		servers6 += fmt.Sprintf("    real_server %s 8080 {\n%s    }\n", r.v6, check)
	}

	conf := filepath.Join(dir, "keepalived.conf")
	service := func(vip, servers string) string {
		// No lb_kind: NAT is keepalived's default.
		return fmt.Sprintf("virtual_server %s 80 {\n    delay_loop 1\n    lb_algo rr\n    protocol TCP\n%s}\n", vip, servers)
	}
	writeFile(t, conf, "global_defs {\n    govs_xdp_interface ext0\n}\n"+service(vip4, servers4)+service(vip6, servers6))
	sock := filepath.Join(dir, "govs.sock")
	cmd := director.Start(govs, "run", "-f", conf, "--socket", sock)
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})

	httpGet := func(vip string) (string, string, error) { return echoGet(client, vip) }
	for _, vip := range []string{vip4, vip6} {
		waitUntil(t, "NAT service "+vip+" to answer", 30*time.Second, func() bool { _, _, err := httpGet(vip); return err == nil })
	}
	before := natOutPackets(t, sock)

	const requests = 1000
	for _, fam := range []struct{ vip, client string }{{vip4, client4}, {vip6, client6}} {
		served := map[string]int{}
		for i := range requests {
			server, seen, err := httpGet(fam.vip)
			if err != nil {
				t.Fatalf("request %d to %s: %v", i, fam.vip, err)
			}
			if seen != fam.client {
				t.Fatalf("real server %s saw the client as %s, want %s", server, seen, fam.client)
			}
			served[server]++
		}
		t.Logf("%s: %d requests served by %v", fam.vip, requests, served)
		if len(served) != len(reals) {
			t.Errorf("%s: rr used %d real servers, want %d: %v", fam.vip, len(served), len(reals), served)
		}
	}
	// Each request's replies (SYN-ACK, the answer, FIN) came back through
	// the director; with DR they would not be counted at all.
	after := natOutPackets(t, sock)
	for _, vip := range []string{vip4, vip6} {
		if n := after[vip] - before[vip]; n < 3*requests {
			t.Errorf("%s: %d replies crossed the director for %d requests, want at least %d", vip, n, requests, 3*requests)
		}
	}

	// ICMP about a NAT flow, sent by the real server's side towards the
	// client, reaches the client from the VIP and quotes VIP:80.
	for _, fam := range []struct{ vip, client string }{{vip4, client4}, {vip6, client6}} {
		t.Run("ICMP "+fam.vip, func(t *testing.T) {
			var addrs []string
			for _, r := range reals {
				addrs = append(addrs, r.v4, r.v6)
			}
			natICMP(t, client, realNS, addrs, fam.vip, fam.client)
		})
	}
}

// natOutPackets reads each service's outgoing packets (NAT replies).
func natOutPackets(t *testing.T, sock string) map[string]uint64 {
	t.Helper()
	return outPackets(t, sock, status.Masq)
}

// outPackets reads each service's outgoing packets (the replies a NAT or
// FullNAT director sends back), checking the services forward as method.
func outPackets(t *testing.T, sock string, method status.Method) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, s := range snap.Services {
		if s.Method != method {
			t.Errorf("service %s forwards as %v, want %v", s.VIP, s.Method, method)
		}
		out[s.VIP.String()] = s.Stats.OutPkts
	}
	return out
}

// natICMP opens a connection to vip:80, learns which real server serves
// it, and sends from that server's namespace an ICMP frag-needed (IPv4) or
// packet-too-big (IPv6) to the client quoting the client's packet as the
// real server received it (client:port -> real:8080). The client must get
// it from the VIP, quoting client:port -> VIP:80.
// realAddrs lists each real server's addresses, two per namespace.
func natICMP(t *testing.T, client *netnstest.NS, realNS []*netnstest.NS, realAddrs []string, vip, clientAddr string) {
	v6 := strings.Contains(vip, ":")
	network := "ip4:icmp"
	if v6 {
		network = "ip6:ipv6-icmp"
	}
	var rcv net.PacketConn
	if err := client.Do(func() (err error) { rcv, err = net.ListenPacket(network, ""); return err }); err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()

	var conn net.Conn
	if err := client.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", net.JoinHostPort(vip, "80"), 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cport := uint16(conn.LocalAddr().(*net.TCPAddr).Port)
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: govs\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	server := netip.MustParseAddr(strings.Fields(string(body))[0])
	idx := slices.Index(realAddrs, server.String()) / 2
	if idx < 0 {
		t.Fatalf("served by %s, not a real server", server)
	}

	// The quoted packet: the client's, as the real server got it.
	c := netip.MustParseAddr(clientAddr)
	ports := make([]byte, 8)
	binary.BigEndian.PutUint16(ports[0:], cport)
	binary.BigEndian.PutUint16(ports[2:], 8080)
	var msg []byte
	if !v6 {
		ip := make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 63, syscall.IPPROTO_TCP
		binary.BigEndian.PutUint16(ip[2:], 1500)
		ip[6] = 0x40 // DF
		copy(ip[12:], c.AsSlice())
		copy(ip[16:], server.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], ^onesSum(ip))
		msg = append([]byte{3, 4, 0, 0, 0, 0, 0x05, 0x78}, append(ip, ports...)...) // frag-needed, MTU 1400
		binary.BigEndian.PutUint16(msg[2:], ^onesSum(msg))
	} else {
		ip := make([]byte, 40)
		ip[0], ip[6], ip[7] = 0x60, syscall.IPPROTO_TCP, 63
		binary.BigEndian.PutUint16(ip[4:], 1440)
		copy(ip[8:], c.AsSlice())
		copy(ip[24:], server.AsSlice())
		// Packet too big, MTU 1400; the kernel computes ICMPv6 checksums.
		msg = append([]byte{2, 0, 0, 0, 0, 0, 0x05, 0x78}, append(ip, ports...)...)
	}
	if err := realNS[idx].Do(func() error {
		snd, err := net.ListenPacket(network, "")
		if err != nil {
			return err
		}
		defer snd.Close()
		_, err = snd.WriteTo(msg, &net.IPAddr{IP: c.AsSlice()})
		return err
	}); err != nil {
		t.Fatalf("send ICMP from %s: %v", server, err)
	}

	buf := make([]byte, 1500)
	deadline := time.Now().Add(3 * time.Second)
	for {
		rcv.SetReadDeadline(deadline)
		n, from, err := rcv.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no ICMP error reached the client: %v", err)
		}
		m := buf[:n]
		wantType := byte(3)
		innerAddrs, innerLen := 16, 20 // IPv4: destination at 16, header 20
		if v6 {
			wantType, innerAddrs, innerLen = 2, 24, 40
		}
		if len(m) < 8+innerLen+4 || m[0] != wantType {
			continue // neighbour discovery and the like
		}
		inner := m[8:]
		innerDst, _ := netip.AddrFromSlice(inner[innerAddrs : innerAddrs+len(c.AsSlice())])
		innerPorts := inner[innerLen:]
		src := from.(*net.IPAddr).IP.String()
		if src != vip || innerDst.String() != vip || binary.BigEndian.Uint16(innerPorts[2:]) != 80 || binary.BigEndian.Uint16(innerPorts[0:]) != cport {
			t.Fatalf("client got ICMP from %s quoting a packet to %s:%d from port %d; want from %s quoting %s:80 from port %d",
				src, innerDst, binary.BigEndian.Uint16(innerPorts[2:]), binary.BigEndian.Uint16(innerPorts[0:]), vip, vip, cport)
		}
		if !v6 && onesSum(m) != 0xffff {
			t.Errorf("ICMP checksum wrong after translation")
		}
		return
	}
}

// onesSum is the one's complement sum of b (RFC 1071), not inverted.
func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}
