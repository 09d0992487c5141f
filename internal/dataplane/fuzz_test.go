package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/govs/govs/internal/sched"
)

// FuzzXDP feeds arbitrary frames to the program: it must always return a
// valid action, and whatever it forwards must be a packet of a configured
// service, changed only in its MAC addresses.
func FuzzXDP(f *testing.F) {
	d := openDP(f, state(
		svc4(sched.Maglev, 80, reals4(1, 1)...),
		Service{Addr: vip6, Port: 80, Protocol: TCP, Scheduler: sched.WeightedRoundRobin, Reals: []Real{real6(3, 1)}},
	))
	f.Add(frame(f, tcp4(40000, 80)))
	f.Add(frame(f, pktSpec{src: client4, dst: vip4, sport: 5, dport: 80, syn: true, vlan: 3}))
	f.Add(frame(f, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, syn: true}))
	f.Add(icmp4FragNeeded(f, client4, 40000, 80))
	f.Add(icmp6TooBig(f, client6, 1234, 80))
	f.Add(frame(f, pktSpec{src: client4, dst: vip4, sport: 41000, dport: 80, ipID: 9, fragFlags: 1}))
	f.Add(make([]byte, 14))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 4000 {
			t.Skip("outside what BPF_PROG_TEST_RUN accepts for XDP")
		}
		act, out := runOut(t, d.program(), in)
		switch act {
		case xdpPass, xdpDrop:
			if !bytes.Equal(out, in) {
				t.Fatalf("%s changed the frame", actionNames[act])
			}
		case xdpTX:
			if len(out) != len(in) || !bytes.Equal(out[12:], in[12:]) || !bytes.Equal(out[6:12], directorMAC) || out[5] < 1 || out[5] > 3 || !bytes.Equal(out[:5], realMAC(0)[:5]) {
				t.Fatalf("forwarded frame changed beyond its MACs:\n in % x\nout % x", in, out)
			}
			if !isServicePacket(in) {
				t.Fatalf("forwarded a frame that is not a service packet: % x", in)
			}
		default:
			t.Fatalf("action %d", act)
		}
	})
}

// isServicePacket is an independent reading of what the program may
// forward: a well-formed IPv4/IPv6 packet to a VIP that is TCP to port 80,
// an ICMP frag-needed / packet-too-big, or a later IPv4 fragment.
func isServicePacket(b []byte) bool {
	et := binary.BigEndian.Uint16(b[12:])
	off := 14
	if et == 0x8100 {
		if len(b) < 18 {
			return false
		}
		et = binary.BigEndian.Uint16(b[16:])
		off = 18
	}
	ip := b[off:]
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[0]&0xf < 5 {
			return false
		}
		hl, tot := int(ip[0]&0xf)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if tot < hl || tot > len(ip) || !bytes.Equal(ip[16:20], vip4.AsSlice()) {
			return false
		}
		if binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return true
		}
		l4 := ip[hl:tot]
		switch ip[9] {
		case 6:
			return len(l4) >= 20 && binary.BigEndian.Uint16(l4[2:]) == 80 && l4[12]>>4 >= 5
		case 1:
			return len(l4) >= 8 && l4[0] == 3 && l4[1] == 4
		}
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 || 40+int(binary.BigEndian.Uint16(ip[4:])) > len(ip) || !bytes.Equal(ip[24:40], vip6.AsSlice()) {
			return false
		}
		l4 := ip[40 : 40+int(binary.BigEndian.Uint16(ip[4:]))]
		next := ip[6]
		if next == 44 { // fragment header, then TCP/UDP
			if len(l4) < 8 || (l4[0] != 6 && l4[0] != 17) {
				return false
			}
			if binary.BigEndian.Uint16(l4[2:])&0xfff8 != 0 {
				return true
			}
			next, l4 = l4[0], l4[8:]
		}
		switch next {
		case 6:
			return len(l4) >= 20 && binary.BigEndian.Uint16(l4[2:]) == 80 && l4[12]>>4 >= 5
		case 58:
			return len(l4) >= 8 && l4[0] == 2
		}
	}
	return false
}

// FuzzXDPNAT feeds arbitrary frames to a program with NAT services, after
// a flow made a reply entry: whatever it forwards keeps its length, goes to
// the real server or comes from the VIP, and keeps every checksum that was
// right on the way in right on the way out.
func FuzzXDPNAT(f *testing.F) {
	r4, r6 := natReal(real4(1, 1), 8080), natReal(real6(1, 1), 8080)
	d := openDP(f, state(
		Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{r4}},
		Service{Addr: vip6, Port: 80, Protocol: UDP, Scheduler: sched.Maglev, Reals: []Real{r6}},
	))
	if err := d.setMACSlot(1, directorMAC, 0); err != nil {
		f.Fatal(err)
	}
	for _, in := range [][]byte{
		frame(f, tcp4(40000, 80)),
		frame(f, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, proto: UDP}),
	} {
		if act, _ := runOut(f, d.program(), in); act != xdpTX {
			f.Fatalf("setup flow: action %s", actionNames[act])
		}
	}
	router4, router6 := netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("2001:db8::fe")
	f.Add(frame(f, tcp4(40000, 80)))
	f.Add(withMACs(frame(f, pktSpec{src: r4.Addr, dst: client4, sport: 8080, dport: 40000}), directorMAC, r4.MAC))
	f.Add(withMACs(frame(f, pktSpec{src: r6.Addr, dst: client6, sport: 8080, dport: 1234, proto: UDP}), directorMAC, r6.MAC))
	f.Add(icmpError(f, router4, vip4, vip4, client4, 80, 40000, layers.IPProtocolTCP))
	f.Add(withMACs(icmpError(f, router4, client4, client4, r4.Addr, 40000, 8080, layers.IPProtocolTCP), directorMAC, r4.MAC))
	f.Add(withMACs(icmpError(f, router6, client6, client6, r6.Addr, 1234, 8080, layers.IPProtocolUDP), directorMAC, r6.MAC))
	f.Add(frame(f, pktSpec{src: client4, dst: vip4, sport: 40000, dport: 80, ipID: 9, fragFlags: 1}))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, sent := fuzzRun(t, d.program(), in)
		if !sent {
			return
		}
		checkRewritten(t, in, out[:len(in)], "neither to a real server nor from a VIP", func(c checked) bool {
			return c.dst == r4.Addr || c.dst == r6.Addr || c.src == vip4 || c.src == vip6
		})
	})
}

// checkRewritten fails a fuzz run whose forwarded frame out does not
// parse, is not where ok says it may go (where says what it should be), or
// broke a checksum that was right in the frame in.
func checkRewritten(t *testing.T, in, out []byte, where string, ok func(checked) bool) {
	t.Helper()
	pin, pout := checksums(in), checksums(out)
	if !pout.ok {
		t.Fatalf("forwarded a frame that does not parse:\n in % x\nout % x", in, out)
	}
	if !ok(pout) {
		t.Fatalf("forwarded %s -> %s: %s:\n in % x\nout % x", pout.src, pout.dst, where, in, out)
	}
	for i, valid := range pin.valid {
		if valid && !pout.valid[i] {
			t.Fatalf("checksum %d right on the way in, wrong on the way out:\n in % x\nout % x", i, in, out)
		}
	}
}

// fuzzRun runs in through prog for a fuzz target: it skips inputs
// BPF_PROG_TEST_RUN does not take, fails on an unknown action or on a
// frame XDP_PASS or XDP_DROP changed, and returns the frame and whether it
// was sent back out (XDP_TX).
func fuzzRun(t *testing.T, prog *ebpf.Program, in []byte) ([]byte, bool) {
	t.Helper()
	if len(in) < 14 || len(in) > 4000 {
		t.Skip("outside what BPF_PROG_TEST_RUN accepts for XDP")
	}
	act, out := runOut(t, prog, in)
	switch act {
	case xdpPass, xdpDrop:
		if !bytes.Equal(out, in) {
			t.Fatalf("%s changed the frame", actionNames[act])
		}
		return out, false
	case xdpTX:
		return out, true
	}
	t.Fatalf("action %d", act)
	return nil, false
}

// checked is what checksums found in a frame.
type checked struct {
	ok       bool
	src, dst netip.Addr
	// valid: the IPv4 header's, the transport's (TCP/UDP, or ICMP's).
	valid [2]bool
}

// checksums reads a frame's addresses and checks its checksums, as an
// independent reading of the frame (no code shared with the program). It
// parses by hand rather than with gopacket: gopacket rejects IPv4 options
// the kernel's XDP hook never looks at, and a later fragment with
// nonsense options is still forwarded, rightly, to its real server.
func checksums(b []byte) checked {
	var c checked
	if len(b) < 14 {
		return c
	}
	et, ip := binary.BigEndian.Uint16(b[12:]), b[14:]
	if et == 0x8100 && len(b) >= 18 {
		et, ip = binary.BigEndian.Uint16(b[16:]), b[18:]
	}
	var pseudo, l4 []byte
	var proto byte
	switch et {
	case 0x0800:
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return c
		}
		hl, tot := int(ip[0]&0xf)*4, int(binary.BigEndian.Uint16(ip[2:]))
		if hl < 20 || tot < hl || tot > len(ip) {
			return c
		}
		c.src, _ = netip.AddrFromSlice(ip[12:16])
		c.dst, _ = netip.AddrFromSlice(ip[16:20])
		c.valid[0] = onesComplement(ip[:hl]) == 0xffff
		c.ok = true
		if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
			return c // a fragment: its transport checksum covers other packets too
		}
		l4, proto = ip[hl:tot], ip[9]
		pseudo = append(append(append([]byte{}, ip[12:20]...), 0, proto), byte(len(l4)>>8), byte(len(l4)))
	case 0x86dd:
		if len(ip) < 40 || ip[0]>>4 != 6 || 40+int(binary.BigEndian.Uint16(ip[4:])) > len(ip) {
			return c
		}
		c.src, _ = netip.AddrFromSlice(ip[8:24])
		c.dst, _ = netip.AddrFromSlice(ip[24:40])
		c.ok = true
		l4, proto = ip[40:40+int(binary.BigEndian.Uint16(ip[4:]))], ip[6]
		pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(l4)>>8), byte(len(l4)), 0, 0, 0, proto)
	default:
		return c
	}
	switch proto {
	case 6, 17, 58:
		c.valid[1] = len(l4) >= 8 && onesComplement(append(pseudo, l4...)) == 0xffff
	case 1:
		c.valid[1] = len(l4) >= 8 && onesComplement(l4) == 0xffff
	}
	return c
}

// onesComplement is the one's complement sum of b (RFC 1071), not inverted.
func onesComplement(b []byte) uint16 {
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

// FuzzXDPTunnel feeds arbitrary frames to a program with TUN services, in
// IP-in-IP (IPv4) and GUE (IPv6 VIP, IPv6 real): whatever it forwards is
// an outer header (IPv4 with a valid checksum and exact length, or IPv6),
// for GUE a UDP header to the real's port with the exact length and a GUE
// header, and then the IP packet it received, byte for byte.
func FuzzXDPTunnel(f *testing.F) {
	r4 := real4(1, 1)
	r4.Method = TUN
	r6 := real6(1, 1)
	r6.Method, r6.GUEPort = TUN, 6080
	d := openDP(f, state(
		Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{r4}},
		Service{Addr: vip6, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{r6}},
	))
	f.Add(frame(f, tcp4(40000, 80)))
	f.Add(frame(f, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, syn: true}))
	f.Add(frame(f, pktSpec{src: client4, dst: vip4, sport: 5, dport: 80, syn: true, vlan: 3}))
	f.Add(icmp4FragNeeded(f, client4, 40000, 80))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, sent := fuzzRun(t, d.program(), in)
		if !sent {
			return
		}
		l2 := 14
		if binary.BigEndian.Uint16(in[12:]) == 0x8100 {
			l2 = 18
		}
		// The inner packet is what its header says (link padding after it
		// stays behind the outer packet, outside its length).
		inner := in[l2:]
		if inner[0]>>4 == 4 {
			inner = inner[:binary.BigEndian.Uint16(inner[2:])]
		} else {
			inner = inner[:40+int(binary.BigEndian.Uint16(inner[4:]))]
		}
		switch et := binary.BigEndian.Uint16(out[l2-2:]); et {
		case 0x0800:
			ip := out[l2 : l2+20]
			if ip[0] != 0x45 || int(binary.BigEndian.Uint16(ip[2:])) != 20+len(inner) || onesComplement(ip) != 0xffff || ip[9] != 4 && ip[9] != 41 {
				t.Fatalf("outer IPv4 header % x for an inner packet of %d bytes", ip, len(inner))
			}
			if !bytes.Equal(out[l2+20:l2+20+len(inner)], inner) {
				t.Fatalf("inner packet changed:\n in % x\nout % x", in, out)
			}
		case 0x86dd:
			ip := out[l2 : l2+40]
			if ip[0]>>4 != 6 || ip[6] != 17 || int(binary.BigEndian.Uint16(ip[4:])) != 12+len(inner) {
				t.Fatalf("outer IPv6 header % x (want UDP, payload %d)", ip, 12+len(inner))
			}
			udp := out[l2+40 : l2+52]
			if binary.BigEndian.Uint16(udp[2:]) != 6080 || int(binary.BigEndian.Uint16(udp[4:])) != 12+len(inner) || udp[8] != 0 || udp[9] != 4 && udp[9] != 41 {
				t.Fatalf("UDP/GUE headers % x", udp)
			}
			if !bytes.Equal(out[l2+52:l2+52+len(inner)], inner) {
				t.Fatalf("inner packet changed:\n in % x\nout % x", in, out)
			}
		default:
			t.Fatalf("forwarded with ethertype %#x", et)
		}
	})
}

// FuzzXDPFwmark feeds arbitrary frames to the program as if they came from
// the fwmark interface, with fwmark services in DR: nothing is passed back
// to the kernel (it would route it here again), and whatever is forwarded
// is the frame it received with only the MACs rewritten to a real server's.
func FuzzXDPFwmark(f *testing.F) {
	d := openDP(f, state(
		Service{Addr: netip.IPv4Unspecified(), Fwmark: 1, Scheduler: sched.Maglev, PersistenceTimeout: time.Minute, Reals: reals4(1, 1)},
		Service{Addr: netip.IPv6Unspecified(), Fwmark: 0x01000000, Scheduler: sched.RoundRobin, Reals: []Real{real6(3, 1)}},
	))
	m := balancerIfMac{Flags: ifFlagFwmark}
	copy(m.Addr[:], directorMAC)
	if err := d.objs.IfMacs.Put(uint32(1), m); err != nil {
		f.Fatal(err)
	}
	if err := d.setMACSlot(1, directorMAC, ifFlagFwmark); err != nil {
		f.Fatal(err)
	}
	marked := func(p pktSpec, mark uint32) []byte {
		b := frame(f, p)
		binary.BigEndian.PutUint32(b[2:6], mark)
		return b
	}
	f.Add(marked(tcp4(40000, 80), 1))
	f.Add(marked(pktSpec{src: client6, dst: vip6, sport: 1234, dport: 443, syn: true}, 0x01000000))
	f.Add(marked(pktSpec{src: client4, dst: vip4, sport: 5, dport: 53, proto: UDP, vlan: 3}, 1))
	f.Add(marked(tcp4(40000, 80), 2))
	f.Add(icmp4FragNeeded(f, client4, 40000, 80))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 14 || len(in) > 4000 {
			t.Skip("outside what BPF_PROG_TEST_RUN accepts for XDP")
		}
		act, out := runOut(t, d.program(), in)
		switch act {
		case xdpDrop:
			if !bytes.Equal(out, in) {
				t.Fatal("DROP changed the frame")
			}
		case xdpTX:
			if !bytes.Equal(out[0:5], realMAC(0)[0:5]) || !bytes.Equal(out[6:12], directorMAC) {
				t.Fatalf("forwarded with MACs %s -> %s", net.HardwareAddr(out[6:12]), net.HardwareAddr(out[0:6]))
			}
			if !bytes.Equal(out[12:], in[12:]) {
				t.Fatalf("DR changed more than the MACs:\n in % x\nout % x", in, out)
			}
		default:
			t.Fatalf("action %s on the fwmark interface", actionNames[act])
		}
	})
}

// FuzzXDPFNAT feeds arbitrary frames to a program with FullNAT services,
// after flows took local ports: whatever it forwards goes from a local
// address to a real server or from the VIP to a client, and keeps every
// checksum that was right on the way in right on the way out.
func FuzzXDPFNAT(f *testing.F) {
	l4, l6 := netip.MustParseAddr("198.18.1.201"), netip.MustParseAddr("2001:db8:1::201")
	r4, r6 := fnatReal(real4(1, 1), 8080), fnatReal(real6(1, 1), 8080)
	d := openDP(f, state(
		Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, LocalAddrs: []netip.Addr{l4}, Reals: []Real{r4}},
		Service{Addr: vip6, Port: 80, Protocol: UDP, Scheduler: sched.Maglev, LocalAddrs: []netip.Addr{l6}, Reals: []Real{r6}},
	))
	if err := d.setMACSlot(1, directorMAC, 0); err != nil {
		f.Fatal(err)
	}
	var lport4, lport6 uint16
	for i, in := range [][]byte{
		frame(f, tcp4(40000, 80)),
		frame(f, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, proto: UDP}),
	} {
		act, out := runOut(f, d.program(), in)
		if act != xdpTX {
			f.Fatalf("setup flow: action %s", actionNames[act])
		}
		_, port := sourceOf(out)
		if i == 0 {
			lport4 = port
		} else {
			lport6 = port
		}
	}
	router4 := netip.MustParseAddr("198.18.0.254")
	f.Add(frame(f, tcp4(40000, 80)))
	f.Add(withMACs(frame(f, pktSpec{src: r4.Addr, dst: l4, sport: 8080, dport: lport4}), directorMAC, r4.MAC))
	f.Add(withMACs(frame(f, pktSpec{src: r6.Addr, dst: l6, sport: 8080, dport: lport6, proto: UDP}), directorMAC, r6.MAC))
	f.Add(icmpError(f, router4, vip4, vip4, client4, 80, 40000, layers.IPProtocolTCP))
	f.Add(withMACs(icmpError(f, router4, l4, l4, r4.Addr, lport4, 8080, layers.IPProtocolTCP), directorMAC, r4.MAC))
	f.Add(frame(f, pktSpec{src: client4, dst: vip4, sport: 40001, dport: 80, syn: true}))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, sent := fuzzRun(t, d.program(), in)
		if !sent {
			return
		}
		checkRewritten(t, in, out[:len(in)], "neither from a local address to a real server nor from a VIP", func(c checked) bool {
			return (c.dst == r4.Addr && c.src == l4) || (c.dst == r6.Addr && c.src == l6) || c.src == vip4 || c.src == vip6
		})
	})
}
