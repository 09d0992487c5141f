package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// ConnEventReader streams the connection-table entries the program makes
// (new flows, and embryonic ones promoted), as they are made. It is what
// lets connection sync send a new connection at once instead of finding
// it in a scan of the whole table.
type ConnEventReader interface {
	// Read blocks until the next entry and returns it; after Close it
	// returns an error matching os.ErrClosed.
	Read() (Conn, error)
	// Lost is how many entries the program could not record because the
	// ring was full (a scan of the table finds them).
	Lost() uint64
	Close() error
}

// connEventLen is sizeof(struct conn_event): the flow (40 bytes), then
// real id, service id, flags and padding.
const connEventLen = 56

// ConnEvents starts recording new connection-table entries and returns
// their reader. One reader at a time; Close stops the recording, so a
// director without connection sync pays nothing for it.
func (d *Dataplane) ConnEvents() (ConnEventReader, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.events != nil {
		return nil, errors.New("read connection events: a reader is open already")
	}
	rd, err := ringbuf.NewReader(d.objs.ConnEvents)
	if err != nil {
		return nil, fmt.Errorf("read connection events: %w", err)
	}
	var ctl balancerConnEventsCtl
	if err := d.objs.ConnEventsCtl.Lookup(uint32(0), &ctl); err != nil {
		_ = rd.Close()
		return nil, fmt.Errorf("read connection events: %w", err)
	}
	ctl.On = 1
	if err := d.objs.ConnEventsCtl.Put(uint32(0), &ctl); err != nil {
		_ = rd.Close()
		return nil, fmt.Errorf("turn connection events on: %w", err)
	}
	e := &connEvents{d: d, rd: rd, gen: d.idsGen - 1}
	d.events = e
	return e, nil
}

type connEvents struct {
	d      *Dataplane
	rd     *ringbuf.Reader
	rec    ringbuf.Record
	closed sync.Once
	// addrs maps real ids to addresses as of ids generation gen (Read's
	// goroutine only).
	addrs map[uint32]netip.Addr
	gen   uint64
}

func (e *connEvents) Read() (Conn, error) {
	for {
		if err := e.rd.ReadInto(&e.rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) {
				return Conn{}, fmt.Errorf("read connection events: %w", os.ErrClosed)
			}
			return Conn{}, fmt.Errorf("read connection events: %w", err)
		}
		if c, ok := e.conn(e.rec.RawSample); ok {
			return c, nil
		}
	}
}

func (e *connEvents) Lost() uint64 {
	var ctl balancerConnEventsCtl
	if e.d.objs.ConnEventsCtl.Lookup(uint32(0), &ctl) != nil {
		return 0
	}
	return ctl.Lost
}

func (e *connEvents) Close() error {
	var err error
	e.closed.Do(func() {
		e.d.mu.Lock()
		var ctl balancerConnEventsCtl
		if e.d.objs.ConnEventsCtl.Lookup(uint32(0), &ctl) == nil {
			ctl.On = 0
			err = e.d.objs.ConnEventsCtl.Put(uint32(0), &ctl)
		}
		if e.d.events == e {
			e.d.events = nil
		}
		e.d.mu.Unlock()
		if cerr := e.rd.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// conn decodes a conn_event record. Entries of services or real servers
// this data plane no longer has are skipped, as Connections does.
func (e *connEvents) conn(b []byte) (Conn, bool) {
	if len(b) < connEventLen {
		return Conn{}, false
	}
	le := binary.LittleEndian
	var k balancerFlow
	copy(k.Src[:], b[0:16])
	copy(k.Dst[:], b[16:32])
	// Ports are stored in network order; balancerFlow holds them as the
	// program's memory reads them.
	k.Sport, k.Dport = le.Uint16(b[32:]), le.Uint16(b[34:])
	k.Proto, k.Family = b[36], b[37]
	realID, svcID, flags := le.Uint32(b[40:]), le.Uint32(b[44:]), le.Uint32(b[48:])
	d := e.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.applied[svcID]; !ok {
		return Conn{}, false
	}
	if e.gen != d.idsGen {
		e.addrs, e.gen = d.realAddrsLocked(), d.idsGen
	}
	ra, ok := e.addrs[realID]
	if !ok {
		return Conn{}, false
	}
	return Conn{
		Protocol: Protocol(k.Proto),
		Client:   netip.AddrPortFrom(addrOf(k.Src, k.Family), htons(k.Sport)),
		VIP:      netip.AddrPortFrom(addrOf(k.Dst, k.Family), htons(k.Dport)),
		Real:     ra,
		LastSeen: time.Now(),
		Closing:  flags&connFlagFin != 0,
	}, true
}

// realAddrsLocked maps every real id, current or retired, to its address.
func (d *Dataplane) realAddrsLocked() map[uint32]netip.Addr {
	m := make(map[uint32]netip.Addr, len(d.ids.real)+len(d.ids.retired))
	for k, id := range d.ids.real {
		m[id] = k.addr
	}
	for _, r := range d.ids.retired {
		m[r.id] = r.key.addr
	}
	return m
}
