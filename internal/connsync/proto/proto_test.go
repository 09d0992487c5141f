package proto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	conn4 = Conn{Protocol: TCP, Client: netip.MustParseAddrPort("198.19.0.1:40000"), VIP: netip.MustParseAddrPort("203.0.113.1:80"),
		Real: netip.MustParseAddr("198.18.0.11"), Idle: 1500 * time.Millisecond}
	conn6 = Conn{Protocol: UDP, Client: netip.MustParseAddrPort("[2001:db8:1::10]:5353"), VIP: netip.MustParseAddrPort("[2001:db8::100]:53"),
		Real: netip.MustParseAddr("2001:db8::11"), Closing: true}
	// A TUN real of the other family than the VIP.
	connMixed = Conn{Protocol: TCP, Client: netip.MustParseAddrPort("198.19.0.2:1"), VIP: netip.MustParseAddrPort("203.0.113.1:443"),
		Real: netip.MustParseAddr("2001:db8::12"), Idle: 0}
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns []Conn
	}{
		{"ipv4", []Conn{conn4}},
		{"ipv6 udp closing", []Conn{conn6}},
		{"mixed families", []Conn{conn4, conn6, connMixed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := Encode(42, tc.conns, 1472)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			m, err := Decode(msgs[0])
			if err != nil {
				t.Fatal(err)
			}
			if m.SyncID != 42 || !reflect.DeepEqual(m.Conns, tc.conns) {
				t.Fatalf("decoded %+v, want sync id 42 and %+v", m, tc.conns)
			}
		})
	}
}

func TestEncodeSizes(t *testing.T) {
	if got := EntryLen(conn4); got != 24 {
		t.Errorf("IPv4 entry is %d bytes, want 24", got)
	}
	if got := EntryLen(conn6); got != 60 {
		t.Errorf("IPv6 entry is %d bytes, want 60", got)
	}
	msgs, err := Encode(1, []Conn{conn4}, 1472)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{'G', 'V', 'S', 'Y', 1, 1, 0, 1, TCP, 0, 4, 4, 0x9c, 0x40, 0, 80, 0, 0, 0x05, 0xdc,
		198, 19, 0, 1, 203, 0, 113, 1, 198, 18, 0, 11}
	if !bytes.Equal(msgs[0], want) {
		t.Fatalf("encoded\n% x\nwant\n% x", msgs[0], want)
	}
}

func TestEncodeSplitsAtMaxLen(t *testing.T) {
	conns := make([]Conn, 1000)
	for i := range conns {
		conns[i] = conn4
		conns[i].Client = netip.AddrPortFrom(conn4.Client.Addr(), uint16(i))
	}
	for _, maxLen := range []int{HeaderLen + 60, 100, 1472, 9000} {
		msgs, err := Encode(3, conns, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		perMsg := (maxLen - HeaderLen) / 24
		if wantMsgs := (len(conns) + perMsg - 1) / perMsg; len(msgs) != wantMsgs {
			t.Errorf("maxlen %d: %d messages, want %d", maxLen, len(msgs), wantMsgs)
		}
		var got []Conn
		for _, b := range msgs {
			if len(b) > maxLen {
				t.Fatalf("maxlen %d: message of %d bytes", maxLen, len(b))
			}
			m, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, m.Conns...)
		}
		if !reflect.DeepEqual(got, conns) {
			t.Fatalf("maxlen %d: connections changed on the way", maxLen)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	bad := func(f func(c *Conn)) Conn { c := conn4; f(&c); return c }
	for _, tc := range []struct {
		name   string
		conns  []Conn
		maxLen int
		want   string
	}{
		{"maxlen too small", []Conn{conn4}, 50, "below one IPv6 entry"},
		{"protocol", []Conn{bad(func(c *Conn) { c.Protocol = 1 })}, 1472, "neither TCP nor UDP"},
		{"no real", []Conn{bad(func(c *Conn) { c.Real = netip.Addr{} })}, 1472, "missing address"},
		{"families", []Conn{bad(func(c *Conn) { c.VIP = conn6.VIP })}, 1472, "differ in family"},
		{"mapped", []Conn{bad(func(c *Conn) { c.Real = netip.MustParseAddr("::ffff:198.18.0.1") })}, 1472, "IPv4-mapped"},
		{"negative idle", []Conn{bad(func(c *Conn) { c.Idle = -time.Second })}, 1472, "negative idle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(0, tc.conns, tc.maxLen)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := Encode(9, []Conn{conn4}, 1472)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good[0])) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "shorter than the header"},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), "bad magic"},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), "version 2"},
		{"count too high", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:], 2); return b }), "entry 1: truncated"},
		{"count too low", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[6:], 0); return b }), "24 bytes after 0 entries"},
		{"truncated entry", mod(func(b []byte) []byte { return b[:len(b)-1] }), "truncated"},
		{"protocol", mod(func(b []byte) []byte { b[8] = 1; return b }), "neither TCP nor UDP"},
		{"flags", mod(func(b []byte) []byte { b[9] = 0x80; return b }), "unknown flags"},
		{"family", mod(func(b []byte) []byte { b[10] = 5; return b }), "unknown address family 5"},
		{"trailing", append(bytes.Clone(good[0]), 0), "1 bytes after 1 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestAuthenticated: messages sealed with the shared key decode with it,
// carry their sending times, and respect maxLen with the MAC; a changed
// byte, another key, or a message of the other kind is ErrAuth.
func TestAuthenticated(t *testing.T) {
	key := []byte("a key the directors share")
	clock := time.Unix(1796140800, 0)
	sent := func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	conns := []Conn{conn4, conn6, connMixed, conn4, conn6}
	const maxLen = MinMaxLen + authLen + 40
	msgs, err := EncodeAuth(7, conns, maxLen, key, sent)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 2 {
		t.Fatalf("%d messages at maxlen %d, want a split", len(msgs), maxLen)
	}
	var got []Conn
	var last time.Time
	for _, b := range msgs {
		if len(b) > maxLen {
			t.Errorf("message of %d bytes, maxlen %d", len(b), maxLen)
		}
		m, err := DecodeAuth(b, key)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Sent.After(last) {
			t.Errorf("sending time %v not after %v", m.Sent, last)
		}
		last = m.Sent
		got = append(got, m.Conns...)
		for i := range b {
			c := bytes.Clone(b)
			c[i] ^= 0x40
			if _, err := DecodeAuth(c, key); !errors.Is(err, ErrAuth) && i >= HeaderLen {
				t.Fatalf("byte %d changed: %v, want ErrAuth", i, err)
			}
		}
		if _, err := DecodeAuth(b, []byte("another key")); !errors.Is(err, ErrAuth) {
			t.Errorf("another key: %v, want ErrAuth", err)
		}
		if _, err := Decode(b); !errors.Is(err, ErrAuth) {
			t.Errorf("authenticated message without a key: %v, want ErrAuth", err)
		}
	}
	if !reflect.DeepEqual(got, conns) {
		t.Errorf("round trip changed %+v into %+v", conns, got)
	}
	plain, err := Encode(7, conns, 1472)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeAuth(plain[0], key); !errors.Is(err, ErrAuth) {
		t.Errorf("unauthenticated message with a key: %v, want ErrAuth", err)
	}
	if _, err := EncodeAuth(7, conns, MinMaxLen, key, sent); err == nil {
		t.Error("maxlen with no room for the MAC accepted")
	}
}

func FuzzDecode(f *testing.F) {
	msgs, err := Encode(7, []Conn{conn4, conn6, connMixed}, 1472)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msgs[0])
	f.Add([]byte("GVSY\x01\x00\xff\xff"))
	key := []byte("fuzz key")
	sealed, err := EncodeAuth(7, []Conn{conn4, conn6}, 1472, key, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed[0])
	f.Add(EncodeRequest(7, 42, nil, nil))
	f.Add(EncodeMarker(7, []uint32{42, 43}, nil, nil))
	f.Add(EncodeMarker(7, []uint32{42}, key, time.Now))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeAuth(b, key) // must not panic
		m, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes must encode back to the same connections.
		again, err := Encode(m.SyncID, m.Conns, 65507)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		var got []Conn
		for _, b := range again {
			m2, err := Decode(b)
			if err != nil {
				t.Fatalf("decode re-encoded: %v", err)
			}
			got = append(got, m2.Conns...)
		}
		if len(got) != len(m.Conns) || (len(got) > 0 && !reflect.DeepEqual(got, m.Conns)) {
			t.Fatalf("round trip changed %+v into %+v", m.Conns, got)
		}
	})
}

// TestControlMessages: dump requests and caught-up markers round-trip,
// with and without a key, and anything else of their shape is refused.
func TestControlMessages(t *testing.T) {
	key := []byte("k")
	sent := func() time.Time { return time.Unix(1700000000, 0) }
	many := make([]uint32, MaxAnswers+10)
	for i := range many {
		many[i] = uint32(i)
	}
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"unauthenticated", nil}, {"authenticated", key}} {
		decode := func(b []byte) (Message, error) {
			if tc.key != nil {
				return DecodeAuth(b, tc.key)
			}
			return Decode(b)
		}
		t.Run(tc.name, func(t *testing.T) {
			for _, want := range []Message{
				{SyncID: 7, Request: true, Nonce: 0xdeadbeef},
				{SyncID: 7, CaughtUp: true, Answers: []uint32{}},
				{SyncID: 7, CaughtUp: true, Answers: []uint32{1, 0xffffffff}},
				{SyncID: 7, CaughtUp: true, Answers: many[:MaxAnswers]},
			} {
				var b []byte
				if want.Request {
					b = EncodeRequest(7, want.Nonce, tc.key, sent)
				} else {
					b = EncodeMarker(7, want.Answers, tc.key, sent)
				}
				m, err := decode(b)
				if tc.key != nil {
					want.Sent = sent()
				}
				if err != nil || !reflect.DeepEqual(m, want) {
					t.Fatalf("decoded %+v, %v; want %+v", m, err, want)
				}
				if tc.key == nil {
					if _, err := Decode(append(bytes.Clone(b), 0)); err == nil {
						t.Errorf("%+v with a trailing byte decoded", want)
					}
					if _, err := Decode(b[:len(b)-1]); err == nil && len(b) > HeaderLen {
						t.Errorf("%+v short of a byte decoded", want)
					}
				} else if _, err := DecodeAuth(b, []byte("other")); !errors.Is(err, ErrAuth) {
					t.Errorf("%+v under another key: %v", want, err)
				}
			}
			if m, err := decode(EncodeMarker(7, many, tc.key, sent)); err != nil || len(m.Answers) != MaxAnswers {
				t.Errorf("a marker for %d nonces: %d answers, %v", len(many), len(m.Answers), err)
			}
		})
	}
	bad := EncodeRequest(7, 1, nil, nil)
	bad[6] = 0x41 // neither a request nor an entry count
	if _, err := Decode(bad); err == nil {
		t.Error("count field 0x4100 decoded")
	}
	// Ordinary messages never look like markers.
	msgs, err := Encode(7, []Conn{{Protocol: TCP, Client: netip.MustParseAddrPort("198.18.1.1:1000"), VIP: netip.MustParseAddrPort("198.18.0.100:80"), Real: netip.MustParseAddr("198.18.0.11")}}, 1472)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := Decode(msgs[0]); err != nil || m.CaughtUp || m.Request {
		t.Errorf("entry message: %+v, %v", m, err)
	}
}
