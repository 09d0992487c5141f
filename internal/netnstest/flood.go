package netnstest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// TCP flags for SpoofedTCP.
const (
	TCPSyn = 0x02
	TCPAck = 0x10
)

// SpoofedTCP builds Ethernet/IPv4/TCP segments (no payload, valid
// checksums) to one destination from sources the caller picks: what a
// flood from spoofed addresses looks like.
type SpoofedTCP struct{ f []byte }

// NewSpoofedTCP is a segment with flags to dst:dport, sent to dstMAC.
func NewSpoofedTCP(dstMAC, srcMAC net.HardwareAddr, dst netip.Addr, dport uint16, flags byte) *SpoofedTCP {
	f := make([]byte, 14+20+20)
	copy(f[0:], dstMAC)
	copy(f[6:], srcMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	copy(ip[16:], dst.AsSlice())
	tcp := f[34:]
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	if flags&TCPAck != 0 {
		binary.BigEndian.PutUint32(tcp[8:], 1)
	}
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	return &SpoofedTCP{f: f}
}

// From sets the source address and port (and the checksums) and returns
// the frame, valid until the next call.
func (s *SpoofedTCP) From(src [4]byte, sport uint16) []byte {
	ip, tcp := s.f[14:34], s.f[34:]
	copy(ip[12:], src[:])
	binary.BigEndian.PutUint16(tcp[0:], sport)
	ip[10], ip[11], tcp[16], tcp[17] = 0, 0, 0, 0
	binary.BigEndian.PutUint16(ip[10:], checksum(0, ip))
	pseudo := uint32(binary.BigEndian.Uint16(ip[12:])) + uint32(binary.BigEndian.Uint16(ip[14:])) +
		uint32(binary.BigEndian.Uint16(ip[16:])) + uint32(binary.BigEndian.Uint16(ip[18:])) + 6 + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], checksum(pseudo, tcp))
	return s.f
}

// SpoofedSource is the i-th of 130,816 distinct sources in 198.18.0.0/15
// outside 198.18.0.0/24 (the test LANs' subnet: replies to them have no
// route and are dropped), with a port that changes once they are used up.
func SpoofedSource(i int) ([4]byte, uint16) {
	n := uint32(1<<8 + i%(1<<17-1<<8))
	return [4]byte{198, 18 + byte(n>>16), byte(n >> 8), byte(n)}, uint16(1024 + i/(1<<17-1<<8))
}

// checksum is the Internet checksum of b with an initial sum.
func checksum(sum uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// SendFrames sends n frames out of ifname in ns with a packet socket,
// each copies times: frame(i) returns the i-th. Bounded by n; a full
// queue (ENOBUFS) loses the frame, as a flood does.
func SendFrames(ns *NS, ifname string, n, copies int, frame func(i int) []byte) error {
	return ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for i := range n {
			f := frame(i)
			copy(sa.Addr[:], f[:6])
			for range copies {
				if err := unix.Sendto(fd, f, 0, sa); err != nil && err != unix.ENOBUFS {
					return fmt.Errorf("send: %w", err)
				}
			}
		}
		return nil
	})
}
