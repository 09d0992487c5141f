package connsync

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync/proto"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/netnstest"
)

// fakeDP serves a fixed connection list and records insertions.
type fakeDP struct {
	mu       sync.Mutex
	conns    []dataplane.Conn
	inserted map[flowKey]dataplane.Conn
	// dumpLearnt makes Connections return the inserted ones too, as the
	// data plane's table holds them.
	dumpLearnt bool
}

func newFakeDP(conns ...dataplane.Conn) *fakeDP {
	return &fakeDP{conns: conns, inserted: map[flowKey]dataplane.Conn{}}
}

func (f *fakeDP) Connections() ([]dataplane.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]dataplane.Conn(nil), f.conns...)
	if f.dumpLearnt {
		for _, c := range f.inserted {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeDP) InsertConnections(cs []dataplane.Conn) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range cs {
		k := keyOf(c)
		// An entry the director made itself wins, as in the data plane.
		if slices.ContainsFunc(f.conns, func(o dataplane.Conn) bool { return keyOf(o) == k }) {
			continue
		}
		if _, ok := f.inserted[k]; !ok {
			n++
		}
		f.inserted[k] = c
	}
	return n, nil
}

func (f *fakeDP) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.inserted)
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPrivilegedSyncBetweenNamespaces(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, group := range []string{"224.0.0.81", "ff02::81"} {
		t.Run(group, func(t *testing.T) { testSync(t, netip.MustParseAddr(group), nil) })
	}
	t.Run("224.0.0.81 with a shared key", func(t *testing.T) {
		testSync(t, netip.MustParseAddr("224.0.0.81"), []byte("the pair's shared sync key"))
	})
}

// testSync runs a master and backups (with key, all sharing it) and, with
// a key, an impostor on the master's host whose key differs: nothing it
// sends is inserted, and every message of it is counted unauthenticated.
func testSync(t *testing.T, group netip.Addr, key []byte) {
	a, b := netnstest.NewNS(t, "sync-a"), netnstest.NewNS(t, "sync-b")
	netnstest.Veth(t, a, "eth0", b, "eth0")
	a.Addr("eth0", "198.18.5.1/24")
	b.Addr("eth0", "198.18.5.2/24")
	if group.Is6() {
		// A link-local source address without waiting for DAD.
		a.MustRun("ip", "addr", "add", "fe80::5:1/64", "dev", "eth0", "nodad")
		b.MustRun("ip", "addr", "add", "fe80::5:2/64", "dev", "eth0", "nodad")
	}
	const n = 300 // more than one message of 1472 bytes
	now := time.Now()
	var conns []dataplane.Conn
	for i := range n {
		conns = append(conns, dataplane.Conn{Protocol: dataplane.TCP,
			Client: netip.AddrPortFrom(netip.MustParseAddr("198.19.0.1"), uint16(1000+i)),
			VIP:    netip.MustParseAddrPort("203.0.113.1:80"), Real: netip.MustParseAddr("198.18.0.11"), LastSeen: now})
	}
	dpA, dpB, dpOther, dpLate := newFakeDP(conns...), newFakeDP(), newFakeDP(), newFakeDP()
	var aMaster, bMaster atomic.Bool
	aMaster.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := func(ns *netnstest.NS, id uint8, master *atomic.Bool, dp DataPlane) *Daemon {
		t.Helper()
		var d *Daemon
		err := ns.Do(func() error {
			var err error
			d, err = Start(ctx, Config{Interface: "eth0", SyncID: id, MaxLen: 1472, Group: group, Port: 8848, TTL: 1,
				IsMaster: master.Load, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Key: key}, dp)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return d
	}
	var never atomic.Bool
	// Listening before the master's first messages, which go out at once.
	so := start(b, 52, &never, dpOther)
	sb := start(b, 51, &bMaster, dpB)
	sa := start(a, 51, &aMaster, dpA)

	waitFor(t, "the backup to learn every connection", 3*time.Second, func() bool { return dpB.count() == n })
	if st := sa.Stats(); st.MessagesSent < 2 || st.MessagesReceived != st.RequestsReceived {
		t.Fatalf("master stats %+v: want at least 2 messages sent, none received but dump requests (loopback off)", st)
	}
	if st := sb.Stats(); st.Inserted != n || st.EntriesReceived < n {
		t.Fatalf("backup stats %+v", st)
	}
	got := dpB.inserted[keyOf(conns[7])]
	if got.Real != conns[7].Real || got.LastSeen.Sub(now).Abs() > time.Second {
		t.Fatalf("backup learnt %+v, want %+v", got, conns[7])
	}
	waitFor(t, "the daemon with another sync id to refuse messages", 3*time.Second, func() bool { return so.Stats().Rejected > 0 })
	if dpOther.count() != 0 {
		t.Fatalf("daemon with another sync id inserted %d, rejected %d", dpOther.count(), so.Stats().Rejected)
	}

	if key != nil {
		evil := newFakeDP(dataplane.Conn{Protocol: dataplane.TCP, Client: netip.MustParseAddrPort("198.19.6.6:6666"),
			VIP: netip.MustParseAddrPort("203.0.113.1:80"), Real: netip.MustParseAddr("198.18.0.99"), LastSeen: now})
		var always atomic.Bool
		always.Store(true)
		var impostor *Daemon
		if err := a.Do(func() (err error) {
			impostor, err = Start(ctx, Config{Interface: "eth0", SyncID: 51, MaxLen: 1472, Group: group, Port: 8848, TTL: 1,
				IsMaster: always.Load, Key: []byte("a key the pair does not share")}, evil)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the impostor's messages to be refused", 3*time.Second, func() bool { return sb.Stats().Unauthenticated > 0 })
		impostor.Close()
		if dpB.count() != n {
			t.Fatalf("the backup holds %d connections, want %d: the impostor's were inserted", dpB.count(), n)
		}
		if st := impostor.Stats(); st.MessagesSent == 0 {
			t.Fatalf("impostor sent nothing: %+v", st)
		}
	}

	// A director that starts late asks for a dump, learns the flows from
	// it, and knows when it has them all: the marker answering its request.
	late := start(b, 51, &never, dpLate)
	waitFor(t, "a late starter to have every connection", 5*time.Second, late.Complete)
	if got := dpLate.count(); got != n {
		t.Fatalf("complete with %d of %d connections", got, n)
	}
	if st := sa.Stats(); st.MarkersSent == 0 || st.Dumps == 0 {
		t.Fatalf("master sent no dump and caught-up marker: %+v", st)
	}
	if st := late.Stats(); st.RequestsSent == 0 || st.MarkersReceived == 0 {
		t.Fatalf("late starter: %+v, want a request sent and a marker received", st)
	}

	// Failover: the old backup sends, the old master listens.
	dpB.mu.Lock()
	dpB.conns = []dataplane.Conn{{Protocol: dataplane.UDP, Client: netip.MustParseAddrPort("198.19.9.9:53"),
		VIP: netip.MustParseAddrPort("203.0.113.1:53"), Real: netip.MustParseAddr("198.18.0.12"), LastSeen: now}}
	dpB.mu.Unlock()
	aMaster.Store(false)
	bMaster.Store(true)
	waitFor(t, "the old master to learn from the new one", 3*time.Second, func() bool { return dpA.count() == 1 })
}

func TestStartRejectsBadConfig(t *testing.T) {
	isMaster := func() bool { return false }
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"maxlen", Config{Interface: "lo", MaxLen: 20, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1, IsMaster: isMaster}},
		{"group", Config{Interface: "lo", MaxLen: 1472, Group: netip.MustParseAddr("198.18.0.1"), Port: 8848, TTL: 1, IsMaster: isMaster}},
		{"no IsMaster", Config{Interface: "lo", MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1}},
		{"interface", Config{Interface: "govs-none0", MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1, IsMaster: isMaster}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d, err := Start(context.Background(), tc.cfg, newFakeDP()); err == nil {
				d.Close()
				t.Fatal("Start accepted a bad configuration")
			}
		})
	}
}

// TestAcceptRules: with a shared key, a message sealed with it is taken
// once; the same message again, one outside the replay window, one sealed
// with another key and an unauthenticated one are refused and counted; a
// MASTER takes nothing.
func TestAcceptRules(t *testing.T) {
	key := []byte("the pair's shared sync key")
	now := time.Unix(1796140800, 0)
	var master atomic.Bool
	d := &Daemon{cfg: Config{SyncID: 51, Key: key, IsMaster: master.Load, Clock: func() time.Time { return now }},
		log: slog.New(slog.DiscardHandler), lastSeen: map[netip.Addr]time.Time{}}
	src := netip.MustParseAddr("198.18.5.1")
	conns := []proto.Conn{{Protocol: proto.TCP, Client: netip.MustParseAddrPort("198.19.0.1:1000"),
		VIP: netip.MustParseAddrPort("203.0.113.1:80"), Real: netip.MustParseAddr("198.18.0.11")}}
	seal := func(k []byte, at time.Time) []byte {
		t.Helper()
		msgs, err := proto.EncodeAuth(51, conns, 1472, k, func() time.Time { return at })
		if err != nil {
			t.Fatal(err)
		}
		return msgs[0]
	}
	plain, err := proto.Encode(51, conns, 1472)
	if err != nil {
		t.Fatal(err)
	}
	good := seal(key, now.Add(-time.Second))
	for _, tc := range []struct {
		name   string
		msg    []byte
		master bool
		ok     bool
	}{
		{"sealed with the key", good, false, true},
		{"the same message again", good, false, false},
		{"older than the last one", seal(key, now.Add(-2*time.Second)), false, false},
		{"outside the replay window", seal(key, now.Add(ReplayWindow+time.Second)), false, false},
		{"sealed with another key", seal([]byte("another key"), now), false, false},
		{"not authenticated", plain[0], false, false},
		{"while MASTER", seal(key, now.Add(time.Second)), true, false},
		{"a later one", seal(key, now.Add(2*time.Second)), false, true},
	} {
		master.Store(tc.master)
		if _, ok := d.accept(tc.msg, src); ok != tc.ok {
			t.Errorf("%s: accepted %v, want %v", tc.name, ok, tc.ok)
		}
	}
	if st := d.Stats(); st.Replayed != 3 || st.Unauthenticated != 2 || st.WhileMaster != 1 {
		t.Errorf("stats %+v, want 3 replayed, 2 unauthenticated, 1 while master", st)
	}
}

// eventDP is a fakeDP whose program records new connections.
type eventDP struct {
	*fakeDP
	ev *fakeEvents
}

func (e eventDP) ConnEvents() (dataplane.ConnEventReader, error) { return e.ev, nil }

type fakeEvents struct {
	ch   chan dataplane.Conn
	done chan struct{}
	once sync.Once
}

func (f *fakeEvents) Read() (dataplane.Conn, error) {
	select {
	case c := <-f.ch:
		return c, nil
	case <-f.done:
		return dataplane.Conn{}, os.ErrClosed
	}
}
func (f *fakeEvents) Lost() uint64 { return 0 }
func (f *fakeEvents) Close() error { f.once.Do(func() { close(f.done) }); return nil }

// TestPrivilegedNewConnectionsSentAsMade: with a data plane that records
// its new connections, the master sends them as they come, without
// scanning its table (the scan interval is an hour here): the backup
// learns 500 connections made after it started, and the master scanned
// only when it became MASTER and for the backup's dump request.
func TestPrivilegedNewConnectionsSentAsMade(t *testing.T) {
	netnstest.RequireRoot(t)
	a, b := netnstest.NewNS(t, "sync-a"), netnstest.NewNS(t, "sync-b")
	netnstest.Veth(t, a, "eth0", b, "eth0")
	a.Addr("eth0", "198.18.5.1/24")
	b.Addr("eth0", "198.18.5.2/24")
	ev := &fakeEvents{ch: make(chan dataplane.Conn), done: make(chan struct{})}
	dpA, dpB := eventDP{newFakeDP(), ev}, newFakeDP()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var d [2]*Daemon
	for i, side := range []struct {
		ns     *netnstest.NS
		master bool
		dp     DataPlane
	}{{a, true, dpA}, {b, false, dpB}} {
		if err := side.ns.Do(func() (err error) {
			d[i], err = Start(ctx, Config{Interface: "eth0", SyncID: 51, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"), Port: 8848, TTL: 1,
				IsMaster: func() bool { return side.master }, ScanInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, side.dp)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d[i].Close)
	}
	waitFor(t, "the backup's dump request to be answered", 5*time.Second, d[1].Complete)
	const n = 500
	now := time.Now()
	for i := range n {
		c := dataplane.Conn{Protocol: dataplane.TCP, Client: netip.AddrPortFrom(netip.MustParseAddr("198.19.0.1"), uint16(1000+i)),
			VIP: netip.MustParseAddrPort("203.0.113.1:80"), Real: netip.MustParseAddr("198.18.0.11"), LastSeen: now}
		dpA.mu.Lock()
		dpA.conns = append(dpA.conns, c)
		dpA.mu.Unlock()
		ev.ch <- c
	}
	waitFor(t, "the backup to learn every new connection", 5*time.Second, func() bool { return dpB.count() == n })
	st := d[0].Stats()
	if st.Events != n || st.Scans > 2 || st.Dumps != 1 {
		t.Fatalf("master stats %+v: want %d events read, at most 2 scans (becoming MASTER, one dump)", st, n)
	}
}

// TestPrivilegedMeshSync: three active directors on one LAN (govs_bgp's
// connection_sync) each learn the other two's connections, ignore none
// of them as a MASTER would, and a fourth that joins later asks for a dump
// only once its data plane is ready, gets every connection of the group in
// one peer's dump (a peer's table holds what it learnt too) and knows it
// is complete.
func TestPrivilegedMeshSync(t *testing.T) {
	netnstest.RequireRoot(t)
	lan := netnstest.NewNS(t, "mesh-lan")
	lan.Bridge("br0")
	const perDirector = 200
	now := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type director struct {
		dp *fakeDP
		d  *Daemon
	}
	var ds []director
	start := func(i int, conns []dataplane.Conn, ready func() bool) director {
		t.Helper()
		ns := netnstest.NewNS(t, "mesh-d")
		lan.Join(ns, "p"+string(rune('0'+i)), netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 6, byte(1 + i)}), 24).String())
		dp := newFakeDP(conns...)
		dp.dumpLearnt = true
		var d *Daemon
		if err := ns.Do(func() (err error) {
			d, err = Start(ctx, Config{Interface: "eth0", SyncID: 7, MaxLen: 1472, Group: netip.MustParseAddr("224.0.0.81"),
				Port: 8848, TTL: 1, Mesh: true, Ready: ready, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, dp)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		return director{dp, d}
	}
	for i := range 3 {
		var conns []dataplane.Conn
		for j := range perDirector {
			conns = append(conns, dataplane.Conn{Protocol: dataplane.TCP,
				Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 1}), uint16(1000+j)),
				VIP:    netip.MustParseAddrPort("198.18.0.100:80"), Real: netip.MustParseAddr("198.18.0.11"), LastSeen: now})
		}
		ds = append(ds, start(i, conns, nil))
	}
	for i, d := range ds {
		waitFor(t, "every director to learn the other two's connections", 5*time.Second, func() bool {
			return d.dp.count() == 2*perDirector
		})
		if st := d.d.Stats(); st.WhileMaster != 0 || st.MessagesSent == 0 {
			t.Fatalf("director %d: %+v", i, st)
		}
	}
	// Its data plane is not ready (real servers unresolved: a dump's
	// entries would be skipped): it does not ask yet.
	var ready atomic.Bool
	late := start(3, nil, ready.Load)
	time.Sleep(5 * DefaultInterval)
	if st := late.d.Stats(); st.RequestsSent != 0 || late.d.Complete() {
		t.Fatalf("asked for a dump before its data plane was ready: %+v", st)
	}
	ready.Store(true)
	waitFor(t, "the late director's request to be answered", 5*time.Second, late.d.Complete)
	if got := late.dp.count(); got != 3*perDirector {
		t.Fatalf("the late director is complete with %d of %d connections", got, 3*perDirector)
	}
}
