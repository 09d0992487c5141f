package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/govs/govs/internal/check/state"
)

const (
	protoICMP   = 1
	protoICMPv6 = 58
)

type pingProber struct{ r resolved }

// listen opens an unprivileged ping socket when ping_group_range allows it,
// and a raw ICMP socket (root or CAP_NET_RAW) otherwise. It reports whether
// the socket is a ping socket, on which the kernel owns the echo identifier.
func (p *pingProber) listen() (*icmp.PacketConn, bool, error) {
	v6 := p.r.target.Addr().Is6()
	src := "0.0.0.0"
	if v6 {
		src = "::"
	}
	if p.r.BindTo.IsValid() {
		src = p.r.BindTo.String()
	}
	dgram, raw := "udp4", "ip4:icmp"
	if v6 {
		dgram, raw = "udp6", "ip6:ipv6-icmp"
	}
	if c, err := icmp.ListenPacket(dgram, src); err == nil {
		return c, true, nil
	}
	c, err := icmp.ListenPacket(raw, src)
	if err != nil {
		return nil, false, fmt.Errorf("open ICMP socket: %w", err)
	}
	return c, false, nil
}

// Probe sends one echo request and waits for the matching reply.
func (p *pingProber) Probe(ctx context.Context) state.Result {
	c, dgram, err := p.listen()
	if err != nil {
		return state.Result{Err: err}
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.SetDeadline(deadline(ctx, p.r.ConnectTimeout)); err != nil {
		return fail("set deadline: %v", err)
	}
	var rnd [20]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fail("echo payload: %v", err)
	}
	id, seq := int(binary.BigEndian.Uint16(rnd[0:2])), int(binary.BigEndian.Uint16(rnd[2:4]))
	data := rnd[4:]
	v6 := p.r.target.Addr().Is6()
	var typ, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := protoICMP
	if v6 {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, protoICMPv6
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	// The kernel fills in the ICMPv6 checksum (it needs the pseudo-header).
	wire, err := msg.Marshal(nil)
	if err != nil {
		return fail("marshal echo: %v", err)
	}
	var dst net.Addr = &net.IPAddr{IP: p.r.target.Addr().AsSlice()}
	if dgram {
		dst = &net.UDPAddr{IP: p.r.target.Addr().AsSlice()}
	}
	if _, err := c.WriteTo(wire, dst); err != nil {
		return fail("send echo to %s: %v", p.r.target.Addr(), unwrapOp(err))
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fail("no echo reply from %s: %v", p.r.target.Addr(), unwrapOp(err))
		}
		if !sameHost(from, p.r.target.Addr().AsSlice()) {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, isEcho := m.Body.(*icmp.Echo)
		// A ping socket rewrites the identifier; raw sockets see every
		// reply on the host, so match on what only this probe sent.
		if !isEcho || echo.Seq != seq || !bytes.Equal(echo.Data, data) || (!dgram && echo.ID != id) {
			continue
		}
		return passed()
	}
}

func sameHost(a net.Addr, ip net.IP) bool {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP.Equal(ip)
	case *net.UDPAddr:
		return a.IP.Equal(ip)
	}
	return false
}
