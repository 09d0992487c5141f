package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

// XDP actions.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

var actionNames = map[uint32]string{0: "ABORTED", 1: "DROP", 2: "PASS", 3: "TX", 4: "REDIRECT"}

var (
	clientMAC   = net.HardwareAddr{0x02, 0xc1, 0, 0, 0, 0x01}
	directorMAC = net.HardwareAddr{0x02, 0xd1, 0, 0, 0, 0x01}
	vip4        = netip.MustParseAddr("198.18.0.100")
	vip6        = netip.MustParseAddr("2001:db8::100")
	client4     = netip.MustParseAddr("198.19.1.10")
	client6     = netip.MustParseAddr("2001:db8:1::10")
	tunSrc4     = netip.MustParseAddr("198.18.0.2")
	tunSrc6     = netip.MustParseAddr("2001:db8::2")
)

// realMAC gives real server i (1-based) a recognisable MAC.
func realMAC(i int) net.HardwareAddr { return net.HardwareAddr{0x02, 0xee, 0, 0, 0, byte(i)} }

func real4(i int, weight uint32) Real {
	return Real{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}), Weight: weight, MAC: realMAC(i)}
}

func real6(i int, weight uint32) Real {
	a := vip6.As16()
	a[15] = byte(0x10 + i)
	return Real{Addr: netip.AddrFrom16(a), Weight: weight, MAC: realMAC(i)}
}

// reals returns n IPv4 reals with the given weights (1 when omitted).
func reals4(weights ...uint32) []Real {
	out := make([]Real, len(weights))
	for i, w := range weights {
		out[i] = real4(i+1, w)
	}
	return out
}

func state(svcs ...Service) State {
	return State{
		Services:      svcs,
		InterfaceMACs: map[int]net.HardwareAddr{0: directorMAC},
		TunnelSource4: tunSrc4,
		TunnelSource6: tunSrc6,
	}
}

func svc4(kind sched.Kind, port uint16, rs ...Real) Service {
	return Service{Addr: vip4, Port: port, Protocol: TCP, Scheduler: kind, Reals: rs}
}

// openDP loads the program (root only) and closes it at cleanup.
func openDP(t testing.TB, s State) *Dataplane {
	t.Helper()
	return openDPWith(t, Options{}, s)
}

// openDPWith is openDP with options, e.g. timeouts short enough that a test
// can age an entry past them on a machine booted seconds ago (the monotonic
// clock starts at boot).
func openDPWith(t testing.TB, opts Options, s State) *Dataplane {
	t.Helper()
	netnstest.RequireRoot(t)
	d, err := Open(opts)
	if err != nil {
		t.Fatalf("open dataplane: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Apply(s); err != nil {
		t.Fatalf("apply: %v", err)
	}
	return d
}

// runOut feeds one frame through BPF_PROG_TEST_RUN and returns the
// action and the frame as the program left it.
func runOut(t testing.TB, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+256)}
	ret, err := prog.Run(opts)
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return ret, opts.DataOut
}

type pktSpec struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        Protocol
	syn, fin     bool
	rst          bool
	vlan         uint16
	payload      []byte
	ipID         uint16
	fragFlags    layers.IPv4Flag
	fragOffset   uint16 // in 8-byte units
}

func ipLayers(p pktSpec, next layers.IPProtocol) (gopacket.SerializableLayer, gopacket.NetworkLayer, layers.EthernetType) {
	if p.src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: next, Id: p.ipID,
			Flags: p.fragFlags, FragOffset: p.fragOffset,
			SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
		return ip, ip, layers.EthernetTypeIPv4
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
	return ip, ip, layers.EthernetTypeIPv6
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return bytes.Clone(buf.Bytes())
}

func l2(p pktSpec, et layers.EthernetType) []gopacket.SerializableLayer {
	if p.vlan != 0 {
		return []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: p.vlan, Type: et},
		}
	}
	return []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: et}}
}

// frame builds an Ethernet frame carrying a TCP or UDP packet.
func frame(t testing.TB, p pktSpec) []byte {
	t.Helper()
	if p.proto == 0 {
		p.proto = TCP
	}
	if p.payload == nil {
		p.payload = []byte("GET / HTTP/1.0\r\n\r\n")
	}
	ipl, nl, et := ipLayers(p, layers.IPProtocol(p.proto))
	ls := l2(p, et)
	ls = append(ls, ipl)
	switch p.proto {
	case TCP:
		tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), SYN: p.syn, FIN: p.fin, RST: p.rst, ACK: !p.syn, Window: 64240, Seq: 1}
		_ = tcp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tcp)
	case UDP:
		udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		_ = udp.SetNetworkLayerForChecksum(nl)
		ls = append(ls, udp)
	}
	ls = append(ls, gopacket.Payload(p.payload))
	return serialize(t, ls...)
}

func tcp4(sport uint16, dport uint16) pktSpec {
	return pktSpec{src: client4, dst: vip4, sport: sport, dport: dport, proto: TCP, syn: true}
}

// flowN is the n-th distinct client flow towards vip:port (sources spread
// over 198.19.0.0/16 and ports).
func flowN(n int, dport uint16) pktSpec {
	src := netip.AddrFrom4([4]byte{198, 19, byte(n >> 8 & 0xff), byte(n & 0xff)})
	return pktSpec{src: src, dst: vip4, sport: uint16(1024 + n%60000), dport: dport, proto: TCP, syn: true}
}

// ack is p without SYN: a packet of an established flow.
func ack(p pktSpec) pktSpec {
	p.syn = false
	return p
}

// realOf returns which real (1-based index of realMAC) a forwarded frame went to.
func realOf(t testing.TB, act uint32, out []byte) int {
	t.Helper()
	if act != xdpTX {
		t.Fatalf("action %s, want TX", actionNames[act])
	}
	if !bytes.Equal(out[0:5], realMAC(0)[0:5]) {
		t.Fatalf("destination MAC %s is no real server's", net.HardwareAddr(out[0:6]))
	}
	return int(out[5])
}

// writePcap saves frames for a failed test and logs where.
func writePcap(t testing.TB, name string, frames ...[]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Logf("pcap: %v", err)
		return
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Logf("pcap: %v", err)
		return
	}
	for _, fr := range frames {
		_ = w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(0, 0), CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	t.Logf("frames written to %s", path)
}
