package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/govs/govs/internal/sched"
)

// fwmarkIfindex stands for govs-fwm1 in test runs (lo: BPF_PROG_TEST_RUN
// takes the ingress interface from the context).
const fwmarkIfindex = 1

// fwmarkFrame is a client frame as it reaches govs-fwm1: the tc program on
// govs-fwm0 wrote the mark into bytes 2-5 of the destination MAC.
func fwmarkFrame(t *testing.T, p pktSpec, mark uint32) []byte {
	t.Helper()
	f := frame(t, p)
	copy(f[0:6], net.HardwareAddr{0x02, 0xf0, byte(mark >> 24), byte(mark >> 16), byte(mark >> 8), byte(mark)})
	return f
}

// runOn runs the program on a frame as if it arrived on ifindex.
func runOn(t *testing.T, d *Dataplane, ifindex uint32, f []byte) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: f, DataOut: make([]byte, len(f)+256), Context: xdpMD{DataEnd: uint32(len(f)), IngressIfindex: ifindex}}
	got, err := d.objs.GovsXdp.Run(opts)
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return got, opts.DataOut
}

// TestFwmarkServices: frames from the fwmark interface go to the fwmark
// service of their mark and family, whatever their address and port, with
// persistence across the ports of one mark; a mark no service has, and
// anything else arriving there, is dropped (passed back, the kernel would
// route it to the fwmark interface again). Elsewhere fwmark services take
// nothing.
func TestFwmarkServices(t *testing.T) {
	web := Service{Addr: netip.IPv4Unspecified(), Fwmark: 1, Scheduler: sched.RoundRobin,
		PersistenceTimeout: time.Minute, Reals: reals4(1, 1, 1)}
	web6 := Service{Addr: netip.IPv6Unspecified(), Fwmark: 1, Scheduler: sched.RoundRobin, Reals: []Real{real6(4, 1)}}
	dns := Service{Addr: netip.IPv4Unspecified(), Fwmark: 0x01020304, Scheduler: sched.RoundRobin, Reals: []Real{real4(5, 1)}}
	d := openDP(t, state(web, web6, dns))
	var m balancerIfMac
	m.Flags = ifFlagFwmark
	copy(m.Addr[:], directorMAC)
	if err := d.objs.IfMacs.Put(uint32(fwmarkIfindex), m); err != nil {
		t.Fatal(err)
	}
	if err := d.setMACSlot(fwmarkIfindex, directorMAC, ifFlagFwmark); err != nil {
		t.Fatal(err)
	}

	// Persistence holds a client over both ports of mark 1; the round
	// robin moves the next client on.
	first := 0
	for i, port := range []uint16{80, 443, 80, 8443} {
		act, out := runOn(t, d, fwmarkIfindex, fwmarkFrame(t, pktSpec{src: client4, dst: vip4, sport: uint16(40000 + i), dport: port, syn: true}, 1))
		got := realOf(t, act, out)
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("port %d of the persistent client went to real %d, its first connection to %d", port, got, first)
		}
		if !bytes.Equal(out[6:12], directorMAC) {
			t.Fatalf("source MAC %s, want the egress interface's %s", net.HardwareAddr(out[6:12]), directorMAC)
		}
	}
	// Other clients spread over the reals (rr's position is per CPU, and
	// test runs may land on any: many clients, not the next one).
	used := map[int]bool{first: true}
	other := client4
	for range 20 {
		other = other.Next()
		act, out := runOn(t, d, fwmarkIfindex, fwmarkFrame(t, pktSpec{src: other, dst: vip4, sport: 40000, dport: 80, syn: true}, 1))
		used[realOf(t, act, out)] = true
	}
	if len(used) < 2 {
		t.Fatalf("21 clients all went to real %d", first)
	}
	var act uint32
	var out []byte
	// Any address, port and protocol: UDP to another address, mark 0x01020304.
	act, out = runOn(t, d, fwmarkIfindex, fwmarkFrame(t, pktSpec{src: client4, dst: netip.MustParseAddr("198.18.0.53"), sport: 5353, dport: 53, proto: UDP}, 0x01020304))
	if got := realOf(t, act, out); got != 5 {
		t.Fatalf("mark 0x01020304 went to real %d, want 5", got)
	}
	// The family picks the service of a mark.
	act, out = runOn(t, d, fwmarkIfindex, fwmarkFrame(t, pktSpec{src: client6, dst: vip6, sport: 40000, dport: 443, syn: true}, 1))
	if got := realOf(t, act, out); got != 4 {
		t.Fatalf("IPv6 mark 1 went to real %d, want the IPv6 service's 4", got)
	}

	before, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	arp := serialize(t, &layers.Ethernet{SrcMAC: clientMAC, DstMAC: directorMAC, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: clientMAC, SourceProtAddress: client4.AsSlice(),
			DstHwAddress: make([]byte, 6), DstProtAddress: vip4.AsSlice()}, gopacket.Payload(make([]byte, 18)))
	drops := []struct {
		name  string
		frame []byte
	}{
		{"a mark no service has", fwmarkFrame(t, tcp4(40100, 80), 9)},
		{"IPv6 with a mark only IPv4 has", fwmarkFrame(t, pktSpec{src: client6, dst: vip6, sport: 40000, dport: 53, proto: UDP}, 0x01020304)},
		{"not IP", arp},
	}
	for _, tt := range drops {
		if act, _ := runOn(t, d, fwmarkIfindex, tt.frame); act != xdpDrop {
			t.Errorf("%s: action %s, want DROP", tt.name, actionNames[act])
		}
	}
	after, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Global.FwmarkMiss - before.Global.FwmarkMiss; n != 2 {
		t.Errorf("fwmark_miss counted %d, want 2", n)
	}

	// On any other interface a fwmark service takes nothing, even a frame
	// whose MAC happens to hold its mark: the kernel gets it.
	f := fwmarkFrame(t, tcp4(40200, 80), 1)
	copy(f[0:6], directorMAC)
	if act, _ := runOn(t, d, 2, f); act != xdpPass {
		t.Fatalf("a frame on an ordinary interface: action %s, want PASS (no address service)", actionNames[act])
	}
}
