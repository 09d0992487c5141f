package connsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/govs/govs/internal/connsync/proto"
	"github.com/govs/govs/internal/dataplane"
)

// DataPlane is what the daemon needs of the data plane.
type DataPlane interface {
	Connections() ([]dataplane.Conn, error)
	InsertConnections([]dataplane.Conn) (int, error)
}

// Defaults for the zero values of Config.
const (
	DefaultInterval    = 200 * time.Millisecond
	DefaultFullRefresh = 5 * time.Second
	DefaultMaxPerRound = 4096
	// refreshAfter is above the jitter of reading a last-seen time and
	// below the program's refresh step (one second).
	refreshAfter = 500 * time.Millisecond
	// markerEvery is how often a caught-up sender says so.
	markerEvery = time.Second
)

// Config configures a Daemon; it mirrors keepalived's lvs_sync_daemon.
type Config struct {
	Interface string
	SyncID    uint8
	MaxLen    int
	Group     netip.Addr
	Port      uint16
	TTL       int
	// IsMaster reports whether this director is MASTER of the sync
	// instance; only then does it send.
	IsMaster func() bool
	// Interval between send rounds (DefaultInterval); FullRefresh is how
	// often every connection is sent again (DefaultFullRefresh);
	// MaxPerRound bounds the connections one round sends.
	Interval, FullRefresh time.Duration
	MaxPerRound           int
	Logger                *slog.Logger
	// Key, when set, authenticates every message (HMAC-SHA256, govs's
	// govs_sync_key): unauthenticated ones, forged ones and replays are
	// dropped. keepalived's sync daemon has no authentication.
	Key []byte
	// Clock is the wall clock authenticated messages are stamped with and
	// checked against (time.Now when nil).
	Clock func() time.Time
}

// ReplayWindow is how far an authenticated message's sending time may be
// from the receiver's clock; within it, a sender's messages must come with
// growing sending times. The directors' clocks must agree to within it
// (NTP).
const ReplayWindow = 30 * time.Second

// Stats counts what a daemon did.
type Stats struct {
	MessagesSent, EntriesSent         uint64
	MessagesReceived, EntriesReceived uint64
	Inserted                          uint64
	// Rejected counts messages dropped: malformed, another sync id, from
	// another interface or from this director, received while MASTER, not
	// authenticated, or replayed.
	Rejected uint64
	// Of those: WhileMaster were received while this director was MASTER
	// (a master keeps its own decisions), Unauthenticated failed the
	// shared key, Replayed came again or outside ReplayWindow.
	WhileMaster, Unauthenticated, Replayed uint64
	// MarkersSent and MarkersReceived count caught-up markers (received
	// ones are also in MessagesReceived).
	MarkersSent, MarkersReceived uint64
}

// Daemon sends and receives connection sync messages.
type Daemon struct {
	cfg   Config
	dp    DataPlane
	log   *slog.Logger
	conn  mcastConn
	own   map[netip.Addr]bool
	stats struct {
		msgSent, entSent, msgRecv, entRecv, inserted, rejected atomic.Uint64
		whileMaster, unauthenticated, replayed                 atomic.Uint64
		markersSent, markersRecv                               atomic.Uint64
	}
	// lastSent is the sending time of the last authenticated message
	// (sender goroutine only); lastSeen the latest accepted one per sender
	// (receiver goroutine only; only authenticated senders get an entry).
	lastSent time.Time
	lastSeen map[netip.Addr]time.Time
	// lastMarker is when the sender last sent a caught-up marker; since is
	// when the receiver started; complete is set once a marker came at
	// least FullRefresh after that (Complete).
	lastMarker time.Time
	since      time.Time
	complete   atomic.Bool
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// Start opens the multicast socket on cfg.Interface (the calling thread's
// network namespace) and starts sending and receiving until Close or ctx
// ends.
func Start(ctx context.Context, cfg Config, dp DataPlane) (*Daemon, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FullRefresh <= 0 {
		cfg.FullRefresh = DefaultFullRefresh
	}
	if cfg.MaxPerRound <= 0 {
		cfg.MaxPerRound = DefaultMaxPerRound
	}
	if cfg.IsMaster == nil {
		return nil, errors.New("start connection sync: no IsMaster")
	}
	least := proto.MinMaxLen
	if len(cfg.Key) > 0 {
		least += 24
	}
	if cfg.MaxLen < least {
		return nil, fmt.Errorf("start connection sync: maxlen %d is below %d bytes (a header and one IPv6 entry)", cfg.MaxLen, least)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if !cfg.Group.IsMulticast() {
		return nil, fmt.Errorf("start connection sync: group %s is not multicast", cfg.Group)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("start connection sync: %w", err)
	}
	// Our own packets do not come back (loopback is off), but another
	// process of this host might send with our id; the addresses are
	// read once, as the sync interface's address does not move.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("start connection sync: list addresses: %w", err)
	}
	own := map[netip.Addr]bool{}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			own[p.Addr()] = true
		}
	}
	mc, err := listen(ifi, cfg.Group, cfg.Port, cfg.TTL)
	if err != nil {
		return nil, fmt.Errorf("start connection sync on %s: %w", cfg.Interface, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &Daemon{cfg: cfg, dp: dp, log: log.With("component", "connsync"), conn: mc, own: own, cancel: cancel, lastSeen: map[netip.Addr]time.Time{}, since: time.Now()}
	d.wg.Add(2)
	go func() { defer d.wg.Done(); d.receive() }()
	go func() { defer d.wg.Done(); d.send(ctx) }()
	go func() { <-ctx.Done(); mc.Close() }()
	d.log.Info("connection sync started", "interface", cfg.Interface, "group", cfg.Group, "port", cfg.Port, "sync_id", cfg.SyncID, "authenticated", len(cfg.Key) > 0)
	return d, nil
}

// Close stops the daemon and waits for it.
func (d *Daemon) Close() {
	d.cancel()
	d.wg.Wait()
}

// Stats returns the counters.
func (d *Daemon) Stats() Stats {
	return Stats{
		MessagesSent: d.stats.msgSent.Load(), EntriesSent: d.stats.entSent.Load(),
		MessagesReceived: d.stats.msgRecv.Load(), EntriesReceived: d.stats.entRecv.Load(),
		Inserted: d.stats.inserted.Load(), Rejected: d.stats.rejected.Load(),
		WhileMaster: d.stats.whileMaster.Load(), Unauthenticated: d.stats.unauthenticated.Load(), Replayed: d.stats.replayed.Load(),
		MarkersSent: d.stats.markersSent.Load(), MarkersReceived: d.stats.markersRecv.Load(),
	}
}

// Complete reports whether this director holds every connection of the
// master: a caught-up marker arrived after it had listened for a full
// refresh period. It stays true. The director holds VRRP preemption until
// it is (or a bounded wait has passed).
func (d *Daemon) Complete() bool { return d.complete.Load() }

func (d *Daemon) send(ctx context.Context) {
	tr := newTracker(refreshAfter, d.cfg.FullRefresh)
	t := time.NewTimer(d.cfg.Interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.cfg.IsMaster() {
			// A new MASTER sends everything it has at once.
			tr.reset()
			t.Reset(d.cfg.Interval)
			continue
		}
		start := time.Now()
		err := d.round(tr)
		// Reading a big table costs CPU: a round may take at most a fifth
		// of the time.
		t.Reset(max(d.cfg.Interval, 4*time.Since(start)))
		switch {
		case err != nil && err.Error() != lastErr:
			d.log.Warn("connection sync round", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
}

func (d *Daemon) round(tr *tracker) error {
	conns, err := d.dp.Connections()
	if err != nil {
		return err
	}
	// Embryonic flows are not sent: a SYN flood would become a sync flood,
	// and a client whose handshake moves director just retransmits.
	conns = slices.DeleteFunc(conns, func(c dataplane.Conn) bool { return c.Embryonic })
	now := time.Now()
	due, all := tr.dueAll(conns, now, d.cfg.MaxPerRound)
	if all && now.Sub(d.lastMarker) >= markerEvery {
		// Every connection went out within FullRefresh: a director that
		// has listened that long has them all (Complete).
		defer func() {
			if err := d.conn.Write(proto.EncodeMarker(d.cfg.SyncID, d.cfg.Key, d.nextSent)); err == nil {
				d.lastMarker = now
				d.stats.markersSent.Add(1)
			}
		}()
	}
	if len(due) == 0 {
		return nil
	}
	wire := make([]proto.Conn, 0, len(due))
	for _, c := range due {
		pc := proto.Conn{Protocol: uint8(c.Protocol), Client: c.Client, VIP: c.VIP, Real: c.Real,
			Idle: max(now.Sub(c.LastSeen), 0), Closing: c.Closing}
		if pc.Validate() == nil {
			wire = append(wire, pc)
		}
	}
	var msgs [][]byte
	if len(d.cfg.Key) > 0 {
		msgs, err = proto.EncodeAuth(d.cfg.SyncID, wire, d.cfg.MaxLen, d.cfg.Key, d.nextSent)
	} else {
		msgs, err = proto.Encode(d.cfg.SyncID, wire, d.cfg.MaxLen)
	}
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := d.conn.Write(m); err != nil {
			return fmt.Errorf("send sync message: %w", err)
		}
		d.stats.msgSent.Add(1)
	}
	d.stats.entSent.Add(uint64(len(wire)))
	return nil
}

func (d *Daemon) receive() {
	buf := make([]byte, 65536)
	for {
		n, ifindex, src, err := d.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Warn("receive sync message", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if ifindex != d.conn.Ifindex() || d.own[src] {
			d.stats.rejected.Add(1)
			continue
		}
		m, ok := d.accept(buf[:n], src)
		if !ok {
			d.stats.rejected.Add(1)
			continue
		}
		d.stats.msgRecv.Add(1)
		now := time.Now()
		if m.CaughtUp {
			d.stats.markersRecv.Add(1)
			if now.Sub(d.since) >= d.cfg.FullRefresh && !d.complete.Swap(true) {
				d.log.Info("connection sync: the master's connections have all arrived", "from", src, "after", now.Sub(d.since).Round(time.Millisecond))
			}
			continue
		}
		d.stats.entRecv.Add(uint64(len(m.Conns)))
		conns := make([]dataplane.Conn, len(m.Conns))
		for i, c := range m.Conns {
			conns[i] = dataplane.Conn{Protocol: dataplane.Protocol(c.Protocol), Client: c.Client, VIP: c.VIP, Real: c.Real,
				LastSeen: now.Add(-c.Idle), Closing: c.Closing}
		}
		ins, err := d.dp.InsertConnections(conns)
		d.stats.inserted.Add(uint64(ins))
		if err != nil {
			d.log.Warn("insert synced connections", "from", src, "err", err)
		}
	}
}

// nextSent is the sending time of the next authenticated message: the
// clock, but always after the previous one, so that receivers can tell a
// replay by its time.
func (d *Daemon) nextSent() time.Time {
	t := d.cfg.Clock()
	if !t.After(d.lastSent) {
		t = d.lastSent.Add(time.Nanosecond)
	}
	d.lastSent = t
	return t
}

// accept decodes a received message and applies the rules that keep a
// forged or stray one from changing the table: the sync id, the shared
// key and the replay window, and no sync into a MASTER.
func (d *Daemon) accept(b []byte, src netip.Addr) (proto.Message, bool) {
	if d.cfg.IsMaster() {
		d.stats.whileMaster.Add(1)
		return proto.Message{}, false
	}
	var (
		m   proto.Message
		err error
	)
	if len(d.cfg.Key) > 0 {
		m, err = proto.DecodeAuth(b, d.cfg.Key)
	} else {
		m, err = proto.Decode(b)
	}
	if errors.Is(err, proto.ErrAuth) {
		d.stats.unauthenticated.Add(1)
		d.log.Debug("unauthenticated sync message", "from", src, "err", err)
		return m, false
	}
	if err != nil || m.SyncID != d.cfg.SyncID {
		if err != nil {
			d.log.Debug("bad sync message", "from", src, "err", err)
		}
		return m, false
	}
	if len(d.cfg.Key) > 0 {
		now := d.cfg.Clock()
		if m.Sent.Sub(now).Abs() > ReplayWindow || !m.Sent.After(d.lastSeen[src]) {
			d.stats.replayed.Add(1)
			d.log.Debug("replayed or stale sync message", "from", src, "sent", m.Sent)
			return m, false
		}
		d.lastSeen[src] = m.Sent
	}
	return m, true
}

// mcastConn is a multicast UDP socket joined on one interface.
type mcastConn interface {
	Read(b []byte) (n, ifindex int, src netip.Addr, err error)
	Write(b []byte) error
	Ifindex() int
	Close() error
}

func listen(ifi *net.Interface, group netip.Addr, port uint16, ttl int) (mcastConn, error) {
	dst := &net.UDPAddr{IP: group.AsSlice(), Port: int(port)}
	if group.Is4() {
		c, err := net.ListenPacket("udp4", net.JoinHostPort(group.String(), strconv.Itoa(int(port))))
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		p := ipv4.NewPacketConn(c)
		for _, step := range []func() error{
			func() error { return p.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}) },
			func() error { return p.SetControlMessage(ipv4.FlagInterface|ipv4.FlagSrc, true) },
			func() error { return p.SetMulticastInterface(ifi) },
			func() error { return p.SetMulticastTTL(ttl) },
			func() error { return p.SetMulticastLoopback(false) },
		} {
			if err := step(); err != nil {
				c.Close()
				return nil, fmt.Errorf("set up multicast socket: %w", err)
			}
		}
		return &conn4{p: p, ifindex: ifi.Index, dst: dst}, nil
	}
	if group.IsLinkLocalMulticast() || group.IsInterfaceLocalMulticast() {
		// By index: a name would be resolved in the namespace of whichever
		// thread sends.
		dst.Zone = strconv.Itoa(ifi.Index)
	}
	c, err := net.ListenPacket("udp6", net.JoinHostPort(group.String(), strconv.Itoa(int(port))))
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := ipv6.NewPacketConn(c)
	for _, step := range []func() error{
		func() error { return p.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}) },
		func() error { return p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagSrc, true) },
		func() error { return p.SetMulticastInterface(ifi) },
		func() error { return p.SetMulticastHopLimit(ttl) },
		func() error { return p.SetMulticastLoopback(false) },
	} {
		if err := step(); err != nil {
			c.Close()
			return nil, fmt.Errorf("set up multicast socket: %w", err)
		}
	}
	return &conn6{p: p, ifindex: ifi.Index, dst: dst}, nil
}

type conn4 struct {
	p       *ipv4.PacketConn
	ifindex int
	dst     *net.UDPAddr
}

func (c *conn4) Read(b []byte) (int, int, netip.Addr, error) {
	n, cm, src, err := c.p.ReadFrom(b)
	if err != nil {
		return 0, 0, netip.Addr{}, err
	}
	ifindex := 0
	if cm != nil {
		ifindex = cm.IfIndex
	}
	return n, ifindex, addrOf(src), nil
}

func (c *conn4) Write(b []byte) error { _, err := c.p.WriteTo(b, nil, c.dst); return err }
func (c *conn4) Ifindex() int         { return c.ifindex }
func (c *conn4) Close() error         { return c.p.Close() }

type conn6 struct {
	p       *ipv6.PacketConn
	ifindex int
	dst     *net.UDPAddr
}

func (c *conn6) Read(b []byte) (int, int, netip.Addr, error) {
	n, cm, src, err := c.p.ReadFrom(b)
	if err != nil {
		return 0, 0, netip.Addr{}, err
	}
	ifindex := 0
	if cm != nil {
		ifindex = cm.IfIndex
	}
	return n, ifindex, addrOf(src), nil
}

func (c *conn6) Write(b []byte) error { _, err := c.p.WriteTo(b, nil, c.dst); return err }
func (c *conn6) Ifindex() int         { return c.ifindex }
func (c *conn6) Close() error         { return c.p.Close() }

func addrOf(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		if ap, ok := netip.AddrFromSlice(u.IP); ok {
			return ap.Unmap()
		}
	}
	return netip.Addr{}
}
