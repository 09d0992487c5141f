package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

func TestTunnelEncapsulation(t *testing.T) {
	tun := func(r Real) Real { r.Method = TUN; return r }
	gue := func(r Real) Real { r.Method, r.GUEPort = TUN, 6080; return r }
	tests := []struct {
		name      string
		vip       netip.Addr
		real      Real
		in        pktSpec
		outer     gopacket.LayerType
		innerType layers.IPProtocol
	}{
		{"IPIP", vip4, tun(real4(1, 1)), tcp4(40000, 80), layers.LayerTypeIPv4, layers.IPProtocolIPv4},
		{"IPv6 in IPv6", vip6, tun(real6(1, 1)), pktSpec{src: client6, dst: vip6, sport: 1, dport: 80, syn: true}, layers.LayerTypeIPv6, layers.IPProtocolIPv6},
		{"IPv4 in IPv6", vip4, tun(real6(1, 1)), tcp4(40000, 80), layers.LayerTypeIPv6, layers.IPProtocolIPv4},
		{"IPIP copies DF", vip4, tun(real4(1, 1)), pktSpec{src: client4, dst: vip4, sport: 6, dport: 80, syn: true, fragFlags: layers.IPv4DontFragment}, layers.LayerTypeIPv4, layers.IPProtocolIPv4},
		{"IPIP with VLAN", vip4, tun(real4(1, 1)), pktSpec{src: client4, dst: vip4, sport: 5, dport: 80, syn: true, vlan: 7}, layers.LayerTypeIPv4, layers.IPProtocolIPv4},
		{"GUE, IPv4 in IPv4", vip4, gue(real4(1, 1)), tcp4(40000, 80), layers.LayerTypeIPv4, layers.IPProtocolIPv4},
		{"GUE, IPv6 in IPv6", vip6, gue(real6(1, 1)), pktSpec{src: client6, dst: vip6, sport: 1, dport: 80, syn: true}, layers.LayerTypeIPv6, layers.IPProtocolIPv6},
		{"GUE, IPv4 in IPv6 with VLAN", vip4, gue(real6(1, 1)), pktSpec{src: client4, dst: vip4, sport: 5, dport: 80, syn: true, vlan: 7}, layers.LayerTypeIPv6, layers.IPProtocolIPv4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := openDP(t, state(Service{Addr: tc.vip, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{tc.real}}))
			in := frame(t, tc.in)
			act, out := runOut(t, d.program(), in)
			if act != xdpTX {
				t.Fatalf("action %s, want TX", actionNames[act])
			}
			l2len := 14
			if tc.in.vlan != 0 {
				l2len = 18
			}
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				writePcap(t, "tun", in, out)
				t.Fatalf("decode output: %v", el.Error())
			}
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(eth.DstMAC, realMAC(1)) || !bytes.Equal(eth.SrcMAC, directorMAC) {
				t.Errorf("MACs %s -> %s", eth.SrcMAC, eth.DstMAC)
			}
			if tc.in.vlan != 0 {
				q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
				if !ok || q.VLANIdentifier != tc.in.vlan {
					t.Errorf("VLAN tag lost: %v", pkt)
				}
			}
			innerIP := in[l2len:]
			var payload []byte
			// GUE: the outer header carries UDP to the real server's port,
			// then a GUE header (version 0, no options) naming the inner
			// protocol; IP-in-IP carries the inner packet at once.
			next, extra := tc.innerType, 0
			if tc.real.GUEPort != 0 {
				next, extra = layers.IPProtocolUDP, 8+4
			}
			switch tc.outer {
			case layers.LayerTypeIPv4:
				ip, ok := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if !ok {
					t.Fatalf("no outer IPv4: %v", pkt)
				}
				if ip.Protocol != next || ip.SrcIP.String() != tunSrc4.String() || ip.DstIP.String() != tc.real.Addr.String() {
					t.Errorf("outer header %v", ip)
				}
				if innerDF := tc.in.src.Is6() || tc.in.fragFlags&layers.IPv4DontFragment != 0; (ip.Flags&layers.IPv4DontFragment != 0) != innerDF {
					t.Errorf("outer DF %v, inner DF %v", ip.Flags, innerDF)
				}
				if int(ip.Length) != 20+extra+len(innerIP) || ip.TTL == 0 {
					t.Errorf("outer length %d, want %d (TTL %d)", ip.Length, 20+extra+len(innerIP), ip.TTL)
				}
				if sum := ipv4HeaderSum(out[l2len : l2len+20]); sum != 0xffff {
					t.Errorf("outer IPv4 checksum wrong (sum %#x)", sum)
				}
				payload = out[l2len+20:]
			case layers.LayerTypeIPv6:
				ip, ok := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if !ok {
					t.Fatalf("no outer IPv6: %v", pkt)
				}
				if ip.NextHeader != next || ip.SrcIP.String() != tunSrc6.String() || ip.DstIP.String() != tc.real.Addr.String() {
					t.Errorf("outer header %v", ip)
				}
				if int(ip.Length) != extra+len(innerIP) || ip.HopLimit == 0 {
					t.Errorf("outer payload length %d, want %d", ip.Length, extra+len(innerIP))
				}
				payload = out[l2len+40:]
			}
			if extra != 0 {
				udp := payload[:8]
				if port := binary.BigEndian.Uint16(udp[2:]); port != tc.real.GUEPort {
					t.Errorf("UDP to port %d, want %d", port, tc.real.GUEPort)
				}
				if sport := binary.BigEndian.Uint16(udp[0:]); sport < 0xc000 {
					t.Errorf("UDP source port %d outside the ephemeral range", sport)
				}
				if l := binary.BigEndian.Uint16(udp[4:]); int(l) != extra+len(innerIP) || binary.BigEndian.Uint16(udp[6:]) != 0 {
					t.Errorf("UDP length %d (want %d), checksum %#x (want 0: nocsum)", l, extra+len(innerIP), binary.BigEndian.Uint16(udp[6:]))
				}
				if g := payload[8:12]; g[0] != 0 || g[1] != byte(tc.innerType) || g[2] != 0 || g[3] != 0 {
					t.Errorf("GUE header % x, want version 0, no options, protocol %d", g, tc.innerType)
				}
				payload = payload[extra:]
			}
			if !bytes.Equal(payload, innerIP) {
				writePcap(t, "tun", in, out)
				t.Errorf("inner packet changed:\n got % x\nwant % x", payload, innerIP)
			}
		})
	}
}

func ipv4HeaderSum(h []byte) uint32 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// TestTunnelTooBig: a TUN packet that encapsulation would make bigger than
// the egress MTU (1400 here) is answered as a router answers: ICMP
// frag-needed (IPv4 with DF) or packet-too-big (IPv6) back to the client,
// from the VIP, with the MTU less the tunnel's overhead (IP-in-IP 20, GUE
// in IPv6 52), quoting the packet; one that fits is encapsulated; IPv4
// without DF, which only fragmenting could carry, is dropped.
func TestTunnelTooBig(t *testing.T) {
	netnstest.RequireRoot(t)
	a, b := netnstest.NewNS(t, "mtu-a"), netnstest.NewNS(t, "mtu-b")
	netnstest.Veth(t, a, "eth0", b, "eth0")
	a.MustRun("ip", "link", "set", "eth0", "mtu", "1400")
	var ifindex int
	if err := a.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			ifindex = ifi.Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r4, r6 := real4(1, 1), real6(1, 1)
	r4.Method, r4.Ifindex = TUN, ifindex
	r6.Method, r6.GUEPort, r6.Ifindex = TUN, 6080, ifindex
	// The egress interface is looked up where it is.
	var d *Dataplane
	if err := a.Do(func() error {
		d = openDP(t, state(
			Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{r4}},
			Service{Addr: vip6, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{r6}},
		))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	run := func(in []byte) (uint32, []byte) {
		t.Helper()
		var ret uint32
		out := make([]byte, len(in)+256)
		opts := &ebpf.RunOptions{Data: in, DataOut: out, Context: xdpMD{DataEnd: uint32(len(in)), IngressIfindex: uint32(ifindex)}}
		err := a.Do(func() (err error) { ret, err = d.program().Run(opts); return err })
		if err != nil {
			t.Fatal(err)
		}
		return ret, opts.DataOut
	}
	body := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	for _, tc := range []struct {
		name     string
		in       pktSpec
		act      uint32
		icmpMTU  uint32 // 0: not answered
		icmpType gopacket.LayerType
	}{
		{"IPv4 with DF, fits (1380 + 20)", pktSpec{src: client4, dst: vip4, sport: 1, dport: 80, fragFlags: layers.IPv4DontFragment, payload: body(1380 - 40)}, xdpTX, 0, 0},
		{"IPv4 with DF, too big", pktSpec{src: client4, dst: vip4, sport: 2, dport: 80, fragFlags: layers.IPv4DontFragment, payload: body(1381 - 40)}, xdpTX, 1380, layers.LayerTypeICMPv4},
		{"IPv4 with DF and VLAN, too big", pktSpec{src: client4, dst: vip4, sport: 3, dport: 80, vlan: 7, fragFlags: layers.IPv4DontFragment, payload: body(1381 - 40)}, xdpTX, 1380, layers.LayerTypeICMPv4},
		{"IPv4 without DF, too big", pktSpec{src: client4, dst: vip4, sport: 4, dport: 80, payload: body(1381 - 40)}, xdpDrop, 0, 0},
		{"IPv6 in GUE, fits (1348 + 52)", pktSpec{src: client6, dst: vip6, sport: 5, dport: 80, payload: body(1348 - 60)}, xdpTX, 0, 0},
		{"IPv6 in GUE, too big", pktSpec{src: client6, dst: vip6, sport: 6, dport: 80, payload: body(1349 - 60)}, xdpTX, 1348, layers.LayerTypeICMPv6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := frame(t, tc.in)
			act, out := run(in)
			if act != tc.act {
				t.Fatalf("action %s, want %s", actionNames[act], actionNames[tc.act])
			}
			if tc.icmpMTU == 0 {
				return
			}
			pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(eth.DstMAC, in[6:12]) || !bytes.Equal(eth.SrcMAC, in[0:6]) {
				t.Errorf("MACs %s -> %s: not back to the sender", eth.SrcMAC, eth.DstMAC)
			}
			l2 := 14
			if tc.in.vlan != 0 {
				l2 = 18
			}
			var quoted []byte
			switch tc.icmpType {
			case layers.LayerTypeICMPv4:
				ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				icmp, _ := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if ip == nil || icmp == nil || ip.SrcIP.String() != vip4.String() || ip.DstIP.String() != client4.String() || ip.Length != 56 {
					t.Fatalf("answer %v", pkt)
				}
				if icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || uint32(binary.BigEndian.Uint16(out[l2+26:])) != tc.icmpMTU {
					t.Errorf("ICMP %v, next-hop MTU %d, want frag-needed with %d", icmp.TypeCode, binary.BigEndian.Uint16(out[l2+26:]), tc.icmpMTU)
				}
				if onesComplement(out[l2:l2+20]) != 0xffff || onesComplement(out[l2+20:l2+56]) != 0xffff {
					t.Errorf("checksums wrong")
				}
				quoted = out[l2+28 : l2+56]
			case layers.LayerTypeICMPv6:
				ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if ip == nil || ip.SrcIP.String() != vip6.String() || ip.DstIP.String() != client6.String() || ip.Length != 56 || ip.NextHeader != layers.IPProtocolICMPv6 {
					t.Fatalf("answer %v", pkt)
				}
				m := out[l2+40 : l2+96]
				if m[0] != 2 || m[1] != 0 || binary.BigEndian.Uint32(m[4:]) != tc.icmpMTU {
					t.Errorf("ICMPv6 type %d code %d MTU %d, want packet-too-big with %d", m[0], m[1], binary.BigEndian.Uint32(m[4:]), tc.icmpMTU)
				}
				pseudo := append(append(append([]byte{}, out[l2+8:l2+40]...), 0, 0, 0, 56, 0, 0, 0, 58), m...)
				if onesComplement(pseudo) != 0xffff {
					t.Errorf("ICMPv6 checksum wrong")
				}
				quoted = m[8:]
			}
			if want := in[l2 : l2+len(quoted)]; !bytes.Equal(quoted, want) {
				t.Errorf("quoted % x, want % x", quoted, want)
			}
			if len(bytes.TrimRight(out, "\x00")) > l2+28+len(quoted) && tc.icmpType == layers.LayerTypeICMPv4 {
				t.Errorf("answer longer than the ICMP message")
			}
		})
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Global.TunTooBig != 3 {
		t.Errorf("%d answered too big, want 3", st.Global.TunTooBig)
	}
}
