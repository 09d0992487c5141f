package vrrp

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	goldenSrc = netip.MustParseAddr("198.18.0.11")
	goldenVIP = netip.MustParseAddr("198.18.0.100")
)

// Golden packets captured from keepalived 2.2.7 (../shared/SCENARIO.md).
func TestGoldenPackets(t *testing.T) {
	tests := []struct {
		name string
		wire string
		dst  netip.Addr
		pkt  Packet
	}{
		{"v2 PASS s3cret", "2133 9601 0101 4539 c6120064 7333637265740000", MulticastIPv4, Packet{
			Version: 2, VRID: 51, Priority: 150, Interval: time.Second, AuthType: AuthPass,
			AuthData: PassAuth("s3cret"), Addresses: []netip.Addr{goldenVIP}}},
		// The v3 capture went unicast to the peer 198.18.0.12: its checksum
		// only matches with that address in the pseudo-header.
		{"v3 100cs", "3133 9601 0064 e537 c6120064", netip.MustParseAddr("198.18.0.12"), Packet{
			Version: 3, VRID: 51, Priority: 150, Interval: time.Second, Addresses: []netip.Addr{goldenVIP}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.wire)
			p := tt.pkt
			got, err := p.Encode(goldenSrc, tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			// Ethernet padding after the packet must be ignored.
			dec, err := Decode(append(want, 0, 0, 0, 0), goldenSrc, tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			if dec.Version != p.Version || dec.VRID != 51 || dec.Priority != 150 || dec.Interval != time.Second ||
				len(dec.Addresses) != 1 || dec.Addresses[0] != goldenVIP || dec.AuthData != p.AuthData || dec.AuthType != p.AuthType {
				t.Fatalf("decode: %+v", dec)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	v2 := mustHex(t, "2133 9601 0101 4539 c6120064 7333637265740000")
	v3 := mustHex(t, "3133 9601 0064 e537 c6120064")
	peer := netip.MustParseAddr("198.18.0.12")
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 0x01; return c }
	v6 := netip.MustParseAddr("fe80::1")
	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     error
	}{
		{"empty", nil, goldenSrc, MulticastIPv4, ErrShort},
		{"short header", v2[:7], goldenSrc, MulticastIPv4, ErrShort},
		{"truncated address", v3[:10], goldenSrc, peer, ErrLength},
		{"truncated auth", v2[:15], goldenSrc, MulticastIPv4, ErrLength},
		{"v2 checksum", flip(v2, 2), goldenSrc, MulticastIPv4, ErrChecksum},
		{"v3 checksum", flip(v3, 9), goldenSrc, peer, ErrChecksum},
		{"v3 pseudo-header destination", v3, goldenSrc, MulticastIPv4, ErrChecksum},
		{"v3 pseudo-header source", v3, netip.MustParseAddr("198.18.0.13"), peer, ErrChecksum},
		{"version 1", append([]byte{0x11}, v3[1:]...), goldenSrc, MulticastIPv4, ErrVersion},
		{"type 2", append([]byte{0x32}, v3[1:]...), goldenSrc, MulticastIPv4, ErrType},
		{"mixed families", v3, goldenSrc, MulticastIPv6, ErrFamily},
		{"v2 over IPv6", v2, v6, MulticastIPv6, ErrVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.b, tt.src, tt.dst)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestRoundTripIPv6(t *testing.T) {
	src := netip.MustParseAddr("fe80::1")
	p := Packet{Version: 3, VRID: 7, Priority: 200, Interval: 100 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::101")}}
	b, err := p.Encode(src, MulticastIPv6)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 8+32 {
		t.Fatalf("length %d", len(b))
	}
	got, err := Decode(b, src, MulticastIPv6)
	if err != nil {
		t.Fatal(err)
	}
	if got.Interval != p.Interval || len(got.Addresses) != 2 || got.Addresses[1] != p.Addresses[1] {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := Decode(b, netip.MustParseAddr("fe80::2"), MulticastIPv6); !errors.Is(err, ErrChecksum) {
		t.Fatalf("IPv6 pseudo-header not covered: %v", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
	}{
		{"v2 fractional interval", Packet{Version: 2, VRID: 1, Interval: 1500 * time.Millisecond}},
		{"v3 interval too long", Packet{Version: 3, VRID: 1, Interval: 41 * time.Second}},
		{"version 4", Packet{Version: 4, VRID: 1, Interval: time.Second}},
		{"v6 address in v4 packet", Packet{Version: 3, VRID: 1, Interval: time.Second, Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.p.Encode(goldenSrc, MulticastIPv4); err == nil {
				t.Fatal("Encode accepted it")
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(mustHex(f, "2133 9601 0101 4539 c6120064 7333637265740000"), false)
	f.Add(mustHex(f, "3133 9601 0064 e537 c6120064"), false)
	f.Add([]byte{0x31, 1, 100, 1, 0, 100, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		src, dst := goldenSrc, MulticastIPv4
		if v6 {
			src, dst = netip.MustParseAddr("fe80::1"), MulticastIPv6
		}
		p, err := Decode(b, src, dst)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to the same bytes.
		out, err := p.Encode(src, dst)
		if err != nil {
			if p.Version == 3 && p.Interval == 0 || p.Version == 2 && p.Interval == 0 {
				return // zero interval decodes but is not sendable
			}
			t.Fatalf("re-encode %+v: %v", p, err)
		}
		if p.Version == 3 && b[4]&0xf0 != 0 {
			return // reserved bits are not kept
		}
		if string(out) != string(b[:len(out)]) {
			t.Fatalf("re-encode differs:\n in %x\nout %x", b, out)
		}
	})
}
