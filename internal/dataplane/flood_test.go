package dataplane

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

// synFrame is an Ethernet/IPv4/TCP SYN to dst:80 with valid checksums,
// from a source the caller patches with patchSource.
func synFrame(dstMAC, srcMAC net.HardwareAddr, dst netip.Addr) []byte {
	f := make([]byte, 14+20+20)
	copy(f[0:], dstMAC)
	copy(f[6:], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	copy(ip[16:], dst.AsSlice())
	tcp := f[34:]
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12], tcp[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	return f
}

// checksum is the Internet checksum of b with an initial sum.
func checksum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// patchSource sets the SYN's source address and port and its checksums.
func patchSource(f []byte, src [4]byte, sport uint16) {
	ip, tcp := f[14:34], f[34:]
	copy(ip[12:], src[:])
	binary.BigEndian.PutUint16(tcp[0:], sport)
	ip[10], ip[11], tcp[16], tcp[17] = 0, 0, 0, 0
	binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))
	pseudo := uint32(binary.BigEndian.Uint16(ip[12:])) + uint32(binary.BigEndian.Uint16(ip[14:])) +
		uint32(binary.BigEndian.Uint16(ip[16:])) + uint32(binary.BigEndian.Uint16(ip[18:])) + 6 + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], checksum(pseudo, tcp))
}

// TestPrivilegedSYNFloodSparesEstablished: 50 idle keep-alive connections
// through the XDP director (rr over two real servers, so a connection whose
// entry is lost is sent to the other server and reset) survive a SYN flood
// from an attacker namespace: more distinct spoofed sources than the
// connection and embryonic-flow tables hold together, each SYN sent twice.
// Every connection still answers afterwards and is still in the table.
func TestPrivilegedSYNFloodSparesEstablished(t *testing.T) {
	netnstest.RequireRoot(t)
	const vip = "198.18.0.100"
	lan := netnstest.NewNS(t, "lan")
	lan.Bridge("br0")
	client, attacker, director := netnstest.NewNS(t, "cl"), netnstest.NewNS(t, "atk"), netnstest.NewNS(t, "dir")
	reals := []*netnstest.NS{netnstest.NewNS(t, "r1"), netnstest.NewNS(t, "r2")}
	lan.Join(client, "pc", "198.18.0.50/24")
	lan.Join(attacker, "pa", "198.18.0.66/24")
	lan.Join(director, "pd", "198.18.0.2/24")
	director.Addr("eth0", vip+"/32")
	netnstest.AttachXDPPass(t, lan, "pd")
	client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	var rs []Real
	for i, ns := range reals {
		lan.Join(ns, fmt.Sprintf("pr%d", i+1), fmt.Sprintf("198.18.0.%d/24", 11+i))
		ns.HoldVIP(vip)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }),
			ReadHeaderTimeout: 5 * time.Second}
		t.Cleanup(func() { srv.Close() })
		var ln net.Listener
		if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", vip+":80"); return err }); err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		mac, err := net.ParseMAC(strings.TrimSpace(ns.MustRun("cat", "/sys/class/net/eth0/address")))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, Real{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), Weight: 1, MAC: mac})
	}
	d, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var dirMAC net.HardwareAddr
	if err := director.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		dirMAC = ifi.HardwareAddr
		for i := range rs {
			rs[i].Ifindex = ifi.Index
		}
		if err := d.Attach(ifi.Index, Native); err != nil {
			return err
		}
		return d.Apply(State{Services: []Service{{Addr: netip.MustParseAddr(vip), Port: 80, Protocol: TCP, Scheduler: sched.RoundRobin, Reals: rs}}})
	}); err != nil {
		t.Fatal(err)
	}

	// 50 keep-alive connections, one request each, then idle.
	const established = 50
	type kaConn struct {
		c  net.Conn
		br *bufio.Reader
	}
	ask := func(k kaConn) error {
		k.c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(k.br, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	var conns []kaConn
	for range established {
		var c net.Conn
		if err := client.Do(func() (err error) { c, err = net.DialTimeout("tcp", vip+":80", 2*time.Second); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		k := kaConn{c, bufio.NewReader(c)}
		if err := ask(k); err != nil {
			t.Fatalf("before the flood: %v", err)
		}
		conns = append(conns, k)
	}

	// The flood, from spoofed sources in 198.18.0.0/15 outside the LAN's
	// /24 (the real servers' SYN-ACKs to them have no route and are
	// dropped there), bounded by count.
	flood := int(d.objs.Conns.MaxEntries()) + int(d.objs.Embryos.MaxEntries()) + 10000
	start := time.Now()
	if err := attacker.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(sa.Addr[:], dirMAC)
		f := synFrame(dirMAC, ifi.HardwareAddr, netip.MustParseAddr(vip))
		for i := range flood {
			n := uint32(1<<8 + i%(1<<17-1<<8)) // skip 198.18.0.0/24
			patchSource(f, [4]byte{198, 18 + byte(n>>16), byte(n >> 8), byte(n)}, uint16(1024+i/(1<<17)))
			for range 2 {
				if err := unix.Sendto(fd, f, 0, sa); err != nil && err != unix.ENOBUFS {
					return fmt.Errorf("send: %w", err)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("flood: %d spoofed sources, 2 SYNs each, in %v", flood, time.Since(start).Round(time.Millisecond))

	st, err := d.Connections()
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[uint16]bool{}
	embryos := 0
	for _, c := range st {
		if c.Embryonic {
			embryos++
		} else if c.Client.Addr() == netip.MustParseAddr("198.18.0.50") {
			inTable[c.Client.Port()] = true
		}
	}
	failed, missing := 0, 0
	for _, k := range conns {
		if !inTable[uint16(k.c.LocalAddr().(*net.TCPAddr).Port)] {
			missing++
		}
		if err := ask(k); err != nil {
			failed++
		}
	}
	t.Logf("after the flood: %d embryonic entries; %d of %d established connections missing from the table, %d failed",
		embryos, missing, established, failed)
	if embryos < int(d.objs.Embryos.MaxEntries())/2 {
		t.Errorf("only %d embryonic entries: the flood did not reach the director", embryos)
	}
	if missing != 0 || failed != 0 {
		t.Errorf("%d of %d established connections evicted by the flood, %d failed", missing, established, failed)
	}
}
