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

// natReal is real server i as a NAT destination listening on port.
func natReal(r Real, port uint16) Real {
	r.Method = NAT
	r.Port = port
	return r
}

// withMACs sets a frame's Ethernet addresses.
func withMACs(b []byte, dst, src net.HardwareAddr) []byte {
	out := bytes.Clone(b)
	copy(out[0:6], dst)
	copy(out[6:12], src)
	return out
}

// icmpError builds an ICMP frag-needed (IPv4) or packet-too-big (IPv6)
// from outer src to outer dst quoting the packet qsrc:qsport -> qdst:qdport.
func icmpError(t testing.TB, src, dst, qsrc, qdst netip.Addr, qsport, qdport uint16, proto layers.IPProtocol) []byte {
	t.Helper()
	ports := make([]byte, 8)
	binary.BigEndian.PutUint16(ports[0:], qsport)
	binary.BigEndian.PutUint16(ports[2:], qdport)
	binary.BigEndian.PutUint16(ports[6:], 0x1234) // the quoted UDP checksum, or TCP's sequence number
	eth := &layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC}
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		inner := serialize(t, &layers.IPv4{Version: 4, IHL: 5, TTL: 63, Protocol: proto, Flags: layers.IPv4DontFragment,
			SrcIP: qsrc.AsSlice(), DstIP: qdst.AsSlice()})
		binary.BigEndian.PutUint16(inner[2:], 1500) // the quoted packet's length, as sent
		inner = fixIPv4Checksum(inner, 0)
		return serialize(t, eth,
			&layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded), Seq: 1400},
			gopacket.Payload(append(inner, ports...)))
	}
	eth.EthernetType = layers.EthernetTypeIPv6
	inner := serialize(t, &layers.IPv6{Version: 6, HopLimit: 63, NextHeader: proto, SrcIP: qsrc.AsSlice(), DstIP: qdst.AsSlice()})
	binary.BigEndian.PutUint16(inner[4:], 1460)
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypePacketTooBig, 0)}
	_ = icmp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, icmp, gopacket.Payload(append([]byte{0, 0, 0x05, 0x00}, append(inner, ports...)...)))
}

// TestNATRewrites checks every NAT rewrite byte for byte against packets
// built from scratch (so with freshly computed checksums): towards the real
// server (address and port), the reply back (source VIP and service port,
// to the MAC the client's packet came from), and ICMP errors both ways.
func TestNATRewrites(t *testing.T) {
	router4, router6 := netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("2001:db8::fe")
	tests := []struct {
		name     string
		vip      netip.Addr
		client   netip.Addr
		router   netip.Addr
		real     Real
		proto    Protocol
		vlan     uint16
		realPort uint16 // the port the real server listens on
	}{
		{name: "IPv4 TCP, port translated", vip: vip4, client: client4, router: router4, real: real4(1, 1), proto: TCP, realPort: 8080},
		{name: "IPv4 TCP, same port", vip: vip4, client: client4, router: router4, real: real4(1, 1), proto: TCP, realPort: 80},
		{name: "IPv4 UDP, port translated", vip: vip4, client: client4, router: router4, real: real4(2, 1), proto: UDP, realPort: 5353},
		{name: "IPv4 with VLAN", vip: vip4, client: client4, router: router4, real: real4(1, 1), proto: TCP, vlan: 7, realPort: 8080},
		{name: "IPv6 TCP, port translated", vip: vip6, client: client6, router: router6, real: real6(1, 1), proto: TCP, realPort: 8080},
		{name: "IPv6 UDP", vip: vip6, client: client6, router: router6, real: real6(3, 1), proto: UDP, realPort: 5300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const vport, cport = 80, 40001
			s := state(Service{Addr: tc.vip, Port: vport, Protocol: tc.proto, Scheduler: sched.Maglev, Reals: []Real{natReal(tc.real, tc.realPort)}})
			d := openDP(t, s)
			// A test run's ingress device is the namespace's lo (ifindex
			// 1): the reply leaves through it, with the director's MAC.
			if err := d.setMACSlot(1, directorMAC, 0); err != nil {
				t.Fatal(err)
			}
			pkt := func(src, dst netip.Addr, sport, dport uint16) pktSpec {
				return pktSpec{src: src, dst: dst, sport: sport, dport: dport, proto: tc.proto, syn: tc.proto == TCP, vlan: tc.vlan}
			}
			expect := func(name string, in []byte, wantAct uint32, want []byte) {
				t.Helper()
				act, out := runOut(t, d.program(), in)
				out = out[:len(in)]
				if act != wantAct || !bytes.Equal(out, want) {
					writePcap(t, "nat-"+name, in, out, want)
					t.Fatalf("%s: action %s (want %s)\n got % x\nwant % x", name, actionNames[act], actionNames[wantAct], out, want)
				}
			}

			// Client -> VIP:80 becomes client -> real:realPort.
			in := frame(t, pkt(tc.client, tc.vip, cport, vport))
			want := withMACs(frame(t, pkt(tc.client, tc.real.Addr, cport, tc.realPort)), tc.real.MAC, directorMAC)
			expect("to real", in, xdpTX, want)

			// The real server's reply real:realPort -> client becomes
			// VIP:80 -> client, sent to the MAC the client's frame came from.
			reply := frame(t, pkt(tc.real.Addr, tc.client, tc.realPort, cport))
			reply = withMACs(reply, directorMAC, tc.real.MAC)
			want = withMACs(frame(t, pkt(tc.vip, tc.client, vport, cport)), clientMAC, directorMAC)
			expect("reply", reply, xdpTX, want)

			// A reply of a flow never seen goes to the kernel untouched.
			stray := withMACs(frame(t, pkt(tc.real.Addr, tc.client, tc.realPort, cport+1)), directorMAC, tc.real.MAC)
			expect("stray reply", stray, xdpPass, stray)

			ipProto := layers.IPProtocol(tc.proto)
			if tc.vlan != 0 {
				return // the ICMP builders write untagged frames
			}
			// A router on the client's path reports a reply too big:
			// router -> VIP quoting VIP:80 -> client becomes router ->
			// real quoting real:realPort -> client.
			icmpIn := icmpError(t, tc.router, tc.vip, tc.vip, tc.client, vport, cport, ipProto)
			want = withMACs(icmpError(t, tc.router, tc.real.Addr, tc.real.Addr, tc.client, tc.realPort, cport, ipProto), tc.real.MAC, directorMAC)
			expect("ICMP towards the real", icmpIn, xdpTX, want)

			// A router between director and real server reports a
			// client packet too big: router -> client quoting client ->
			// real:realPort becomes VIP -> client quoting client ->
			// VIP:80, as IPVS translates it.
			icmpOut := withMACs(icmpError(t, tc.router, tc.client, tc.client, tc.real.Addr, cport, tc.realPort, ipProto), directorMAC, tc.real.MAC)
			want = withMACs(icmpError(t, tc.vip, tc.client, tc.client, tc.vip, cport, vport, ipProto), clientMAC, directorMAC)
			expect("ICMP towards the client", icmpOut, xdpTX, want)

			st, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Global.NATReplies != 1 || st.Global.NATICMP != 1 {
				t.Errorf("NAT replies %d, NAT ICMP %d; want 1 and 1", st.Global.NATReplies, st.Global.NATICMP)
			}
			if svc := st.Services[0]; svc.OutPackets != 2 || svc.Reals[0].OutPackets != 2 || svc.OutBytes != uint64(len(reply)+len(icmpOut)) {
				t.Errorf("outgoing counters: service %d packets %d bytes, real %d packets; want 2, %d, 2",
					svc.OutPackets, svc.OutBytes, svc.Reals[0].OutPackets, len(reply)+len(icmpOut))
			}
		})
	}
}

// TestNATSyncedFlowLearnsItsClient plays a failover of a NAT flow: the
// backup gets the connection by sync, so it has the reply entry but does
// not know where the client is. A reply before the client's next packet is
// dropped and counted (not passed to the kernel, which would send it on
// with the real server's address); the client's next packet teaches the
// backup, and the next reply goes to the client's router from the VIP.
func TestNATSyncedFlowLearnsItsClient(t *testing.T) {
	s := state(Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{natReal(real4(1, 1), 8080)}})
	master, backup := openDP(t, s), openDP(t, s)
	for _, d := range []*Dataplane{master, backup} {
		if err := d.setMACSlot(1, directorMAC, 0); err != nil {
			t.Fatal(err)
		}
	}
	const cport = 40100
	syn := frame(t, tcp4(cport, 80))
	if act, _ := runOut(t, master.program(), syn); act != xdpTX {
		t.Fatalf("master: SYN action %s", actionNames[act])
	}
	ack := frame(t, pktSpec{src: client4, dst: vip4, sport: cport, dport: 80})
	if act, _ := runOut(t, master.program(), ack); act != xdpTX {
		t.Fatalf("master: ACK action %s", actionNames[act])
	}
	conns, err := master.Connections()
	if err != nil || len(conns) != 1 {
		t.Fatalf("master connections %v, %v", conns, err)
	}
	if n, err := backup.InsertConnections(conns); err != nil || n != 1 {
		t.Fatalf("backup: inserted %d, %v", n, err)
	}

	reply := withMACs(frame(t, pktSpec{src: real4(1, 1).Addr, dst: client4, sport: 8080, dport: cport}), directorMAC, realMAC(1))
	if act, _ := runOut(t, backup.program(), reply); act != xdpDrop {
		t.Fatalf("reply before the client's next packet: action %s, want DROP", actionNames[act])
	}
	act, out := runOut(t, backup.program(), ack)
	want := withMACs(frame(t, pktSpec{src: client4, dst: real4(1, 1).Addr, sport: cport, dport: 8080}), realMAC(1), directorMAC)
	if act != xdpTX || !bytes.Equal(out[:len(want)], want) {
		t.Fatalf("backup: client packet action %s\n got % x\nwant % x", actionNames[act], out[:len(want)], want)
	}
	act, out = runOut(t, backup.program(), reply)
	want = withMACs(frame(t, pktSpec{src: vip4, dst: client4, sport: 80, dport: cport}), clientMAC, directorMAC)
	if act != xdpTX || !bytes.Equal(out[:len(want)], want) {
		t.Fatalf("backup: reply after learning: action %s\n got % x\nwant % x", actionNames[act], out[:len(want)], want)
	}
	st, err := backup.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Global.NATUnlearnt != 1 || st.Global.NATReplies != 1 {
		t.Errorf("backup: NAT unlearnt %d, replies %d; want 1 and 1", st.Global.NATUnlearnt, st.Global.NATReplies)
	}
}
