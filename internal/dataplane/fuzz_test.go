package dataplane

import (
	"bytes"
	"encoding/binary"
	"testing"

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
