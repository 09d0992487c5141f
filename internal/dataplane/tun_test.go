package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

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
