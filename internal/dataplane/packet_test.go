package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/govs/govs/internal/sched"
)

// drOut is what DR makes of in: the same bytes with the real's MAC as
// destination and the director's as source.
func drOut(in []byte, real int) []byte {
	out := bytes.Clone(in)
	copy(out[0:6], realMAC(real))
	copy(out[6:12], directorMAC)
	return out
}

// icmp4FragNeeded is what a router on the reply path sends to the VIP when
// a real server's reply (VIP:vport -> client:cport) is too big.
func icmp4FragNeeded(t testing.TB, client netip.Addr, cport, vport uint16) []byte {
	inner := serialize(t,
		&layers.IPv4{Version: 4, IHL: 5, TTL: 63, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: vip4.AsSlice(), DstIP: client.AsSlice(), Length: 1500},
	)
	ports := make([]byte, 8)
	binary.BigEndian.PutUint16(ports[0:], vport)
	binary.BigEndian.PutUint16(ports[2:], cport)
	inner = append(inner, ports...)
	return serialize(t,
		&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4,
			SrcIP: net.IP{198, 18, 0, 254}, DstIP: vip4.AsSlice()},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded)},
		gopacket.Payload(inner),
	)
}

func icmp6TooBig(t testing.TB, client netip.Addr, cport, vport uint16) []byte {
	inner := serialize(t, &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: layers.IPProtocolTCP,
		SrcIP: vip6.AsSlice(), DstIP: client.AsSlice(), Length: 1460})
	ports := make([]byte, 8)
	binary.BigEndian.PutUint16(ports[0:], vport)
	binary.BigEndian.PutUint16(ports[2:], cport)
	inner = append(inner, ports...)
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP("2001:db8::fe"), DstIP: vip6.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	mtu := []byte{0, 0, 0x05, 0x00}
	return serialize(t,
		&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeIPv6},
		ip, icmp, gopacket.Payload(append(mtu, inner...)),
	)
}

func TestPacketTable(t *testing.T) {
	one := func(kind sched.Kind, port uint16) State { return state(svc4(kind, port, real4(1, 1))) }
	v6 := state(Service{Addr: vip6, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{real6(1, 1)}})
	syn := frame(t, tcp4(40000, 80))
	arp := serialize(t,
		&layers.Ethernet{SrcMAC: clientMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: clientMAC, SourceProtAddress: client4.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: vip4.AsSlice()})
	ping := serialize(t,
		&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: client4.AsSlice(), DstIP: vip4.AsSlice()},
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0)})
	firstFrag := frame(t, pktSpec{src: client4, dst: vip4, sport: 41000, dport: 80, proto: UDP, ipID: 7777,
		fragFlags: layers.IPv4MoreFragments, payload: bytes.Repeat([]byte{'a'}, 64)})
	laterFrag := serialize(t,
		&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, Id: 7777, FragOffset: 9,
			SrcIP: client4.AsSlice(), DstIP: vip4.AsSlice()},
		gopacket.Payload(bytes.Repeat([]byte{'b'}, 40)))
	otherFrag := bytes.Clone(laterFrag)
	otherFrag[14+4] ^= 0xff // another IP id: no first fragment seen
	binary.BigEndian.PutUint16(otherFrag[14+10:], 0)
	otherFrag = fixIPv4Checksum(otherFrag, 14)
	udpSvc6 := state(Service{Addr: vip6, Port: 53, Protocol: UDP, Scheduler: sched.Maglev, Reals: []Real{real6(1, 1), real6(2, 1), real6(3, 1)}})
	frag6 := func(offset uint16, more bool, id uint32, withUDP bool) []byte {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment, SrcIP: client6.AsSlice(), DstIP: vip6.AsSlice()}
		fh := &layers.IPv6Fragment{NextHeader: layers.IPProtocolUDP, FragmentOffset: offset, MoreFragments: more, Identification: id}
		ls := []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeIPv6}, ip, fh}
		if withUDP {
			udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
			_ = udp.SetNetworkLayerForChecksum(ip)
			ls = append(ls, udp)
		}
		return serialize(t, append(ls, gopacket.Payload(bytes.Repeat([]byte{'f'}, 48)))...)
	}
	udpSvc := state(Service{Addr: vip4, Port: 80, Protocol: UDP, Scheduler: sched.SourceHash, Reals: []Real{real4(1, 1)}})

	tests := []struct {
		name    string
		state   State
		before  [][]byte // frames run first (establishing flows)
		in      []byte
		wantAct uint32
		wantOut []byte // nil: unchanged when PASS/DROP
	}{
		{name: "DR rewrites only MACs", state: one(sched.Maglev, 80), in: syn, wantAct: xdpTX, wantOut: drOut(syn, 1)},
		{name: "egress is the ingress interface: XDP_TX", state: func() State {
			r := real4(1, 1)
			r.Ifindex = 1 // a test run's ingress device is the namespace's lo
			s := state(svc4(sched.Maglev, 80, r))
			s.InterfaceMACs[1] = directorMAC
			return s
		}(), in: syn, wantAct: xdpTX, wantOut: drOut(syn, 1)},
		{name: "rr service", state: one(sched.RoundRobin, 80), in: syn, wantAct: xdpTX, wantOut: drOut(syn, 1)},
		{name: "wlc service", state: one(sched.WeightedLeastConnection, 80), in: syn, wantAct: xdpTX, wantOut: drOut(syn, 1)},
		{name: "other port passes", state: one(sched.Maglev, 443), in: syn, wantAct: xdpPass},
		{name: "any-port service", state: one(sched.Maglev, 0), in: syn, wantAct: xdpTX, wantOut: drOut(syn, 1)},
		{name: "other VIP passes", state: state(Service{Addr: netip.MustParseAddr("198.18.0.101"), Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{real4(1, 1)}}), in: syn, wantAct: xdpPass},
		{name: "UDP to TCP service passes", state: one(sched.Maglev, 80), in: frame(t, pktSpec{src: client4, dst: vip4, sport: 5000, dport: 80, proto: UDP}), wantAct: xdpPass},
		{name: "UDP service", state: udpSvc, in: frame(t, pktSpec{src: client4, dst: vip4, sport: 5000, dport: 80, proto: UDP}), wantAct: xdpTX,
			wantOut: drOut(frame(t, pktSpec{src: client4, dst: vip4, sport: 5000, dport: 80, proto: UDP}), 1)},
		{name: "ARP passes", state: one(sched.Maglev, 80), in: arp, wantAct: xdpPass},
		{name: "ping to VIP passes", state: one(sched.Maglev, 80), in: ping, wantAct: xdpPass},
		{name: "VLAN tag kept", state: one(sched.Maglev, 80), in: frame(t, pktSpec{src: client4, dst: vip4, sport: 1, dport: 80, syn: true, vlan: 42}), wantAct: xdpTX,
			wantOut: drOut(frame(t, pktSpec{src: client4, dst: vip4, sport: 1, dport: 80, syn: true, vlan: 42}), 1)},
		{name: "IPv6 DR", state: v6, in: frame(t, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, syn: true}), wantAct: xdpTX,
			wantOut: drOut(frame(t, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, syn: true}), 1)},
		{name: "IPv6 other port passes", state: v6, in: frame(t, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 81, syn: true}), wantAct: xdpPass},
		{name: "no real with weight: drop", state: state(svc4(sched.Maglev, 80, real4(1, 0), real4(2, 0))), in: syn, wantAct: xdpDrop},
		{name: "no real at all: drop", state: state(svc4(sched.WeightedRoundRobin, 80)), in: syn, wantAct: xdpDrop},
		{name: "lc without weight: drop", state: state(svc4(sched.LeastConnection, 80, real4(1, 0))), in: syn, wantAct: xdpDrop},
		{name: "ICMP frag-needed follows its flow", state: state(svc4(sched.Maglev, 80, reals4(1, 1, 1, 1)...)),
			before: [][]byte{frame(t, tcp4(40000, 80))}, in: icmp4FragNeeded(t, client4, 40000, 80), wantAct: xdpTX},
		{name: "ICMP frag-needed of unknown flow passes", state: one(sched.Maglev, 80), in: icmp4FragNeeded(t, client4, 40001, 80), wantAct: xdpPass},
		{name: "ICMPv6 packet-too-big follows its flow", state: v6,
			before: [][]byte{frame(t, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, syn: true})},
			in:     icmp6TooBig(t, client6, 1234, 80), wantAct: xdpTX, wantOut: drOut(icmp6TooBig(t, client6, 1234, 80), 1)},
		{name: "ICMPv6 packet-too-big of unknown flow passes", state: v6, in: icmp6TooBig(t, client6, 999, 80), wantAct: xdpPass},
		{name: "first fragment forwarded", state: udpSvc, in: firstFrag, wantAct: xdpTX, wantOut: drOut(firstFrag, 1)},
		{name: "later fragment follows the first", state: udpSvc, before: [][]byte{firstFrag}, in: laterFrag, wantAct: xdpTX, wantOut: drOut(laterFrag, 1)},
		{name: "IPv6 first fragment forwarded", state: udpSvc6, in: frag6(0, true, 77, true), wantAct: xdpTX},
		{name: "IPv6 later fragment without first passes", state: udpSvc6, in: frag6(7, false, 77, false), wantAct: xdpPass},
		{name: "later fragment without first passes", state: udpSvc, before: [][]byte{firstFrag}, in: otherFrag, wantAct: xdpPass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := openDP(t, tc.state)
			for _, b := range tc.before {
				if act, _ := runOut(t, d.program(), b); act != xdpTX {
					t.Fatalf("setup frame: action %s, want TX", actionNames[act])
				}
			}
			act, out := runOut(t, d.program(), tc.in)
			want := tc.wantOut
			if want == nil && tc.wantAct != xdpTX {
				want = tc.in
			}
			if act != tc.wantAct || (want != nil && !bytes.Equal(out, want)) {
				writePcap(t, "packet", tc.in, out)
				t.Fatalf("action %s, want %s\n got % x\nwant % x", actionNames[act], actionNames[tc.wantAct], out, want)
			}
		})
	}
}

// fixIPv4Checksum recomputes the header checksum of the IPv4 header at off.
func fixIPv4Checksum(b []byte, off int) []byte {
	h := b[off : off+20]
	h[10], h[11] = 0, 0
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return b
}
