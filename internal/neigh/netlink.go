package neigh

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkKernel is the Kernel of one network namespace, through netlink.
type NetlinkKernel struct {
	h  *netlink.Handle
	ns *netns.NsHandle
}

// NewNetlinkKernel opens netlink in namespace ns, or in the calling thread's
// namespace when ns is nil.
func NewNetlinkKernel(ns *netns.NsHandle) (*NetlinkKernel, error) {
	var h *netlink.Handle
	var err error
	if ns == nil {
		h, err = netlink.NewHandle()
	} else {
		h, err = netlink.NewHandleAt(*ns)
	}
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &NetlinkKernel{h: h, ns: ns}, nil
}

// Close releases the netlink handle.
func (k *NetlinkKernel) Close() { k.h.Close() }

// RouteTo implements Kernel.
func (k *NetlinkKernel) RouteTo(ip netip.Addr) (Route, error) {
	routes, err := k.h.RouteGet(ip.AsSlice())
	if err != nil {
		return Route{}, fmt.Errorf("get route: %w", err)
	}
	for _, r := range routes {
		switch r.Type {
		case unix.RTN_LOCAL:
			return Route{}, fmt.Errorf("%s is a local address", ip)
		case unix.RTN_UNICAST:
		default:
			return Route{}, fmt.Errorf("route to %s is not unicast (type %d)", ip, r.Type)
		}
		nh := ip
		if gw, ok := netip.AddrFromSlice(r.Gw); ok && gw.IsValid() && !gw.IsUnspecified() {
			nh = gw.Unmap()
		}
		if r.LinkIndex == 0 {
			continue
		}
		src, _ := netip.AddrFromSlice(r.Src)
		return Route{Ifindex: r.LinkIndex, NextHop: nh, Src: src.Unmap()}, nil
	}
	return Route{}, fmt.Errorf("no route to %s", ip)
}

// Neighbours implements Kernel.
func (k *NetlinkKernel) Neighbours() ([]Entry, error) {
	var out []Entry
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var list []netlink.Neigh
		var err error
		for range 5 {
			list, err = k.h.NeighList(0, fam)
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("list neighbours: %w", err)
		}
		for _, n := range list {
			if e, ok := entryOf(n, false); ok {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func entryOf(n netlink.Neigh, deleted bool) (Entry, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok || n.Flags&netlink.NTF_PROXY != 0 {
		return Entry{}, false
	}
	return Entry{IP: ip.Unmap(), Ifindex: n.LinkIndex, MAC: n.HardwareAddr, State: State(n.State), Deleted: deleted}, true
}

// Subscribe implements Kernel.
func (k *NetlinkKernel) Subscribe(done <-chan struct{}) (<-chan Entry, error) {
	in := make(chan netlink.NeighUpdate, 64)
	opts := netlink.NeighSubscribeOptions{Namespace: k.ns}
	if err := netlink.NeighSubscribeWithOptions(in, done, opts); err != nil {
		return nil, fmt.Errorf("subscribe to neighbour events: %w", err)
	}
	out := make(chan Entry, 64)
	go func() {
		defer close(out)
		for {
			select {
			case <-done:
				return
			case u, ok := <-in:
				if !ok {
					return
				}
				e, ok := entryOf(u.Neigh, u.Type == unix.RTM_DELNEIGH)
				if !ok {
					continue
				}
				select {
				case out <- e:
				case <-done:
					return
				}
			}
		}
	}()
	return out, nil
}

// Solicit implements Kernel. NTF_USE makes the kernel act as if a packet
// were waiting for the entry: it creates it if needed and sends an ARP
// request or neighbour solicitation (or a unicast probe for a STALE entry),
// leaving the entry to the kernel's usual timers.
func (k *NetlinkKernel) Solicit(ifindex int, ip netip.Addr) error {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	n := &netlink.Neigh{LinkIndex: ifindex, Family: fam, IP: ip.AsSlice(), State: netlink.NUD_NONE, Flags: netlink.NTF_USE}
	if err := k.h.NeighSet(n); err != nil {
		return fmt.Errorf("solicit %s: %w", ip, err)
	}
	return nil
}
