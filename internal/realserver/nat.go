package realserver

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A NAT real server holds no VIP and needs no ARP settings: the director
// rewrites the destination to this host's own address. What it needs is
// that its replies go back through the director, which rewrites their
// source to the VIP: its route to the clients, normally the default route,
// must point at a director address (with two directors, the address VRRP
// moves between them). govs checks that and changes nothing: the default
// route is the administrator's, and changing it could cut them off.

// Route is where the host sends packets for an address: a gateway (or
// none: on link) out of a device.
type Route struct {
	Gateway netip.Addr
	Dev     string
}

func (r Route) String() string {
	if !r.Gateway.IsValid() {
		return "on link via " + r.Dev
	}
	return fmt.Sprintf("via %s dev %s", r.Gateway, r.Dev)
}

// CheckNAT reports whether the default route of each gateway's family
// goes through that gateway. routes holds the default route by family
// (true: IPv4); a missing one is reported as none.
func CheckNAT(gateways []netip.Addr, routes map[bool]Route) []Item {
	var items []Item
	for _, gw := range gateways {
		fam := "IPv4"
		if gw.Is6() {
			fam = "IPv6"
		}
		it := Item{What: "default route (" + fam + ")", Want: "via " + gw.String(), Have: "none"}
		if r, ok := routes[gw.Is4()]; ok {
			it.Have = r.String()
			it.OK = r.Gateway == gw
		}
		if !it.OK {
			it.Want += fmt.Sprintf(" (ip %sroute replace default via %s)", map[bool]string{true: "", false: "-6 "}[gw.Is4()], gw)
		}
		items = append(items, it)
	}
	return items
}

// DefaultRoutes reads the default route of each family, by family (true:
// IPv4), from the main table.
func (h *LinuxHost) DefaultRoutes() (map[bool]Route, error) {
	out := map[bool]Route{}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		routes, err := h.nl.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			var rt Route
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				rt.Gateway = gw.Unmap()
			}
			if l, err := h.nl.LinkByIndex(r.LinkIndex); err == nil {
				rt.Dev = l.Attrs().Name
			}
			out[fam == unix.AF_INET] = rt
			break
		}
	}
	return out, nil
}
