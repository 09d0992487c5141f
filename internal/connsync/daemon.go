package connsync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

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
	DefaultInterval          = 100 * time.Millisecond
	DefaultScanInterval      = 30 * time.Second
	DefaultRefreshEvery      = 30 * time.Second
	DefaultMessagesPerSecond = 5000
	// refreshAfter is above the jitter of reading a last-seen time and
	// below the program's refresh step (one second).
	refreshAfter = 500 * time.Millisecond
	// requestFirst is how long a director that lacks the master's
	// connections waits for an answer before it asks again, doubling up
	// to requestMax; while messages keep coming (a dump of a big table
	// takes seconds to insert, and a second request meanwhile would only
	// start a second dump) it waits for requestFirst of silence or
	// requestMax, whichever is first. dumpEvery
	// is how often a master dumps its table at most (requests meanwhile
	// wait for the next dump).
	requestFirst = time.Second
	requestMax   = 16 * time.Second
	dumpEvery    = time.Second
	// maxPending bounds the program's records waiting for the next send;
	// beyond it they are dropped and the next scan sends them.
	maxPending = 1 << 18
	// receiveBuffer is the socket buffer a receiver asks for: a dump of
	// 100,000 connections is about 1,700 messages, which arrive faster
	// than they are inserted.
	receiveBuffer = 16 << 20
)

// EventSource is implemented by a data plane that records the connection
// entries its program makes (dataplane.Dataplane.ConnEvents): then the
// sender sends new connections as they are made and scans the table only
// every ScanInterval. Without it, the sender scans every Interval.
type EventSource interface {
	ConnEvents() (dataplane.ConnEventReader, error)
}

// ReadyWait bounds how long a dump request waits for Config.Ready: a real
// server that never resolves must not keep a director from asking for the
// others' connections.
const ReadyWait = 10 * time.Second

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
	// Mesh syncs a group of active directors (govs_bgp's connection_sync,
	// behind a router's ECMP) instead of a VRRP pair: every director
	// sends its connections and takes the others', an entry it made
	// itself winning over a learnt one; a director asks for a dump when
	// it starts and every peer answers. IsMaster is not used.
	Mesh bool
	// Ready reports whether the data plane can take the connections a dump
	// brings (its services programmed and their real servers resolved:
	// entries for a real it does not hold yet are skipped). The dump
	// request waits for it, at most ReadyWait; nil: ready at once.
	Ready func() bool
	// Interval between sends of new connections (DefaultInterval);
	// ScanInterval between scans of the whole table, which find what the
	// program's records missed and connections that carried traffic
	// (DefaultScanInterval); RefreshEvery is how often a busy connection
	// is sent again at most (DefaultRefreshEvery). It must stay well below
	// the shortest connection timeout, or a receiver times out connections
	// that are busy on the master.
	Interval, ScanInterval, RefreshEvery time.Duration
	// MessagesPerSecond paces the sender (DefaultMessagesPerSecond, about
	// 300,000 IPv4 connections a second at 1472 bytes a message), so a
	// dump does not overrun the receivers' socket buffers.
	MessagesPerSecond int
	Logger            *slog.Logger
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
	// MarkersSent and MarkersReceived count caught-up markers,
	// RequestsSent and RequestsReceived dump requests (received ones are
	// also in MessagesReceived); Dumps the dumps of the whole table sent.
	MarkersSent, MarkersReceived   uint64
	RequestsSent, RequestsReceived uint64
	Dumps                          uint64
	// Scans counts the table scans; Events the program's records read and
	// EventsLost those it could not make (the ring was full) or that
	// waited beyond the pending limit: scans send those.
	Scans, Events, EventsLost uint64
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
		markersSent, markersRecv, requestsSent, requestsRecv   atomic.Uint64
		dumps, scans, events, eventsDropped                    atomic.Uint64
	}
	// events reads the program's records (nil without an EventSource).
	events dataplane.ConnEventReader
	// pending holds records read and not sent yet; requests the nonces of
	// dump requests to answer. pendingMu guards both; wake is signalled
	// when requests arrive.
	pendingMu sync.Mutex
	pending   []dataplane.Conn
	requests  []uint32
	wake      chan struct{}
	limiter   *rate.Limiter
	// nonce is this daemon's dump-request nonce.
	nonce uint32
	// lastSent is the sending time of the last authenticated message
	// (sender goroutine only); lastSeen the latest accepted one per sender
	// (receiver goroutine only; only authenticated senders get an entry).
	lastSent time.Time
	lastSeen map[netip.Addr]time.Time
	// since is when the daemon started; complete is set once a marker
	// answered this daemon's dump request (Complete); lastRecv is when a
	// message was last accepted (Unix nanoseconds).
	since    time.Time
	complete atomic.Bool
	lastRecv atomic.Int64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Start opens the multicast socket on cfg.Interface (the calling thread's
// network namespace) and starts sending and receiving until Close or ctx
// ends.
func Start(ctx context.Context, cfg Config, dp DataPlane) (*Daemon, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = DefaultScanInterval
	}
	if cfg.RefreshEvery <= 0 {
		cfg.RefreshEvery = DefaultRefreshEvery
	}
	if cfg.MessagesPerSecond <= 0 {
		cfg.MessagesPerSecond = DefaultMessagesPerSecond
	}
	if cfg.Mesh {
		cfg.IsMaster = func() bool { return true }
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
	var events dataplane.ConnEventReader
	if es, ok := dp.(EventSource); ok {
		if events, err = es.ConnEvents(); err != nil {
			mc.Close()
			return nil, fmt.Errorf("start connection sync: %w", err)
		}
	}
	var nonce [4]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		mc.Close()
		return nil, fmt.Errorf("start connection sync: nonce: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &Daemon{cfg: cfg, dp: dp, log: log.With("component", "connsync"), conn: mc, own: own, cancel: cancel,
		lastSeen: map[netip.Addr]time.Time{}, since: time.Now(), events: events, wake: make(chan struct{}, 1),
		limiter: rate.NewLimiter(rate.Limit(cfg.MessagesPerSecond), 64), nonce: binary.BigEndian.Uint32(nonce[:])}
	d.wg.Add(2)
	go func() { defer d.wg.Done(); d.receive() }()
	go func() { defer d.wg.Done(); d.send(ctx) }()
	if events != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.collect() }()
	}
	go func() {
		<-ctx.Done()
		mc.Close()
		if events != nil {
			events.Close()
		}
	}()
	d.log.Info("connection sync started", "interface", cfg.Interface, "group", cfg.Group, "port", cfg.Port, "sync_id", cfg.SyncID,
		"authenticated", len(cfg.Key) > 0, "new_connections", map[bool]string{true: "as the program makes them", false: "by table scans"}[events != nil])
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
		RequestsSent: d.stats.requestsSent.Load(), RequestsReceived: d.stats.requestsRecv.Load(),
		Dumps: d.stats.dumps.Load(), Scans: d.stats.scans.Load(), Events: d.stats.events.Load(),
		EventsLost: d.stats.eventsDropped.Load() + d.eventsLost(),
	}
}

func (d *Daemon) eventsLost() uint64 {
	if d.events == nil {
		return 0
	}
	return d.events.Lost()
}

// Complete reports whether this director holds every connection of the
// master: a caught-up marker answered its dump request. It stays true.
// The director holds VRRP preemption until it is (or a bounded wait has
// passed).
func (d *Daemon) Complete() bool { return d.complete.Load() }

// collect reads the program's records into pending until the reader is
// closed.
func (d *Daemon) collect() {
	for {
		c, err := d.events.Read()
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				d.log.Warn("connection sync: reading new connections stopped; table scans send them", "err", err)
			}
			return
		}
		d.stats.events.Add(1)
		if c.Embryonic {
			continue
		}
		d.pendingMu.Lock()
		if len(d.pending) < maxPending {
			d.pending = append(d.pending, c)
		} else {
			d.stats.eventsDropped.Add(1)
		}
		d.pendingMu.Unlock()
	}
}

// takePending returns the records and dump requests waiting.
func (d *Daemon) takePending() ([]dataplane.Conn, []uint32) {
	d.pendingMu.Lock()
	defer d.pendingMu.Unlock()
	p, r := d.pending, d.requests
	d.pending, d.requests = nil, nil
	return p, r
}

// requeue puts back dump requests a rate limit held back.
func (d *Daemon) requeue(nonces []uint32) {
	d.pendingMu.Lock()
	defer d.pendingMu.Unlock()
	d.requests = append(nonces, d.requests...)
}

func (d *Daemon) send(ctx context.Context) {
	tr := newTracker(refreshAfter, d.cfg.RefreshEvery)
	// At once: a new director asks for the master's connections, a
	// MASTER sends its table.
	t := time.NewTimer(0)
	defer t.Stop()
	scanEvery := d.cfg.ScanInterval
	if d.events == nil {
		scanEvery = d.cfg.Interval
	}
	var (
		lastErr                         string
		lastScan, lastDump, lastRequest time.Time
		wasMaster                       bool
		wait                            = d.cfg.Interval
		requestWait                     = requestFirst
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
		now := time.Now()
		// A director that lacks the master's (or, in a mesh, its peers')
		// connections asks for them.
		request := func() {
			if d.cfg.Ready != nil && !d.cfg.Ready() && now.Sub(d.since) < ReadyWait {
				return
			}
			silent := now.Sub(time.Unix(0, d.lastRecv.Load())) >= requestFirst
			if !d.complete.Load() && now.Sub(lastRequest) >= requestWait && (silent || now.Sub(lastRequest) >= requestMax) {
				if !lastRequest.IsZero() {
					requestWait = min(2*requestWait, requestMax)
				}
				lastRequest = now
				if d.write(ctx, proto.EncodeRequest(d.cfg.SyncID, d.nonce, d.cfg.Key, d.nextSent)) == nil {
					d.stats.requestsSent.Add(1)
				}
			}
		}
		if d.cfg.Mesh {
			request()
		}
		if !d.cfg.IsMaster() {
			tr.reset()
			d.takePending()
			wasMaster = false
			request()
			t.Reset(d.cfg.Interval)
			continue
		}
		if !wasMaster {
			// A new MASTER sends everything it has at once.
			wasMaster, lastScan = true, time.Time{}
		}
		fresh, requests := d.takePending()
		var err error
		switch {
		case len(requests) > 0 && now.Sub(lastDump) >= dumpEvery:
			start := time.Now()
			err = d.scan(ctx, tr, true, requests)
			lastDump, lastScan = now, now
			wait = max(d.cfg.Interval, 4*time.Since(start))
		case now.Sub(lastScan) >= max(scanEvery, wait):
			if len(requests) > 0 {
				d.requeue(requests)
			}
			// Reading a big table costs CPU: scans take at most a fifth of
			// the time.
			start := time.Now()
			err = d.scan(ctx, tr, false, nil)
			lastScan = now
			wait = max(d.cfg.Interval, 4*time.Since(start))
		default:
			if len(requests) > 0 {
				d.requeue(requests)
			}
			due := fresh[:0]
			for _, c := range fresh {
				if tr.fresh(c) {
					due = append(due, c)
				}
			}
			err = d.sendConns(ctx, due, now)
			for _, c := range due {
				tr.note(c, now)
			}
		}
		t.Reset(d.cfg.Interval)
		switch {
		case err != nil && err.Error() != lastErr:
			d.log.Warn("connection sync send", "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
}

// Scanner is implemented by a data plane that can hand its table over one
// connection at a time (dataplane.Dataplane.EachConnection): then a scan
// keeps only the encoded messages (about 25 bytes a connection), not the
// table, and a scan of 200,000 connections costs a few megabytes.
type Scanner interface {
	EachConnection(fn func(n int, c dataplane.Conn)) error
}

// scan reads the whole table and sends what the receivers lack; a dump
// (all) sends every connection, then the marker answering requests.
func (d *Daemon) scan(ctx context.Context, tr *tracker, all bool, requests []uint32) error {
	var msgs [][]byte
	var err error
	if sc, ok := d.dp.(Scanner); ok {
		msgs, err = d.scanEncoding(sc, tr, all)
	} else {
		var conns []dataplane.Conn
		if conns, err = d.dp.Connections(); err == nil {
			// Embryonic flows are not sent: a SYN flood would become a
			// sync flood, and a client whose handshake moves director
			// just retransmits.
			conns = slices.DeleteFunc(conns, func(c dataplane.Conn) bool { return c.Embryonic })
			now := time.Now()
			msgs, err = d.encode(tr.scan(conns, now, all), now)
		}
	}
	if err != nil {
		return err
	}
	d.stats.scans.Add(1)
	if err := d.writeAll(ctx, msgs); err != nil {
		return err
	}
	if !all {
		return nil
	}
	d.stats.dumps.Add(1)
	for len(requests) > 0 {
		n := min(len(requests), proto.MaxAnswers)
		if err := d.write(ctx, proto.EncodeMarker(d.cfg.SyncID, requests[:n], d.cfg.Key, d.nextSent)); err != nil {
			return err
		}
		d.stats.markersSent.Add(1)
		requests = requests[n:]
	}
	return nil
}

// scanEncoding is a scan over a Scanner: what is due is encoded as the
// table is read.
func (d *Daemon) scanEncoding(sc Scanner, tr *tracker, all bool) ([][]byte, error) {
	now := time.Now()
	var (
		msgs   [][]byte
		chunk  []dataplane.Conn
		encErr error
	)
	flush := func() {
		if len(chunk) == 0 || encErr != nil {
			return
		}
		m, err := d.encode(chunk, now)
		msgs, encErr = append(msgs, m...), err
		chunk = chunk[:0]
	}
	tr.begin()
	err := sc.EachConnection(func(_ int, c dataplane.Conn) {
		if c.Embryonic || !tr.visit(c, now, all) {
			return
		}
		if chunk = append(chunk, c); len(chunk) == sendChunk {
			flush()
		}
	})
	if err != nil {
		return nil, err
	}
	tr.end()
	flush()
	return msgs, encErr
}

// sendChunk is how many connections are encoded at a time, so that a
// dump of a big table does not hold all its messages at once.
const sendChunk = 4096

// sendConns encodes and sends conns, paced.
func (d *Daemon) sendConns(ctx context.Context, conns []dataplane.Conn, now time.Time) error {
	msgs, err := d.encode(conns, now)
	if err != nil {
		return err
	}
	return d.writeAll(ctx, msgs)
}

// encode packs conns into messages.
func (d *Daemon) encode(conns []dataplane.Conn, now time.Time) ([][]byte, error) {
	var out [][]byte
	wire := make([]proto.Conn, 0, min(len(conns), sendChunk))
	for len(conns) > 0 {
		chunk := conns[:min(len(conns), sendChunk)]
		conns = conns[len(chunk):]
		wire = wire[:0]
		for _, c := range chunk {
			pc := proto.Conn{Protocol: uint8(c.Protocol), Client: c.Client, VIP: c.VIP, Real: c.Real,
				Idle: max(now.Sub(c.LastSeen), 0), Closing: c.Closing}
			if pc.Validate() == nil {
				wire = append(wire, pc)
			}
		}
		var (
			msgs [][]byte
			err  error
		)
		if len(d.cfg.Key) > 0 {
			msgs, err = proto.EncodeAuth(d.cfg.SyncID, wire, d.cfg.MaxLen, d.cfg.Key, d.nextSent)
		} else {
			msgs, err = proto.Encode(d.cfg.SyncID, wire, d.cfg.MaxLen)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// writeAll sends messages of entries, paced.
func (d *Daemon) writeAll(ctx context.Context, msgs [][]byte) error {
	for _, m := range msgs {
		if err := d.write(ctx, m); err != nil {
			return fmt.Errorf("send sync message: %w", err)
		}
		d.stats.msgSent.Add(1)
		d.stats.entSent.Add(uint64(binary.BigEndian.Uint16(m[6:8]))) // the header's entry count
	}
	return nil
}

// write sends one message, paced by the limiter.
func (d *Daemon) write(ctx context.Context, m []byte) error {
	if err := d.limiter.Wait(ctx); err != nil {
		return err
	}
	return d.conn.Write(m)
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
		d.lastRecv.Store(now.UnixNano())
		switch {
		case m.Request:
			d.stats.requestsRecv.Add(1)
			d.log.Debug("dump request", "from", src, "master", d.cfg.IsMaster())
			if !d.cfg.IsMaster() {
				continue // for the master to answer
			}
			d.pendingMu.Lock()
			if len(d.requests) < 4*proto.MaxAnswers && !slices.Contains(d.requests, m.Nonce) {
				d.requests = append(d.requests, m.Nonce)
			}
			d.pendingMu.Unlock()
			select {
			case d.wake <- struct{}{}:
			default:
			}
			continue
		case m.CaughtUp:
			d.stats.markersRecv.Add(1)
			d.log.Debug("caught-up marker", "from", src, "answers", len(m.Answers), "ours", slices.Contains(m.Answers, d.nonce))
			if slices.Contains(m.Answers, d.nonce) && !d.complete.Swap(true) {
				d.log.Info("connection sync: the connections of the master (or of a mesh peer) have all arrived", "from", src, "after", now.Sub(d.since).Round(time.Millisecond))
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
// key and the replay window, and no sync into a MASTER (which takes dump
// requests only).
func (d *Daemon) accept(b []byte, src netip.Addr) (proto.Message, bool) {
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
	if !m.Request && !d.cfg.Mesh && d.cfg.IsMaster() {
		d.stats.whileMaster.Add(1)
		return m, false
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
		growReceiveBuffer(c)
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
	growReceiveBuffer(c)
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

// growReceiveBuffer asks for receiveBuffer bytes of socket buffer, past
// net.core.rmem_max where the process may (CAP_NET_ADMIN): a dump arrives
// faster than it is inserted. Without it the kernel's default holds about
// 150 messages, and the rest of a dump is lost until the next one.
func growReceiveBuffer(c net.PacketConn) {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return
	}
	if rc, err := uc.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer)
		}); err == nil && serr == nil {
			return
		}
	}
	_ = uc.SetReadBuffer(receiveBuffer)
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
