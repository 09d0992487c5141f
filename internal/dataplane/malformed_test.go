package dataplane

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/govs/govs/internal/sched"
)

// mutate returns a copy of frame changed by f.
func mutate(frame []byte, f func(b []byte) []byte) []byte { return f(bytes.Clone(frame)) }

// TestMalformedFrames checks that broken frames towards a service are
// passed untouched (the kernel drops them) and never forwarded.
func TestMalformedFrames(t *testing.T) {
	d := openDP(t, state(
		svc4(sched.Maglev, 80, real4(1, 1)),
		Service{Addr: vip6, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, Reals: []Real{real6(1, 1)}},
	))
	good := frame(t, tcp4(40000, 80))
	good6 := frame(t, pktSpec{src: client6, dst: vip6, sport: 1, dport: 80, syn: true})
	fragNeeded, tooBig := icmp4FragNeeded(t, client4, 40000, 80), icmp6TooBig(t, client6, 1234, 80)
	const ip = 14
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty payload after MACs", good[:14]},
		{"half an IPv4 header", good[:14+10]},
		{"IPv4 header only", good[:14+20]},
		{"half a TCP header", good[:14+20+10]},
		{"IHL below 5", mutate(good, func(b []byte) []byte { b[ip] = 0x44; return b })},
		{"IHL beyond packet", mutate(good, func(b []byte) []byte { b[ip] = 0x4f; return b[:14+40] })},
		{"version 6 in IPv4 ethertype", mutate(good, func(b []byte) []byte { b[ip] = 0x65; return b })},
		{"total length beyond frame", mutate(good, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+2:], 1500); return b })},
		{"total length below header", mutate(good, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+2:], 12); return b })},
		{"total length excludes TCP header", mutate(good, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+2:], 30); return b })},
		{"TCP data offset below 5", mutate(good, func(b []byte) []byte { b[ip+20+12] = 0x20; return b })},
		{"VLAN tag truncated", mutate(good, func(b []byte) []byte { b[12], b[13] = 0x81, 0x00; return b[:16] })},
		{"IPv6 header truncated", good6[:14+30]},
		{"IPv6 payload length beyond frame", mutate(good6, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+4:], 2000); return b })},
		{"IPv6 TCP header truncated", good6[:14+40+8]},
		{"IPv6 version 4", mutate(good6, func(b []byte) []byte { b[ip] = 0x40; return b })},
		{"IPv6 fragment header truncated", mutate(good6, func(b []byte) []byte {
			b[ip+6] = 44
			binary.BigEndian.PutUint16(b[ip+4:], 4)
			return b[:14+40+4]
		})},
		// What lies past the total length is link padding: the ICMP
		// checksum does not cover it, so a quote there is no quote.
		{"ICMP quoted header past total length", mutate(fragNeeded, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+2:], 20+8); return b })},
		{"ICMP quoted ports past total length", mutate(fragNeeded, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+2:], 20+8+20); return b })},
		{"ICMPv6 quoted ports past payload length", mutate(tooBig, func(b []byte) []byte { binary.BigEndian.PutUint16(b[ip+4:], 8+40); return b })},
		{"IPv6 hop-by-hop header", mutate(good6, func(b []byte) []byte { b[ip+6] = 0; return b })},
	}
	// The ICMP errors quote flows the program knows: without the cuts they
	// would be forwarded.
	for _, in := range [][]byte{good, frame(t, pktSpec{src: client6, dst: vip6, sport: 1234, dport: 80, syn: true})} {
		if act, _ := runOut(t, d.program(), in); act != xdpTX {
			t.Fatalf("setup flow: action %s", actionNames[act])
		}
	}
	for _, in := range [][]byte{fragNeeded, tooBig} {
		if act, _ := runOut(t, d.program(), in); act != xdpTX {
			t.Fatalf("whole ICMP error: action %s, want TX", actionNames[act])
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.in) < 14 {
				t.Fatal("test frame shorter than Ethernet")
			}
			act, out := runOut(t, d.program(), tc.in)
			if act != xdpPass || !bytes.Equal(out, tc.in) {
				writePcap(t, "malformed", tc.in, out)
				t.Fatalf("action %s (want PASS), output changed: %v", actionNames[act], !bytes.Equal(out, tc.in))
			}
		})
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Global.PassMalformed == 0 || st.Global.PassIPv6Ext == 0 {
		t.Errorf("malformed/IPv6-extension counters not counted: %+v", st.Global)
	}
	for _, s := range st.Services {
		if s.Packets != 2 {
			t.Errorf("%s forwarded %d packets, want the 2 of the setup", s.Service, s.Packets)
		}
	}
}
