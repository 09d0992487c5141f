// Package proto is the wire format of govs's connection synchronisation:
// messages a MASTER director multicasts so that the others learn which
// real server each connection uses. It is pure: no sockets, no clock.
//
// A message is a header followed by count entries:
//
//	header (8 bytes): magic "GVSY" | version (1) | sync id (1) | count (2, big endian)
//	entry:            protocol (1) | flags (1) | client/VIP family (1) | real family (1) |
//	                  client port (2) | VIP port (2) | idle milliseconds (4) |
//	                  client address | VIP address | real address (4 or 16 bytes each)
//
// The idle time travels instead of a timestamp so that the directors'
// clocks need not agree.
//
// Authenticated messages (version 2, when the directors share a key) put
// the sender's clock after the header and an HMAC-SHA256 of everything
// before it, truncated to 16 bytes, after the entries:
//
//	header (8 bytes, version 2) | sent (8 bytes: Unix nanoseconds, big endian) | entries | MAC (16 bytes)
//
// The sending time is what a receiver's replay window checks; it must grow
// from message to message of one sender.
//
// Two control messages carry no entries; their count field says which:
//
//	dump request (count 0x4000):     nonce (4 bytes)
//	caught-up marker (0x8000 | n):   n nonces (4 bytes each, n <= 255)
//
// A director that has just started (or that is not sure it holds every
// connection) multicasts a dump request with a nonce of its own; the
// MASTER answers by sending every connection of its table, then a marker
// naming the nonces of the requests that dump answers. A receiver that
// sees its nonce in a marker holds all the master's connections (those
// made since arrive as they are made).
package proto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Version is the unauthenticated message version; VersionAuth the
// authenticated one.
const (
	Version     = 1
	VersionAuth = 2
)

// authLen is what authentication adds to a message: the sending time and
// the MAC.
const (
	sentLen = 8
	macLen  = 16
	authLen = sentLen + macLen
)

// ErrAuth is returned for a message whose MAC does not verify, or that is
// not authenticated when a key is expected (or is when none is).
var ErrAuth = errors.New("sync message not authenticated by the shared key")

// HeaderLen is the size of a message header.
const HeaderLen = 8

const entryFixedLen = 12

// MinMaxLen is the smallest maximum message length Encode accepts: a
// header and one IPv6 entry (EncodeAuth: and the authentication's 24
// bytes).
const MinMaxLen = HeaderLen + entryFixedLen + 3*16

var magic = [4]byte{'G', 'V', 'S', 'Y'}

// Protocols an entry may carry (IANA numbers).
const (
	TCP = 6
	UDP = 17
)

const flagClosing = 1 << 0

// Conn is one synchronised connection.
type Conn struct {
	Protocol uint8
	Client   netip.AddrPort
	VIP      netip.AddrPort
	Real     netip.Addr
	// Idle is how long ago the connection last carried a packet.
	Idle    time.Duration
	Closing bool
}

// Count fields of the control messages; entry counts stay below both.
const (
	requestCount = 0x4000
	markerCount  = 0x8000
	// maxEntries is the most entries one message carries.
	maxEntries = requestCount - 1
	// MaxAnswers is the most nonces one marker names.
	MaxAnswers = 0xff
)

// Message is a decoded message.
type Message struct {
	SyncID uint8
	Conns  []Conn
	// Request marks a dump request, Nonce its nonce.
	Request bool
	Nonce   uint32
	// CaughtUp marks a caught-up marker; Answers are the nonces of the
	// requests its dump answered.
	CaughtUp bool
	Answers  []uint32
	// Sent is the sender's clock (authenticated messages only).
	Sent time.Time
}

// EntryLen is the encoded size of c.
func EntryLen(c Conn) int {
	return entryFixedLen + 2*addrLen(c.Client.Addr()) + addrLen(c.Real)
}

func addrLen(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 16
}

func familyOf(a netip.Addr) byte {
	if a.Is4() {
		return 4
	}
	return 6
}

// Validate reports why c cannot be encoded.
func (c Conn) Validate() error {
	if c.Protocol != TCP && c.Protocol != UDP {
		return fmt.Errorf("protocol %d is neither TCP nor UDP", c.Protocol)
	}
	cl, vip := c.Client.Addr(), c.VIP.Addr()
	if !cl.IsValid() || !vip.IsValid() || !c.Real.IsValid() {
		return errors.New("missing address")
	}
	if cl.Is4In6() || vip.Is4In6() || c.Real.Is4In6() {
		return errors.New("IPv4-mapped IPv6 address")
	}
	if cl.Is4() != vip.Is4() {
		return fmt.Errorf("client %s and VIP %s differ in family", cl, vip)
	}
	if cl.Zone() != "" || vip.Zone() != "" || c.Real.Zone() != "" {
		return errors.New("address with zone")
	}
	if c.Idle < 0 {
		return errors.New("negative idle time")
	}
	return nil
}

// Encode packs conns into as few messages as it can, none longer than
// maxLen bytes. A connection that does not validate is an error.
func Encode(syncID uint8, conns []Conn, maxLen int) ([][]byte, error) {
	return encode(syncID, conns, maxLen, nil, nil)
}

// EncodeAuth is Encode for directors sharing key: each message carries
// the time sent returns (called once per message, it must grow) and a
// MAC.
func EncodeAuth(syncID uint8, conns []Conn, maxLen int, key []byte, sent func() time.Time) ([][]byte, error) {
	if len(key) == 0 {
		return nil, errors.New("encode sync messages: empty key")
	}
	return encode(syncID, conns, maxLen, key, sent)
}

func encode(syncID uint8, conns []Conn, maxLen int, key []byte, sent func() time.Time) ([][]byte, error) {
	least := MinMaxLen
	if key != nil {
		least += authLen
	}
	if maxLen < least {
		return nil, fmt.Errorf("encode sync messages: maximum length %d is below one IPv6 entry (%d)", maxLen, least)
	}
	var (
		out [][]byte
		msg []byte
	)
	head, room := HeaderLen, maxLen
	if key != nil {
		head, room = HeaderLen+sentLen, maxLen-macLen
	}
	flush := func() {
		if msg != nil {
			if key != nil {
				binary.BigEndian.PutUint64(msg[HeaderLen:], uint64(sent().UnixNano()))
				msg = append(msg, mac(key, msg)...)
			}
			out = append(out, msg)
			msg = nil
		}
	}
	for i, c := range conns {
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("encode sync entry %d: %w", i, err)
		}
		n := EntryLen(c)
		count := 0
		if msg != nil {
			count = int(binary.BigEndian.Uint16(msg[6:8]))
		}
		if msg != nil && (len(msg)+n > room || count == maxEntries) {
			flush()
		}
		if msg == nil {
			msg = make([]byte, head, maxLen)
			copy(msg, magic[:])
			msg[4] = Version
			if key != nil {
				msg[4] = VersionAuth
			}
			msg[5] = syncID
			count = 0
		}
		msg = appendEntry(msg, c)
		binary.BigEndian.PutUint16(msg[6:8], uint16(count+1))
	}
	flush()
	return out, nil
}

// EncodeRequest is a dump request with nonce: key and sent as for
// EncodeAuth, or nil for an unauthenticated one.
func EncodeRequest(syncID uint8, nonce uint32, key []byte, sent func() time.Time) []byte {
	return encodeControl(syncID, requestCount, []uint32{nonce}, key, sent)
}

// EncodeMarker is the caught-up marker answering the requests of nonces
// (at most MaxAnswers; more are an error of the caller and cut).
func EncodeMarker(syncID uint8, nonces []uint32, key []byte, sent func() time.Time) []byte {
	nonces = nonces[:min(len(nonces), MaxAnswers)]
	return encodeControl(syncID, markerCount|len(nonces), nonces, key, sent)
}

func encodeControl(syncID uint8, count int, nonces []uint32, key []byte, sent func() time.Time) []byte {
	msg := make([]byte, HeaderLen, HeaderLen+authLen+4*len(nonces))
	copy(msg, magic[:])
	msg[4], msg[5] = Version, syncID
	binary.BigEndian.PutUint16(msg[6:8], uint16(count))
	if len(key) > 0 {
		msg[4] = VersionAuth
		msg = binary.BigEndian.AppendUint64(msg, uint64(sent().UnixNano()))
	}
	for _, n := range nonces {
		msg = binary.BigEndian.AppendUint32(msg, n)
	}
	if len(key) > 0 {
		msg = append(msg, mac(key, msg)...)
	}
	return msg
}

func appendEntry(b []byte, c Conn) []byte {
	var flags byte
	if c.Closing {
		flags |= flagClosing
	}
	ms := c.Idle.Milliseconds()
	if ms > math.MaxUint32 {
		ms = math.MaxUint32
	}
	b = append(b, c.Protocol, flags, familyOf(c.Client.Addr()), familyOf(c.Real))
	b = binary.BigEndian.AppendUint16(b, c.Client.Port())
	b = binary.BigEndian.AppendUint16(b, c.VIP.Port())
	b = binary.BigEndian.AppendUint32(b, uint32(ms))
	b = append(b, c.Client.Addr().AsSlice()...)
	b = append(b, c.VIP.Addr().AsSlice()...)
	return append(b, c.Real.AsSlice()...)
}

// mac is the truncated HMAC-SHA256 of msg under key.
func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)[:macLen]
}

// Decode parses one unauthenticated message. Anything malformed is an
// error: a short or long buffer, a wrong magic or version, an entry count
// that does not match, an unknown family or protocol. An authenticated
// message is ErrAuth: without the key it cannot be trusted.
func Decode(b []byte) (Message, error) {
	return decode(b, nil)
}

// DecodeAuth parses one message authenticated with key. An unauthenticated
// one, or one whose MAC does not verify, is ErrAuth; the MAC is checked
// before anything else is read.
func DecodeAuth(b []byte, key []byte) (Message, error) {
	if len(key) == 0 {
		return Message{}, errors.New("decode sync message: empty key")
	}
	return decode(b, key)
}

func decode(b []byte, key []byte) (Message, error) {
	if len(b) < HeaderLen {
		return Message{}, fmt.Errorf("decode sync message: %d bytes, shorter than the header", len(b))
	}
	if [4]byte(b[:4]) != magic {
		return Message{}, errors.New("decode sync message: bad magic")
	}
	switch {
	case b[4] != Version && b[4] != VersionAuth:
		return Message{}, fmt.Errorf("decode sync message: version %d, want %d or %d", b[4], Version, VersionAuth)
	case (b[4] == VersionAuth) != (key != nil):
		return Message{}, fmt.Errorf("decode sync message: version %d: %w", b[4], ErrAuth)
	}
	m := Message{SyncID: b[5]}
	count := int(binary.BigEndian.Uint16(b[6:8]))
	rest := b[HeaderLen:]
	if key != nil {
		if len(b) < HeaderLen+authLen {
			return Message{}, fmt.Errorf("decode sync message: %d bytes, shorter than an authenticated header: %w", len(b), ErrAuth)
		}
		body := b[:len(b)-macLen]
		if !hmac.Equal(mac(key, body), b[len(body):]) {
			return Message{}, fmt.Errorf("decode sync message: %w", ErrAuth)
		}
		m.Sent = time.Unix(0, int64(binary.BigEndian.Uint64(b[HeaderLen:])))
		rest = body[HeaderLen+sentLen:]
	}
	switch {
	case count == requestCount:
		if len(rest) != 4 {
			return Message{}, fmt.Errorf("decode sync message: dump request of %d bytes, want a 4-byte nonce", len(rest))
		}
		m.Request, m.Nonce = true, binary.BigEndian.Uint32(rest)
		return m, nil
	case count&markerCount != 0:
		n := count &^ markerCount
		if n > MaxAnswers || len(rest) != 4*n {
			return Message{}, fmt.Errorf("decode sync message: caught-up marker of %d bytes for %d nonces", len(rest), n)
		}
		m.CaughtUp = true
		m.Answers = make([]uint32, n)
		for i := range m.Answers {
			m.Answers[i] = binary.BigEndian.Uint32(rest[4*i:])
		}
		return m, nil
	case count > maxEntries:
		return Message{}, fmt.Errorf("decode sync message: count field %#x", count)
	}
	// Every entry is at least entryFixedLen+12 bytes: bound the allocation
	// by what the buffer can hold, not by the claimed count.
	m.Conns = make([]Conn, 0, min(count, len(rest)/(entryFixedLen+12)))
	for i := range count {
		c, n, err := decodeEntry(rest)
		if err != nil {
			return Message{}, fmt.Errorf("decode sync entry %d: %w", i, err)
		}
		m.Conns = append(m.Conns, c)
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return Message{}, fmt.Errorf("decode sync message: %d bytes after %d entries", len(rest), count)
	}
	return m, nil
}

func decodeEntry(b []byte) (Conn, int, error) {
	if len(b) < entryFixedLen {
		return Conn{}, 0, errors.New("truncated")
	}
	c := Conn{Protocol: b[0], Closing: b[1]&flagClosing != 0}
	if c.Protocol != TCP && c.Protocol != UDP {
		return Conn{}, 0, fmt.Errorf("protocol %d is neither TCP nor UDP", c.Protocol)
	}
	if b[1]&^flagClosing != 0 {
		return Conn{}, 0, fmt.Errorf("unknown flags %#x", b[1])
	}
	al, err := lenOfFamily(b[2])
	if err != nil {
		return Conn{}, 0, err
	}
	rl, err := lenOfFamily(b[3])
	if err != nil {
		return Conn{}, 0, err
	}
	n := entryFixedLen + 2*al + rl
	if len(b) < n {
		return Conn{}, 0, errors.New("truncated")
	}
	cport := binary.BigEndian.Uint16(b[4:6])
	vport := binary.BigEndian.Uint16(b[6:8])
	c.Idle = time.Duration(binary.BigEndian.Uint32(b[8:12])) * time.Millisecond
	p := b[entryFixedLen:]
	cl, _ := netip.AddrFromSlice(p[:al])
	vip, _ := netip.AddrFromSlice(p[al : 2*al])
	c.Real, _ = netip.AddrFromSlice(p[2*al : 2*al+rl])
	c.Client = netip.AddrPortFrom(cl, cport)
	c.VIP = netip.AddrPortFrom(vip, vport)
	if err := c.Validate(); err != nil {
		return Conn{}, 0, err
	}
	return c, n, nil
}

func lenOfFamily(f byte) (int, error) {
	switch f {
	case 4:
		return 4, nil
	case 6:
		return 16, nil
	}
	return 0, fmt.Errorf("unknown address family %d", f)
}
