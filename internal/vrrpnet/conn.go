// Package vrrpnet is the OS glue of govs's VRRP: raw protocol-112 sockets
// (multicast or unicast), virtual addresses through netlink, gratuitous ARP
// and unsolicited neighbour advertisements, notify and track scripts, and
// Run, which drives the pure vrrp.Machine instances from real events.
package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/govs/govs/internal/vrrp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// conn is one instance's advert socket: raw IP protocol 112, bound to the
// instance's interface, TTL/hop limit 255, joined to the VRRP group unless
// the instance is unicast.
type conn struct {
	cfg     vrrp.InstanceConfig
	ifi     *net.Interface
	src     netip.Addr
	raw     net.PacketConn
	p4      *ipv4.PacketConn
	p6      *ipv6.PacketConn
	unicast bool
}

func bindToDevice(dev string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, dev)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to device %s: %w", dev, serr)
		}
		return nil
	}
}

func openConn(ctx context.Context, cfg vrrp.InstanceConfig, ifi *net.Interface, src netip.Addr) (*conn, error) {
	c := &conn{cfg: cfg, ifi: ifi, src: src, unicast: len(cfg.UnicastPeers) > 0}
	lc := net.ListenConfig{Control: bindToDevice(ifi.Name)}
	network, any := "ip4:112", "0.0.0.0"
	if cfg.IPv6 {
		network, any = "ip6:112", "::"
	}
	raw, err := lc.ListenPacket(ctx, network, any)
	if err != nil {
		return nil, fmt.Errorf("open VRRP socket on %s: %w", ifi.Name, err)
	}
	c.raw = raw
	if err := c.setup(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("set up VRRP socket on %s: %w", ifi.Name, err)
	}
	return c, nil
}

// ttl is the TTL / hop limit of the instance's adverts: unicast_ttl for
// unicast ones, else the RFC's 255.
func (c *conn) ttl() int {
	if c.unicast && c.cfg.UnicastTTL > 0 {
		return c.cfg.UnicastTTL
	}
	return vrrp.TTL
}

func (c *conn) setup() error {
	if !c.cfg.IPv6 {
		p := ipv4.NewPacketConn(c.raw)
		c.p4 = p
		return errors.Join(
			p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true),
			p.SetTTL(c.ttl()),
			p.SetMulticastTTL(vrrp.TTL),
			p.SetTOS(0xc0), // DSCP CS6 (network control), as keepalived sends
			p.SetMulticastLoopback(false),
			p.SetMulticastInterface(c.ifi),
			c.join(),
		)
	}
	p := ipv6.NewPacketConn(c.raw)
	c.p6 = p
	return errors.Join(
		p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true),
		p.SetHopLimit(c.ttl()),
		p.SetMulticastHopLimit(vrrp.TTL),
		p.SetTrafficClass(0xc0),
		p.SetMulticastLoopback(false),
		p.SetMulticastInterface(c.ifi),
		c.join(),
	)
}

func (c *conn) join() error {
	if c.unicast {
		return nil
	}
	if c.p4 != nil {
		return c.p4.JoinGroup(c.ifi, &net.IPAddr{IP: c.group().AsSlice()})
	}
	return c.p6.JoinGroup(c.ifi, &net.IPAddr{IP: c.group().AsSlice()})
}

// group is the multicast group of the instance's adverts (Run applies
// WithDefaults, which resolves the IANA group when none is configured).
func (c *conn) group() netip.Addr { return c.cfg.McastGroup }

func (c *conn) Close() error { return c.raw.Close() }

// send encodes and sends one advert to the group or to every unicast peer.
func (c *conn) send(prio uint8) error {
	p := vrrp.Packet{Version: c.cfg.Version, VRID: c.cfg.VRID, Priority: prio, Interval: c.cfg.Interval, Addresses: c.cfg.Addresses()}
	if c.cfg.Version == 2 && c.cfg.AuthPass != "" {
		p.AuthType, p.AuthData = vrrp.AuthPass, vrrp.PassAuth(c.cfg.AuthPass)
	}
	dsts := c.cfg.UnicastPeers
	if !c.unicast {
		dsts = []netip.Addr{c.group()}
	}
	var errs []error
	for _, dst := range dsts {
		b, err := p.Encode(c.src, dst)
		if err != nil {
			return fmt.Errorf("send advert: %w", err)
		}
		to := &net.IPAddr{IP: dst.AsSlice()}
		if c.p4 != nil {
			_, err = c.p4.WriteTo(b, &ipv4.ControlMessage{Src: c.src.AsSlice(), IfIndex: c.ifi.Index}, to)
		} else {
			if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
				to.Zone = c.ifi.Name
			}
			_, err = c.p6.WriteTo(b, &ipv6.ControlMessage{Src: c.src.AsSlice(), IfIndex: c.ifi.Index, HopLimit: c.ttl()}, to)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("send advert to %v: %w", dst, err))
		}
	}
	return errors.Join(errs...)
}

// packet is one read from the socket: an advert or the reason it did not decode.
type packet struct {
	rx  vrrp.Received
	err error
}

// read blocks for the next packet; a non-nil error ends the reader.
func (c *conn) read(buf []byte) (packet, error) {
	var (
		n   int
		src net.Addr
		ttl = -1
		dst netip.Addr
		err error
	)
	if c.p4 != nil {
		var cm *ipv4.ControlMessage
		n, cm, src, err = c.p4.ReadFrom(buf)
		if err == nil && cm != nil {
			ttl = cm.TTL
			dst, _ = netip.AddrFromSlice(cm.Dst.To4())
		}
	} else {
		var cm *ipv6.ControlMessage
		n, cm, src, err = c.p6.ReadFrom(buf)
		if err == nil && cm != nil {
			ttl = cm.HopLimit
			dst, _ = netip.AddrFromSlice(cm.Dst.To16())
		}
	}
	if err != nil {
		return packet{}, err
	}
	ia, ok := src.(*net.IPAddr)
	if !ok {
		return packet{err: fmt.Errorf("unexpected source address %v", src)}, nil
	}
	s, _ := netip.AddrFromSlice(ia.IP)
	s = s.Unmap()
	if c.p4 == nil {
		s = netip.AddrFrom16(s.As16())
	}
	// A raw socket sees every group the interface has joined; adverts sent
	// to another group belong to another set of routers.
	if !c.unicast && dst.IsMulticast() && dst != c.group() {
		return packet{rx: vrrp.Received{Src: s, Dst: dst, TTL: ttl}, err: fmt.Errorf("advert to group %v, not %v", dst, c.group())}, nil
	}
	p, derr := vrrp.Decode(buf[:n], s, dst)
	if derr != nil {
		return packet{rx: vrrp.Received{Src: s, Dst: dst, TTL: ttl}, err: derr}, nil
	}
	return packet{rx: vrrp.Received{Packet: p, Src: s, Dst: dst, TTL: ttl}}, nil
}
