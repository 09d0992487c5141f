package decap

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/govs/govs/internal/netnstest"
)

var (
	vip4, vip6       = netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:db8::100")
	client4, client6 = netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8:1::7")
	dir4, dir6       = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::2")
	real4, real6     = netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("2001:db8::11")
	macDir           = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	macReal          = net.HardwareAddr{2, 0, 0, 0, 0, 11}
)

// ipLayer is an IP header from src to dst carrying next.
func ipLayer(src, dst netip.Addr, next layers.IPProtocol) (gopacket.SerializableLayer, layers.EthernetType) {
	if src.Is4() {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: next, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}, layers.EthernetTypeIPv4
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}, layers.EthernetTypeIPv6
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// packet is an Ethernet frame of a TCP segment client -> vip, inside an
// outer header outerSrc -> outerDst when outerSrc is valid.
func packet(t testing.TB, client, vip, outerSrc, outerDst netip.Addr) []byte {
	t.Helper()
	inner, innerType := ipLayer(client, vip, layers.IPProtocolTCP)
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Window: 64240}
	_ = tcp.SetNetworkLayerForChecksum(inner.(gopacket.NetworkLayer))
	payload := gopacket.Payload("GET / HTTP/1.1\r\n\r\n")
	if !outerSrc.IsValid() {
		return serialize(t, &layers.Ethernet{SrcMAC: macDir, DstMAC: macReal, EthernetType: innerType}, inner, tcp, payload)
	}
	next := layers.IPProtocolIPv4
	if vip.Is6() {
		next = layers.IPProtocolIPv6
	}
	outer, outerType := ipLayer(outerSrc, outerDst, next)
	return serialize(t, &layers.Ethernet{SrcMAC: macDir, DstMAC: macReal, EthernetType: outerType}, outer, inner, tcp, payload)
}

// guePacket is packet's inner frame in outer IP, UDP to port and a GUE
// header whose first byte is flags (0: version 0, data, no options).
func guePacket(t testing.TB, client, vip, outerSrc, outerDst netip.Addr, port uint16, flags byte) []byte {
	t.Helper()
	plain := packet(t, client, vip, netip.Addr{}, netip.Addr{})
	proto := byte(4)
	if vip.Is6() {
		proto = 41
	}
	gue := append([]byte{flags, proto, 0, 0}, plain[14:]...)
	outer, outerType := ipLayer(outerSrc, outerDst, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: 50000, DstPort: layers.UDPPort(port)}
	_ = udp.SetNetworkLayerForChecksum(outer.(gopacket.NetworkLayer))
	return serialize(t, &layers.Ethernet{SrcMAC: macDir, DstMAC: macReal, EthernetType: outerType}, outer, udp, gopacket.Payload(gue))
}

func run(t *testing.T, prog *ebpf.Program, in []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	ret, err := prog.Run(&ebpf.RunOptions{Data: in, DataOut: out})
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}

const xdpPass = 2

// TestDecapsulates: IP-in-IP and IPv6-in-IP packets to a VIP, with IPv4
// or IPv6 outside, come out as the very packet the director received
// (Ethernet addresses kept); everything else is passed untouched and
// counted by why.
func TestDecapsulates(t *testing.T) {
	netnstest.RequireRoot(t)
	objs, err := load([]netip.Addr{vip4, vip6}, 6080)
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	other := netip.MustParseAddr("198.18.0.200")
	plain4, plain6 := packet(t, client4, vip4, netip.Addr{}, netip.Addr{}), packet(t, client6, vip6, netip.Addr{}, netip.Addr{})
	for _, tc := range []struct {
		name        string
		in, want    []byte
		decapsulate bool
	}{
		{"IPv4 in IPv4", packet(t, client4, vip4, dir4, real4), packet(t, client4, vip4, netip.Addr{}, netip.Addr{}), true},
		{"IPv6 in IPv6", packet(t, client6, vip6, dir6, real6), packet(t, client6, vip6, netip.Addr{}, netip.Addr{}), true},
		{"IPv4 in IPv6", packet(t, client4, vip4, dir6, real6), packet(t, client4, vip4, netip.Addr{}, netip.Addr{}), true},
		{"IPv6 in IPv4", packet(t, client6, vip6, dir4, real4), packet(t, client6, vip6, netip.Addr{}, netip.Addr{}), true},
		{"to an address that is no VIP here", packet(t, client4, other, dir4, real4), nil, false},
		{"not tunnelled", packet(t, client4, vip4, netip.Addr{}, netip.Addr{}), nil, false},
		{"inner header cut short", packet(t, client4, vip4, dir4, real4)[:14+20+12], nil, false},
		{"GUE, IPv4 in IPv4", guePacket(t, client4, vip4, dir4, real4, 6080, 0), plain4, true},
		{"GUE, IPv6 in IPv6", guePacket(t, client6, vip6, dir6, real6, 6080, 0), plain6, true},
		{"GUE, IPv4 in IPv6", guePacket(t, client4, vip4, dir6, real6, 6080, 0), plain4, true},
		{"GUE to another UDP port", guePacket(t, client4, vip4, dir4, real4, 6081, 0), nil, false},
		{"GUE control message", guePacket(t, client4, vip4, dir4, real4, 6080, 0x20), nil, false},
		{"outer fragment", func() []byte {
			b := packet(t, client4, vip4, dir4, real4)
			b[14+6] |= 0x20 // more fragments
			return b
		}(), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ret, out := run(t, objs.GovsDecap, tc.in)
			if ret != xdpPass {
				t.Fatalf("action %d, want XDP_PASS", ret)
			}
			want := tc.in
			if tc.decapsulate {
				want = tc.want
			}
			if !bytes.Equal(out[:len(want)], want) || (tc.decapsulate && len(bytes.TrimRight(out, "\x00")) > len(want)) {
				t.Fatalf("out\n% x\nwant\n% x", out[:len(want)], want)
			}
		})
	}
	c, err := countersOf(objs.DecapStats)
	if err != nil {
		t.Fatal(err)
	}
	if c != (Counters{Decapsulated: 7, NotOurs: 1, Malformed: 3}) {
		t.Errorf("counters %+v, want 7 decapsulated, 1 not ours, 3 malformed", c)
	}
}

// FuzzDecap: whatever the frame, the program passes it, and changes it
// only by removing one outer header (IP, or IP, UDP and GUE).
func FuzzDecap(f *testing.F) {
	objs, err := load([]netip.Addr{vip4, vip6}, 6080)
	if err != nil {
		f.Skip("cannot load BPF here:", err)
	}
	f.Cleanup(func() { objs.Close() })
	for _, in := range [][]byte{
		packet(f, client4, vip4, dir4, real4), packet(f, client6, vip6, dir6, real6),
		packet(f, client4, vip4, dir6, real6), packet(f, client4, vip4, netip.Addr{}, netip.Addr{}),
		guePacket(f, client4, vip4, dir4, real4, 6080, 0), guePacket(f, client6, vip6, dir6, real6, 6080, 1),
	} {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 4000 {
			t.Skip()
		}
		out := make([]byte, len(in)+256)
		ret, err := objs.GovsDecap.Run(&ebpf.RunOptions{Data: in, DataOut: out})
		if err != nil {
			t.Fatal(err)
		}
		if ret != xdpPass {
			t.Fatalf("action %d", ret)
		}
		if bytes.Equal(out[:len(in)], in) {
			return
		}
		// An outer IPv4 or IPv6 header, with UDP, GUE and its options.
		for hl := 20; hl <= 40+12+31*4; hl++ {
			if len(in) > 14+hl && bytes.Equal(out[:12], in[:12]) && bytes.Equal(out[14:len(in)-hl], in[14+hl:]) {
				return
			}
		}
		t.Fatalf("changed beyond removing an outer header:\n in % x\nout % x", in, out[:len(in)])
	})
}
