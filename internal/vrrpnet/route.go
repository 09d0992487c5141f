package vrrpnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/govs/govs/internal/vrrp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// protoKeepalived is RTPROT_KEEPALIVED, the origin keepalived gives its
// routes: tools that list them (`ip route show proto keepalived`) keep
// working after a move to govs.
const protoKeepalived = 18

var routeTypes = map[string]int{"": unix.RTN_UNICAST, "blackhole": unix.RTN_BLACKHOLE,
	"unreachable": unix.RTN_UNREACHABLE, "prohibit": unix.RTN_PROHIBIT, "throw": unix.RTN_THROW}

// nlRoute is r as the kernel takes it, the interfaces resolved now.
func nlRoute(r vrrp.Route) (*netlink.Route, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	dst := r.Dst.Masked()
	nr := &netlink.Route{
		Family:   netlink.FAMILY_V4,
		Dst:      &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())},
		Type:     routeTypes[r.Type],
		Table:    r.Table,
		Priority: r.Metric,
		Protocol: netlink.RouteProtocol(r.Protocol),
	}
	if dst.Addr().Is6() {
		nr.Family = netlink.FAMILY_V6
	}
	if r.Protocol == 0 {
		nr.Protocol = protoKeepalived
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Dev != "" {
		link, err := netlink.LinkByName(r.Dev)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", r.Dev, err)
		}
		nr.LinkIndex = link.Attrs().Index
	}
	var flags int
	if r.OnLink {
		flags = int(netlink.FLAG_ONLINK)
	}
	switch len(r.Via) {
	case 0:
	case 1:
		nr.Gw, nr.Flags = r.Via[0].AsSlice(), flags
	default:
		for _, g := range r.Via {
			nr.MultiPath = append(nr.MultiPath, &netlink.NexthopInfo{LinkIndex: nr.LinkIndex, Gw: g.AsSlice(), Flags: flags})
		}
		nr.LinkIndex = 0
	}
	sc, err := scope(r.Scope)
	if err != nil {
		return nil, err
	}
	// As ip route: a unicast route with no gateway reaches its prefix
	// directly, on the link.
	if r.Scope == "" && r.Type == "" && len(r.Via) == 0 {
		sc = netlink.SCOPE_LINK
	}
	nr.Scope = sc
	return nr, nil
}

// AddRoute adds r. added is false when the kernel had the route already:
// it is not govs's to remove then.
func AddRoute(r vrrp.Route) (added bool, err error) {
	nr, err := nlRoute(r)
	if err != nil {
		return false, fmt.Errorf("route %v: %w", r, err)
	}
	if err := netlink.RouteAdd(nr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("add route %v: %w", r, err)
	}
	return true, nil
}

// RemoveRoute removes r; one already gone (with its interface, say) is fine.
func RemoveRoute(r vrrp.Route) error {
	nr, err := nlRoute(r)
	if err != nil {
		if r.Dev != "" && errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		return fmt.Errorf("route %v: %w", r, err)
	}
	if err := netlink.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove route %v: %w", r, err)
	}
	return nil
}

// AddAddress puts a static_ipaddress entry on its interface; added is
// false when it was there already.
func AddAddress(v vrrp.VIP) (added bool, err error) {
	link, err := netlink.LinkByName(v.Dev)
	if err != nil {
		return false, fmt.Errorf("find interface %s for %v: %w", v.Dev, v.Prefix, err)
	}
	a, err := nlAddr(v)
	if err != nil {
		return false, fmt.Errorf("address %v: %w", v.Prefix, err)
	}
	if err := netlink.AddrAdd(link, a); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("add %v to %s: %w", v.Prefix, v.Dev, err)
	}
	return true, nil
}

// RemoveAddress takes a static_ipaddress entry away.
func RemoveAddress(v vrrp.VIP) error {
	return changeVIP(vrrp.InstanceConfig{Interface: v.Dev}, v, false)
}

var ruleActions = map[string]uint8{"": unix.RTN_UNICAST, "blackhole": unix.RTN_BLACKHOLE,
	"unreachable": unix.RTN_UNREACHABLE, "prohibit": unix.RTN_PROHIBIT}

func prefixNet(p netip.Prefix) *net.IPNet {
	if !p.IsValid() {
		return nil
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// nlRule is r as the kernel takes it.
func nlRule(r vrrp.Rule) (*netlink.Rule, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.Family6() {
		nr.Family = netlink.FAMILY_V6
	}
	nr.Src, nr.Dst = prefixNet(r.From), prefixNet(r.To)
	nr.Mark = r.Fwmark
	if r.FwmarkMask != 0 {
		m := r.FwmarkMask
		nr.Mask = &m
	}
	nr.IifName, nr.OifName, nr.Invert = r.IIF, r.OIF, r.Invert
	if r.Priority != 0 {
		nr.Priority = r.Priority
	}
	nr.Table = r.Table
	nr.Type = ruleActions[r.Action]
	nr.Protocol = protoKeepalived
	return nr, nil
}

// AddRule adds r; added is false when the kernel had it already.
func AddRule(r vrrp.Rule) (added bool, err error) {
	nr, err := nlRule(r)
	if err != nil {
		return false, fmt.Errorf("rule %v: %w", r, err)
	}
	if err := netlink.RuleAdd(nr); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("add rule %v: %w", r, err)
	}
	return true, nil
}

// RemoveRule removes r; one already gone is fine.
func RemoveRule(r vrrp.Rule) error {
	nr, err := nlRule(r)
	if err != nil {
		return fmt.Errorf("rule %v: %w", r, err)
	}
	if err := netlink.RuleDel(nr); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("remove rule %v: %w", r, err)
	}
	return nil
}

// addRoutes adds an instance's virtual_routes once its addresses are up
// (a route's src may be one of them); addRules then adds its rules.
func addRoutes(inst vrrp.InstanceConfig) error { return each(inst.Routes, false, AddRoute) }
func addRules(inst vrrp.InstanceConfig) error  { return each(inst.Rules, false, AddRule) }

// removeRoutes and removeRules take them away, last first.
func removeRoutes(inst vrrp.InstanceConfig) error {
	return each(inst.Routes, true, func(r vrrp.Route) (bool, error) { return true, RemoveRoute(r) })
}
func removeRules(inst vrrp.InstanceConfig) error {
	return each(inst.Rules, true, func(r vrrp.Rule) (bool, error) { return true, RemoveRule(r) })
}

// each applies f to every item (backwards when reverse), going on past
// failures, and returns them all.
func each[T any](items []T, reverse bool, f func(T) (bool, error)) error {
	var errs []error
	for i := range items {
		if reverse {
			i = len(items) - 1 - i
		}
		if _, err := f(items[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
