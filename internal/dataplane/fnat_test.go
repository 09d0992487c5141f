package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gopacket/gopacket/layers"

	"github.com/govs/govs/internal/sched"
)

// fnatReal is real server r as a FullNAT destination listening on port.
func fnatReal(r Real, port uint16) Real {
	r.Method = FNAT
	r.Port = port
	return r
}

// sourceOf reads the source address and port of a frame's TCP/UDP packet
// (untagged).
func sourceOf(b []byte) (netip.Addr, uint16) {
	if binary.BigEndian.Uint16(b[12:]) == 0x0800 {
		ihl := int(b[14]&0xf) * 4
		a, _ := netip.AddrFromSlice(b[26:30])
		return a, binary.BigEndian.Uint16(b[14+ihl:])
	}
	a, _ := netip.AddrFromSlice(b[22:38])
	return a, binary.BigEndian.Uint16(b[54:])
}

// TestFNATRewrites checks every FullNAT rewrite byte for byte against
// packets built from scratch: towards the real server both ends change
// (destination real:port, source a local address and a port of its own);
// the real server's reply to that address and port becomes VIP:80 ->
// client:port, sent to the MAC the client's frame came from; the flow keeps
// its local address and port; ICMP errors are translated both ways.
func TestFNATRewrites(t *testing.T) {
	router4, router6 := netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("2001:db8::fe")
	tests := []struct {
		name        string
		vip, client netip.Addr
		router      netip.Addr
		real        Real
		laddrs      []netip.Addr
		proto       Protocol
		realPort    uint16
	}{
		{"IPv4 TCP", vip4, client4, router4, real4(1, 1), []netip.Addr{netip.MustParseAddr("198.18.1.201"), netip.MustParseAddr("198.18.1.202")}, TCP, 8080},
		{"IPv4 UDP", vip4, client4, router4, real4(2, 1), []netip.Addr{netip.MustParseAddr("198.18.1.201")}, UDP, 53},
		{"IPv6 TCP", vip6, client6, router6, real6(1, 1), []netip.Addr{netip.MustParseAddr("2001:db8:1::201")}, TCP, 80},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const vport, cport = 80, 40001
			d := openDP(t, state(Service{Addr: tc.vip, Port: vport, Protocol: tc.proto, Scheduler: sched.Maglev,
				LocalAddrs: tc.laddrs, Reals: []Real{fnatReal(tc.real, tc.realPort)}}))
			if err := d.setMACSlot(1, directorMAC, 0); err != nil {
				t.Fatal(err)
			}
			pkt := func(src, dst netip.Addr, sport, dport uint16, syn bool) pktSpec {
				return pktSpec{src: src, dst: dst, sport: sport, dport: dport, proto: tc.proto, syn: syn && tc.proto == TCP}
			}
			expect := func(name string, in []byte, wantAct uint32, want []byte) {
				t.Helper()
				act, out := runOut(t, d.program(), in)
				out = out[:len(in)]
				if act != wantAct || !bytes.Equal(out, want) {
					writePcap(t, "fnat-"+name, in, out, want)
					t.Fatalf("%s: action %s (want %s)\n got % x\nwant % x", name, actionNames[act], actionNames[wantAct], out, want)
				}
			}

			in := frame(t, pkt(tc.client, tc.vip, cport, vport, true))
			act, out := runOut(t, d.program(), in)
			if act != xdpTX {
				t.Fatalf("to real: action %s", actionNames[act])
			}
			laddr, lport := sourceOf(out)
			if !containsAddr(tc.laddrs, laddr) || lport < 1024 {
				t.Fatalf("source %s:%d is no local address and port (%v, 1024 and up)", laddr, lport, tc.laddrs)
			}
			want := withMACs(frame(t, pkt(laddr, tc.real.Addr, lport, tc.realPort, true)), tc.real.MAC, directorMAC)
			expect("to real", in, xdpTX, want)
			// The flow keeps its address and port (the second packet too).
			want = withMACs(frame(t, pkt(laddr, tc.real.Addr, lport, tc.realPort, false)), tc.real.MAC, directorMAC)
			expect("to real again", frame(t, pkt(tc.client, tc.vip, cport, vport, false)), xdpTX, want)

			reply := withMACs(frame(t, pkt(tc.real.Addr, laddr, tc.realPort, lport, false)), directorMAC, tc.real.MAC)
			want = withMACs(frame(t, pkt(tc.vip, tc.client, vport, cport, false)), clientMAC, directorMAC)
			expect("reply", reply, xdpTX, want)

			// A reply to a local port no connection has here (one another
			// director made) is dropped: the kernel would reset it.
			stray := withMACs(frame(t, pkt(tc.real.Addr, laddr, tc.realPort, lport+1, false)), directorMAC, tc.real.MAC)
			expect("stray reply", stray, xdpDrop, stray)
			// The director's own traffic is untouched: to another address,
			// or to a port below the local ports.
			own := withMACs(frame(t, pkt(tc.real.Addr, tc.vip, tc.realPort, lport, false)), directorMAC, tc.real.MAC)
			expect("to another address", own, xdpPass, own)
			low := withMACs(frame(t, pkt(tc.real.Addr, laddr, tc.realPort, 22, false)), directorMAC, tc.real.MAC)
			expect("to a low port", low, xdpPass, low)

			ipProto := layers.IPProtocol(tc.proto)
			// From the client's side, about a reply: router -> VIP quoting
			// VIP:80 -> client becomes local -> real quoting real:port ->
			// local:lport, which the real server's socket matches.
			icmpIn := icmpError(t, tc.router, tc.vip, tc.vip, tc.client, vport, cport, ipProto)
			want = withMACs(icmpError(t, laddr, tc.real.Addr, tc.real.Addr, laddr, tc.realPort, lport, ipProto), tc.real.MAC, directorMAC)
			expect("ICMP towards the real", icmpIn, xdpTX, want)
			// From the real server's side, about a packet to it: router ->
			// local quoting local:lport -> real:port becomes VIP -> client
			// quoting client -> VIP:80.
			icmpOut := withMACs(icmpError(t, tc.router, laddr, laddr, tc.real.Addr, lport, tc.realPort, ipProto), directorMAC, tc.real.MAC)
			want = withMACs(icmpError(t, tc.vip, tc.client, tc.client, tc.vip, cport, vport, ipProto), clientMAC, directorMAC)
			expect("ICMP towards the client", icmpOut, xdpTX, want)

			st, err := d.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.Global.FNATReplies != 1 || st.Global.NATICMP != 1 || st.Global.FNATUnknown != 1 {
				t.Errorf("FullNAT replies %d, ICMP %d, unknown %d; want 1, 1 and 1", st.Global.FNATReplies, st.Global.NATICMP, st.Global.FNATUnknown)
			}
			if svc := st.Services[0]; svc.OutPackets != 2 || svc.Reals[0].OutPackets != 2 {
				t.Errorf("outgoing packets: service %d, real %d; want 2 and 2", svc.OutPackets, svc.Reals[0].OutPackets)
			}
		})
	}
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// TestFNATPortIsTheFlowsOwn: a director that has a FullNAT flow only from
// connection sync (no local port yet) gives it the address and port the
// director that made it did, when that director took the first it tried:
// the real server's connection goes on after a failover.
func TestFNATPortIsTheFlowsOwn(t *testing.T) {
	laddrs := []netip.Addr{netip.MustParseAddr("198.18.1.201"), netip.MustParseAddr("198.18.1.202"), netip.MustParseAddr("198.18.1.203")}
	s := state(Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev, LocalAddrs: laddrs, Reals: []Real{fnatReal(real4(1, 1), 80)}})
	master, backup := openDP(t, s), openDP(t, s)
	for i := range 200 {
		p := flowN(i, 80)
		p.syn = false
		_, a := runOut(t, master.program(), frame(t, p))
		_, b := runOut(t, backup.program(), frame(t, p))
		if !bytes.Equal(a, b) {
			ma, mp := sourceOf(a)
			ba, bp := sourceOf(b)
			t.Fatalf("flow %d: one director sends it from %s:%d, the other from %s:%d", i, ma, mp, ba, bp)
		}
	}
}

// TestFNATPortsNotShared: many clients at one real server over one local
// address each get a port of their own (no two live connections share the
// reply's tuple), and ports of connections past their timeout are freed by
// ExpireConnections.
func TestFNATPortsNotShared(t *testing.T) {
	laddr := netip.MustParseAddr("198.18.1.201")
	d := openDPWith(t, Options{TCPTimeout: 50 * time.Millisecond}, state(Service{Addr: vip4, Port: 80, Protocol: TCP, Scheduler: sched.Maglev,
		LocalAddrs: []netip.Addr{laddr}, Reals: []Real{fnatReal(real4(1, 1), 80)}}))
	const flows = 3000
	seen := map[uint16]int{}
	for i := range flows {
		p := flowN(i, 80)
		p.syn = false // established: the connection table's timeout applies
		act, out := runOut(t, d.program(), frame(t, p))
		if act != xdpTX {
			t.Fatalf("flow %d: action %s", i, actionNames[act])
		}
		a, port := sourceOf(out)
		if a != laddr {
			t.Fatalf("flow %d: source %s", i, a)
		}
		if j, dup := seen[port]; dup {
			t.Fatalf("flows %d and %d share local port %d", j, i, port)
		}
		seen[port] = i
	}
	if n := mapLen(t, d.objs.FnatBacks); n != flows {
		t.Fatalf("%d ports taken, want %d", n, flows)
	}
	deadline := time.Now().Add(10 * time.Second)
	for mapLen(t, d.objs.FnatBacks) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d ports still taken after their connections' timeout", mapLen(t, d.objs.FnatBacks))
		}
		if _, err := d.ExpireConnections(); err != nil {
			t.Fatal(err)
		}
	}
	if n := mapLen(t, d.objs.FnatFwds); n != 0 {
		t.Errorf("%d FullNAT flows left with their ports freed", n)
	}
}

// mapLen counts a map's entries.
func mapLen(t *testing.T, m interface {
	Iterate() *ebpf.MapIterator
}) int {
	t.Helper()
	var k, v []byte
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStreamConnections: the unlocked walk sees what Connections sees.
func TestStreamConnections(t *testing.T) {
	d := openDP(t, state(svc4(sched.Maglev, 80, reals4(1, 1)...)))
	for i := range 50 {
		p := ack(flowN(i, 80))
		if act, _ := runOut(t, d.program(), frame(t, p)); act != xdpTX {
			t.Fatalf("flow %d: %s", i, actionNames[act])
		}
	}
	all, err := d.Connections()
	if err != nil {
		t.Fatal(err)
	}
	var streamed []Conn
	if err := d.StreamConnections(func(c Conn) { streamed = append(streamed, c) }); err != nil {
		t.Fatal(err)
	}
	if len(all) != 50 || len(streamed) != 50 {
		t.Fatalf("Connections %d, StreamConnections %d; want 50 each", len(all), len(streamed))
	}
	seen := map[netip.AddrPort]bool{}
	for _, c := range all {
		seen[c.Client] = true
	}
	for _, c := range streamed {
		if !seen[c.Client] {
			t.Errorf("streamed %v, which Connections did not list", c.Client)
		}
	}
}

// TestPersistConns: Stats counts each real server's live persistence
// templates (ipvsadm's PersistConn), one per client.
func TestPersistConns(t *testing.T) {
	svc := svc4(sched.Maglev, 80, reals4(1)...)
	svc.PersistenceTimeout = time.Minute
	d := openDP(t, state(svc))
	for i := range 5 {
		for port := range 3 { // three connections per client: one template
			p := flowN(i, 80)
			p.sport += uint16(port)
			if act, _ := runOut(t, d.program(), frame(t, p)); act != xdpTX {
				t.Fatalf("client %d: %s", i, actionNames[act])
			}
		}
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Services[0].Reals[0].PersistConns; n != 5 {
		t.Fatalf("PersistConns %d, want 5", n)
	}
}

// TestMaglevSameOnEveryDirector: two directors whose configurations list
// the same real servers in another order, and give them other ids (one has
// an extra service first), send every flow to the same real server: the
// Maglev table depends on the servers' addresses and weights only, so a
// flow that ECMP moves to another director keeps its server (issue 12).
func TestMaglevSameOnEveryDirector(t *testing.T) {
	rs := reals4(1, 2, 1)
	a := openDP(t, state(svc4(sched.Maglev, 80, rs...)))
	other := svc4(sched.Maglev, 8080, real4(9, 1))
	b := openDP(t, state(other, svc4(sched.Maglev, 80, rs[2], rs[0], rs[1])))
	used := map[int]int{}
	for i := range 600 {
		p := flowN(i, 80)
		p.syn = false
		actA, outA := runOut(t, a.program(), frame(t, p))
		actB, outB := runOut(t, b.program(), frame(t, p))
		ra, rb := realOf(t, actA, outA), realOf(t, actB, outB)
		if ra != rb {
			t.Fatalf("flow %d: real %d on one director, %d on the other", i, ra, rb)
		}
		used[ra]++
	}
	if len(used) != 3 || used[2] < used[1] || used[2] < used[3] {
		t.Errorf("flows per real %v: want all three, real 2 (weight 2) the most", used)
	}
}
