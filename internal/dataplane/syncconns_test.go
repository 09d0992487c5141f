package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/sched"
)

// TestInsertConnectionsKeepsFlowsOnTheirReal plays failover: flows
// scheduled by one director, synced to another whose real ids and rr
// position differ, must keep their real server there mid-flow.
func TestInsertConnectionsKeepsFlowsOnTheirReal(t *testing.T) {
	const n = 24
	master := openDP(t, state(svc4(sched.RoundRobin, 80, real4(1, 1), real4(2, 1))))
	// The backup knows a third real, listed first, so ids and the rr
	// sequence differ from the master's.
	backupState := state(svc4(sched.RoundRobin, 80, real4(3, 1), real4(1, 1), real4(2, 1)))
	backup := openDP(t, backupState)
	control := openDP(t, backupState)

	want := map[int]int{}
	for i := range n {
		act, out := runOut(t, master.program(), frame(t, flowN(i, 80)))
		want[i] = realOf(t, act, out)
	}
	conns, err := master.Connections()
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != n {
		t.Fatalf("master has %d connections, want %d", len(conns), n)
	}
	for _, c := range conns {
		if c.Protocol != TCP || c.VIP != netip.AddrPortFrom(vip4, 80) || c.Closing {
			t.Errorf("connection %+v: wrong protocol, VIP or state", c)
		}
		if d := time.Since(c.LastSeen); d < -time.Second || d > 5*time.Second {
			t.Errorf("connection %+v: last seen %s ago", c, d)
		}
	}

	// Unknown service and unknown real are skipped.
	extra := []Conn{
		{Protocol: TCP, Client: netip.MustParseAddrPort("198.19.200.1:4000"), VIP: netip.MustParseAddrPort("198.18.0.99:80"), Real: real4(1, 1).Addr, LastSeen: time.Now()},
		{Protocol: TCP, Client: netip.MustParseAddrPort("198.19.200.2:4000"), VIP: netip.AddrPortFrom(vip4, 80), Real: netip.MustParseAddr("198.18.0.99"), LastSeen: time.Now()},
		{Protocol: UDP, Client: netip.MustParseAddrPort("198.19.200.3:4000"), VIP: netip.AddrPortFrom(vip4, 80), Real: real4(1, 1).Addr, LastSeen: time.Now()},
	}
	inserted, err := backup.InsertConnections(append(conns, extra...))
	if err != nil {
		t.Fatal(err)
	}
	if inserted != n {
		t.Fatalf("inserted %d, want %d", inserted, n)
	}
	// Again: every entry now exists, the local one wins.
	if again, err := backup.InsertConnections(conns); err != nil || again != 0 {
		t.Fatalf("second insert: %d, %v; want 0, nil", again, err)
	}

	mismatches := 0
	for i := range n {
		p := flowN(i, 80)
		p.syn = false
		act, out := runOut(t, backup.program(), frame(t, p))
		if got := realOf(t, act, out); got != want[i] {
			t.Errorf("flow %d went to real %d on the backup, master sent it to %d", i, got, want[i])
		}
		act, out = runOut(t, control.program(), frame(t, p))
		if realOf(t, act, out) != want[i] {
			mismatches++
		}
	}
	if mismatches == 0 {
		t.Fatalf("without synced connections every flow still reached its real: the test proves nothing")
	}
	t.Logf("without sync %d of %d mid-flow packets went to another real", mismatches, n)
}

// TestInsertConnectionsLocalEntryWins checks an entry the director made
// itself is not overwritten by a synced one.
func TestInsertConnectionsLocalEntryWins(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, real4(1, 1), real4(2, 1))))
	p := flowN(1, 80)
	act, out := runOut(t, d.program(), frame(t, p))
	local := realOf(t, act, out)
	other := real4(1, 1).Addr
	if local == 1 {
		other = real4(2, 1).Addr
	}
	n, err := d.InsertConnections([]Conn{{Protocol: TCP, Client: netip.AddrPortFrom(p.src, p.sport), VIP: netip.AddrPortFrom(vip4, 80), Real: other, LastSeen: time.Now()}})
	if err != nil || n != 0 {
		t.Fatalf("insert over a local entry: %d, %v; want 0, nil", n, err)
	}
	p.syn = false
	act, out = runOut(t, d.program(), frame(t, p))
	if got := realOf(t, act, out); got != local {
		t.Fatalf("flow moved from real %d to %d", local, got)
	}
}

// TestConnectionsIPv6AnyPort covers IPv6 addresses and an any-port
// service (the VIP's port is the packet's, the service's is 0).
func TestConnectionsIPv6AnyPort(t *testing.T) {
	s := state(Service{Addr: vip6, Port: 0, Protocol: TCP, Scheduler: sched.RoundRobin, Reals: []Real{real6(1, 1), real6(2, 1)}})
	a := openDP(t, s)
	b := openDP(t, s)
	p := pktSpec{src: client6, dst: vip6, sport: 40000, dport: 8443, proto: TCP, syn: true}
	// Advance a's rr so the flow lands on the second real.
	q := p
	q.sport = 40001
	runOut(t, a.program(), frame(t, q))
	act, out := runOut(t, a.program(), frame(t, p))
	want := realOf(t, act, out)
	conns, err := a.Connections()
	if err != nil {
		t.Fatal(err)
	}
	var mine []Conn
	for _, c := range conns {
		if c.Client == netip.AddrPortFrom(client6, 40000) {
			if c.VIP != netip.AddrPortFrom(vip6, 8443) {
				t.Fatalf("VIP %s, want [%s]:8443", c.VIP, vip6)
			}
			mine = append(mine, c)
		}
	}
	if n, err := b.InsertConnections(mine); err != nil || n != 1 {
		t.Fatalf("insert: %d, %v; want 1, nil", n, err)
	}
	p.syn = false
	act, out = runOut(t, b.program(), frame(t, p))
	if got := realOf(t, act, out); got != want {
		t.Fatalf("flow went to real %d, want %d", got, want)
	}
}

// TestInsertConnectionsRefreshesSynced checks a synced entry's last-seen
// time follows later syncs.
func TestInsertConnectionsRefreshesSynced(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, real4(1, 1), real4(2, 1))))
	c := Conn{Protocol: TCP, Client: netip.MustParseAddrPort("198.19.0.9:4000"), VIP: netip.AddrPortFrom(vip4, 80), Real: real4(2, 1).Addr}
	// Idle times within the uptime: an entry cannot be older than the
	// program's clock, which starts at boot (the data plane clamps there).
	now, err := d.monotonicNanos()
	if err != nil {
		t.Fatal(err)
	}
	old := min(d.opts.TCPTimeout/2, time.Duration(now)/2)
	for i, idle := range []time.Duration{old, old / 60} {
		c.LastSeen = time.Now().Add(-idle)
		if _, err := d.InsertConnections([]Conn{c}); err != nil {
			t.Fatal(err)
		}
		got, err := d.Connections()
		if err != nil || len(got) != 1 {
			t.Fatalf("round %d: connections %+v, %v", i, got, err)
		}
		if diff := got[0].LastSeen.Sub(c.LastSeen); diff < -time.Second || diff > time.Second {
			t.Fatalf("round %d: last seen %s, want %s", i, got[0].LastSeen, c.LastSeen)
		}
	}
}

// TestInsertConnectionsSkipsExpired: an entry idle for longer than its
// timeout is not inserted, whatever the uptime (stored as "before boot" it
// looked fresh to a director up for less than the timeout).
func TestInsertConnectionsSkipsExpired(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, real4(1, 1))))
	base := Conn{Protocol: TCP, VIP: netip.AddrPortFrom(vip4, 80), Real: real4(1, 1).Addr}
	for i, c := range []struct {
		idle    time.Duration
		closing bool
		want    int
	}{
		{d.opts.TCPTimeout + time.Minute, false, 0},
		{d.opts.TCPFinTimeout + time.Second, true, 0},
		{time.Second, false, 1},
	} {
		conn := base
		conn.Client = netip.AddrPortFrom(netip.MustParseAddr("198.19.0.9"), uint16(4000+i))
		conn.LastSeen, conn.Closing = time.Now().Add(-c.idle), c.closing
		if got, err := d.InsertConnections([]Conn{conn}); err != nil || got != c.want {
			t.Errorf("idle %v closing %v: inserted %d (%v), want %d", c.idle, c.closing, got, err, c.want)
		}
	}
}

// BenchmarkConnections reads a table of 100000 entries, what the sync
// sender does every 200 ms while MASTER.
func BenchmarkConnections(b *testing.B) {
	d := openDP(b, state(svc4(sched.RoundRobin, 80, real4(1, 1), real4(2, 1))))
	const n = 100000
	conns := make([]Conn, n)
	for i := range conns {
		conns[i] = Conn{Protocol: TCP, Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 16), byte(i >> 8)}), uint16(i)),
			VIP: netip.AddrPortFrom(vip4, 80), Real: real4(1+i%2, 1).Addr, LastSeen: time.Now()}
	}
	if got, err := d.InsertConnections(conns); err != nil || got != n {
		b.Fatalf("insert: %d, %v", got, err)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := d.Connections()
		if err != nil || len(got) != n {
			b.Fatalf("connections: %d, %v", len(got), err)
		}
	}
}
