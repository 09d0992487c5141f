// Package vrrp is the pure part of govs's VRRP: the VRRPv2 (RFC 3768) and
// VRRPv3 (RFC 5798) advertisement codec, the receive rules, and the
// per-instance state machine driven by explicit events and an injected clock.
//
// Nothing here touches a socket or the kernel: the OS glue (internal/vrrpnet)
// reads packets, feeds them to a Machine and carries out the Actions it returns.
package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol is the IP protocol number of VRRP.
const Protocol = 112

// Multicast groups adverts are sent to (RFC 3768 §5.2.2, RFC 5798 §5.1.2.2).
var (
	MulticastIPv4 = netip.MustParseAddr("224.0.0.18")
	MulticastIPv6 = netip.MustParseAddr("ff02::12")
)

// TTL is the IPv4 TTL / IPv6 hop limit every multicast advert carries.
const TTL = 255

// Auth types of VRRPv2 (RFC 3768 §5.3.6; AH comes from RFC 2338).
const (
	AuthNone = 0
	AuthPass = 1
	AuthAH   = 2
)

// AuthLen is the length of the VRRPv2 authentication data (the password, zero padded).
const AuthLen = 8

const (
	typeAdvert = 1
	headerLen  = 8
)

// Errors Decode returns; the receive path counts packets by these.
var (
	ErrShort    = errors.New("packet too short")
	ErrLength   = errors.New("packet length does not match address count")
	ErrVersion  = errors.New("unsupported VRRP version")
	ErrType     = errors.New("not an advertisement")
	ErrChecksum = errors.New("bad checksum")
	ErrFamily   = errors.New("source and destination address families differ")
)

// Packet is one VRRP advertisement.
type Packet struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds on the wire for
	// v2, centiseconds (at most 40.95 s) for v3.
	Interval  time.Duration
	Addresses []netip.Addr
	AuthType  uint8         // v2 only
	AuthData  [AuthLen]byte // v2 only: the PASS password, zero padded
	// Checksum is the checksum found on the wire (Decode) or written (Encode).
	Checksum uint16
}

// PassAuth returns the 8-byte VRRPv2 authentication data for a PASS password:
// keepalived uses at most the first 8 bytes and pads with zeros.
func PassAuth(password string) [AuthLen]byte {
	var a [AuthLen]byte
	copy(a[:], password)
	return a
}

// Encode serialises p. src and dst are the IP source and destination (the
// VRRPv3 checksum covers a pseudo-header made from them; v2 ignores them
// except to size the addresses).
func (p *Packet) Encode(src, dst netip.Addr) ([]byte, error) {
	if src.Is4() != dst.Is4() || !src.IsValid() || !dst.IsValid() {
		return nil, fmt.Errorf("encode VRRP advert: %w (%v, %v)", ErrFamily, src, dst)
	}
	if len(p.Addresses) > 255 {
		return nil, fmt.Errorf("encode VRRP advert: %d addresses, at most 255", len(p.Addresses))
	}
	alen := 4
	if !src.Is4() {
		alen = 16
	}
	n := headerLen + alen*len(p.Addresses)
	b := make([]byte, 0, n+AuthLen)
	switch p.Version {
	case 2:
		if !src.Is4() {
			return nil, fmt.Errorf("encode VRRP advert: version 2 is IPv4 only")
		}
		secs := p.Interval / time.Second
		if secs < 1 || secs > 255 || p.Interval%time.Second != 0 {
			return nil, fmt.Errorf("encode VRRP advert: v2 interval %v is not 1..255 whole seconds", p.Interval)
		}
		b = append(b, 0x21, p.VRID, p.Priority, uint8(len(p.Addresses)), p.AuthType, uint8(secs), 0, 0)
	case 3:
		cs := p.Interval / (10 * time.Millisecond)
		if cs < 1 || cs > 0xfff {
			return nil, fmt.Errorf("encode VRRP advert: v3 interval %v is not 10ms..40.95s", p.Interval)
		}
		b = append(b, 0x31, p.VRID, p.Priority, uint8(len(p.Addresses)))
		b = binary.BigEndian.AppendUint16(b, uint16(cs))
		b = append(b, 0, 0)
	default:
		return nil, fmt.Errorf("encode VRRP advert: %w %d", ErrVersion, p.Version)
	}
	for _, a := range p.Addresses {
		if a.Is4() != src.Is4() {
			return nil, fmt.Errorf("encode VRRP advert: address %v: %w", a, ErrFamily)
		}
		b = append(b, a.AsSlice()...)
	}
	if p.Version == 2 {
		b = append(b, p.AuthData[:]...)
	}
	p.Checksum = checksum(p.Version, b, src, dst)
	binary.BigEndian.PutUint16(b[6:], p.Checksum)
	return b, nil
}

// Decode parses a VRRP advertisement (the IP payload) received from src to dst
// and verifies its checksum. Trailing bytes (Ethernet padding) are ignored.
func Decode(b []byte, src, dst netip.Addr) (*Packet, error) {
	if src.Is4() != dst.Is4() || !src.IsValid() || !dst.IsValid() {
		return nil, fmt.Errorf("decode VRRP advert: %w", ErrFamily)
	}
	if len(b) < headerLen {
		return nil, fmt.Errorf("decode VRRP advert: %w (%d bytes)", ErrShort, len(b))
	}
	p := &Packet{Version: int(b[0] >> 4), VRID: b[1], Priority: b[2]}
	if t := b[0] & 0x0f; t != typeAdvert {
		return nil, fmt.Errorf("decode VRRP advert: %w (type %d)", ErrType, t)
	}
	count := int(b[3])
	alen := 4
	if !src.Is4() {
		alen = 16
	}
	n := headerLen + count*alen
	switch p.Version {
	case 2:
		if !src.Is4() {
			return nil, fmt.Errorf("decode VRRP advert: %w: version 2 over IPv6", ErrVersion)
		}
		n += AuthLen
		p.AuthType = b[4]
		p.Interval = time.Duration(b[5]) * time.Second
	case 3:
		p.Interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0xfff) * 10 * time.Millisecond
	default:
		return nil, fmt.Errorf("decode VRRP advert: %w %d", ErrVersion, p.Version)
	}
	if len(b) < n {
		return nil, fmt.Errorf("decode VRRP advert: %w: %d bytes for %d addresses", ErrLength, len(b), count)
	}
	b = b[:n]
	p.Checksum = binary.BigEndian.Uint16(b[6:])
	if checksum(p.Version, b, src, dst) != 0 {
		return nil, fmt.Errorf("decode VRRP advert: %w (0x%04x)", ErrChecksum, p.Checksum)
	}
	for i := 0; i < count; i++ {
		a, _ := netip.AddrFromSlice(b[headerLen+i*alen : headerLen+(i+1)*alen])
		p.Addresses = append(p.Addresses, a)
	}
	if p.Version == 2 {
		copy(p.AuthData[:], b[n-AuthLen:])
	}
	return p, nil
}

// checksum returns the Internet checksum of b (with its checksum field as it
// is). VRRPv3 includes the IPv4 or IPv6 pseudo-header (RFC 5798 §5.2.8).
// Summing a packet whose checksum field is filled in gives 0 when it is right.
func checksum(version int, b []byte, src, dst netip.Addr) uint16 {
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(p[i])<<8 | uint32(p[i+1])
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	if version == 3 {
		add(src.AsSlice())
		add(dst.AsSlice())
		if src.Is4() {
			add([]byte{0, Protocol, byte(len(b) >> 8), byte(len(b))})
		} else {
			var l [8]byte
			binary.BigEndian.PutUint32(l[:], uint32(len(b)))
			l[7] = Protocol
			add(l[:])
		}
	}
	// The checksum field itself is summed too: for encoding it is zero.
	add(b)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
