package vrrpnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/govs/govs/internal/vrrp"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// scope maps keepalived's scope names onto the kernel's values.
func scope(s string) (netlink.Scope, error) {
	switch s {
	case "", "global", "universe":
		return netlink.SCOPE_UNIVERSE, nil
	case "site":
		return netlink.SCOPE_SITE, nil
	case "link":
		return netlink.SCOPE_LINK, nil
	case "host":
		return netlink.SCOPE_HOST, nil
	case "nowhere":
		return netlink.SCOPE_NOWHERE, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown scope %q", s)
	}
	return netlink.Scope(n), nil
}

func vipDev(inst vrrp.InstanceConfig, v vrrp.VIP) string {
	if v.Dev != "" {
		return v.Dev
	}
	return inst.Interface
}

func nlAddr(v vrrp.VIP) (*netlink.Addr, error) {
	sc, err := scope(v.Scope)
	if err != nil {
		return nil, err
	}
	p := v.Prefix
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Label: v.Label,
		Scope: int(sc),
	}
	if v.Broadcast.IsValid() {
		a.Broadcast = v.Broadcast.AsSlice()
	}
	if v.Peer.IsValid() {
		a.Peer = &net.IPNet{IP: v.Peer.AsSlice(), Mask: net.CIDRMask(v.Peer.BitLen(), v.Peer.BitLen())}
	}
	if p.Addr().Is6() {
		// A VIP must answer at once, not after duplicate address detection.
		// It is added deprecated (preferred lifetime 0, valid forever), as
		// keepalived adds it: the kernel then never picks it as the source
		// of the director's own connections, so health checks leave from
		// the interface's own address and get their replies.
		a.Flags = unix.IFA_F_NODAD
		a.PreferedLft, a.ValidLft = 0, infiniteLifetime
	}
	if v.PreferredLft != nil {
		a.PreferedLft, a.ValidLft = int(*v.PreferredLft), infiniteLifetime
	}
	for _, f := range []struct {
		on   bool
		flag int
	}{
		{v.Flags.Home, unix.IFA_F_HOMEADDRESS}, {v.Flags.NoDAD, unix.IFA_F_NODAD},
		{v.Flags.ManageTempAddr, unix.IFA_F_MANAGETEMPADDR}, {v.Flags.NoPrefixRoute, unix.IFA_F_NOPREFIXROUTE},
		{v.Flags.AutoJoin, unix.IFA_F_MCAUTOJOIN},
	} {
		if f.on {
			a.Flags |= f.flag
		}
	}
	return a, nil
}

// infiniteLifetime is the kernel's INFINITY_LIFE_TIME.
const infiniteLifetime = 0xffffffff

// allVIPs returns the advertised and the excluded addresses.
func allVIPs(inst vrrp.InstanceConfig) []vrrp.VIP {
	return append(append([]vrrp.VIP(nil), inst.VIPs...), inst.ExcludedVIPs...)
}

// addVIPs adds every virtual address; one already present is fine.
func addVIPs(inst vrrp.InstanceConfig) error {
	var errs []error
	for _, v := range allVIPs(inst) {
		if err := changeVIP(inst, v, true); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeVIPs removes every virtual address; one already gone is fine.
func removeVIPs(inst vrrp.InstanceConfig) error {
	var errs []error
	for _, v := range allVIPs(inst) {
		if err := changeVIP(inst, v, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// hasVIPs reports whether every advertised address of inst is on its
// interface: what a run that died as MASTER leaves behind (a clean stop
// removes them).
func hasVIPs(inst vrrp.InstanceConfig) (bool, error) {
	if len(inst.VIPs) == 0 {
		return false, nil
	}
	for _, v := range inst.VIPs {
		link, err := netlink.LinkByName(vipDev(inst, v))
		if err != nil {
			return false, fmt.Errorf("find interface %s for %v: %w", vipDev(inst, v), v.Prefix, err)
		}
		family := netlink.FAMILY_V4
		if v.Prefix.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		addrs, err := netlink.AddrList(link, family)
		if err != nil {
			return false, fmt.Errorf("list addresses of %s: %w", vipDev(inst, v), err)
		}
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
			ip, ok := netip.AddrFromSlice(a.IP)
			return ok && ip.Unmap() == v.Prefix.Addr()
		}) {
			return false, nil
		}
	}
	return true, nil
}

func changeVIP(inst vrrp.InstanceConfig, v vrrp.VIP, add bool) error {
	dev := vipDev(inst, v)
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("find interface %s for %v: %w", dev, v.Prefix, err)
	}
	a, err := nlAddr(v)
	if err != nil {
		return fmt.Errorf("address %v: %w", v.Prefix, err)
	}
	if add {
		if err := netlink.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %v to %s: %w", v.Prefix, dev, err)
		}
		return nil
	}
	if err := netlink.AddrDel(link, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("remove %v from %s: %w", v.Prefix, dev, err)
	}
	return nil
}

// announcer sends an instance's gratuitous ARPs / unsolicited NAs off the
// VRRP event loop: a paced burst (garp_interval, gna_interval) takes
// repeat × interval, and opening an NDP socket may wait for a tentative
// link-local address, neither of which may delay adverts. Only the
// runner's goroutine calls start and stop.
type announcer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// start sends a burst in the background, replacing one still in flight.
func (a *announcer) start(ctx context.Context, inst vrrp.InstanceConfig, repeat int, log *slog.Logger) {
	a.stop()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	a.cancel, a.done = cancel, done
	go func() {
		defer close(done)
		if err := announce(ctx, inst, repeat); err != nil && ctx.Err() == nil {
			log.Warn("VRRP gratuitous ARP/NA", "instance", inst.Name, "err", err)
		}
	}()
}

// stop ends the burst in flight, if any, and waits for it: once an
// instance gives its VIPs up it must not claim them again.
func (a *announcer) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	a.cancel, a.done = nil, nil
}

// pause waits d unless ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// announce sends repeat gratuitous ARP requests (IPv4) or unsolicited
// neighbour advertisements (IPv6) for every virtual address, so switches
// and neighbours move the address to this host's MAC; messages on one
// interface are garp_interval (gna_interval) apart.
func announce(ctx context.Context, inst vrrp.InstanceConfig, repeat int) error {
	byDev := map[string][]netip.Addr{}
	var devs []string
	for _, v := range allVIPs(inst) {
		d := vipDev(inst, v)
		if _, ok := byDev[d]; !ok {
			devs = append(devs, d)
		}
		byDev[d] = append(byDev[d], v.Prefix.Addr())
	}
	var errs []error
	for _, dev := range devs {
		addrs := byDev[dev]
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			errs = append(errs, fmt.Errorf("announce on %s: %w", dev, err))
			continue
		}
		if len(ifi.HardwareAddr) != 6 {
			continue // no link layer to announce on (lo, tunnels)
		}
		var v4, v6 []netip.Addr
		for _, a := range addrs {
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
		if len(v4) > 0 {
			errs = append(errs, garp(ctx, ifi, v4, repeat, inst.GARP.Interval))
		}
		if len(v6) > 0 {
			errs = append(errs, unsolicitedNA(ctx, ifi, v6, repeat, inst.GARP.NAInterval))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.Join(errs...)
}

func garp(ctx context.Context, ifi *net.Interface, addrs []netip.Addr, repeat int, gap time.Duration) error {
	c, err := arp.Dial(ifi)
	if err != nil {
		return fmt.Errorf("open ARP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	sent := 0
	for i := 0; i < repeat; i++ {
		for _, a := range addrs {
			if sent > 0 && pause(ctx, gap) != nil {
				return nil
			}
			p, err := arp.NewPacket(arp.OperationRequest, ifi.HardwareAddr, a, ethernet.Broadcast, a)
			if err != nil {
				return fmt.Errorf("build gratuitous ARP for %v: %w", a, err)
			}
			if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
				return fmt.Errorf("send gratuitous ARP for %v on %s: %w", a, ifi.Name, err)
			}
			sent++
		}
	}
	return nil
}

func unsolicitedNA(ctx context.Context, ifi *net.Interface, addrs []netip.Addr, repeat int, gap time.Duration) error {
	var (
		c   *ndp.Conn
		err error
	)
	// A fresh interface's link-local address may still be tentative.
	for i := 0; i < 20; i++ {
		if c, _, err = ndp.Listen(ifi, ndp.LinkLocal); err == nil {
			break
		}
		if pause(ctx, 100*time.Millisecond) != nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("open NDP socket on %s: %w", ifi.Name, err)
	}
	defer c.Close()
	allNodes := netip.MustParseAddr("ff02::1")
	sent := 0
	for i := 0; i < repeat; i++ {
		for _, a := range addrs {
			if sent > 0 && pause(ctx, gap) != nil {
				return nil
			}
			m := &ndp.NeighborAdvertisement{Override: true, TargetAddress: a,
				Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}}}
			if err := c.WriteTo(m, nil, allNodes); err != nil {
				return fmt.Errorf("send unsolicited NA for %v on %s: %w", a, ifi.Name, err)
			}
			sent++
		}
	}
	return nil
}

// primaryAddr picks the instance's own address: unicast_src_ip, else the
// interface's first IPv4 address (IPv6: its link-local address, RFC 5798 §5.1.2.1).
func primaryAddr(inst vrrp.InstanceConfig, ifi *net.Interface) (netip.Addr, error) {
	if inst.UnicastSrc.IsValid() {
		return inst.UnicastSrc, nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list addresses of %s: %w", ifi.Name, err)
	}
	vips := map[netip.Addr]bool{}
	for _, v := range allVIPs(inst) {
		vips[v.Prefix.Addr()] = true
	}
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || vips[p.Addr()] {
			continue
		}
		if ad := p.Addr(); (!inst.IPv6 && ad.Is4()) || (inst.IPv6 && ad.Is6() && ad.IsLinkLocalUnicast()) {
			return ad, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no usable %s address", ifi.Name, map[bool]string{false: "IPv4", true: "link-local IPv6"}[inst.IPv6])
}
