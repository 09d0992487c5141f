package director

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/desired"
)

// LocalAddrs puts FullNAT local addresses on their interfaces (a
// local_address_group line naming one): the real servers answer them, so
// the director must own them (ARP, NDP). Add reports whether the address
// was added (false: it was there already, and is not the director's to
// remove); Remove takes an address away.
type LocalAddrs interface {
	Add(l desired.LocalAddr) (added bool, err error)
	Remove(l desired.LocalAddr) error
}

// kernelLocalAddrs is LocalAddrs on the kernel's interfaces: a host
// address (/32, /128) without duplicate address detection.
type kernelLocalAddrs struct{}

func localNLAddr(a netip.Addr) *netlink.Addr {
	bits := a.BitLen()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, bits)}}
	if a.Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	return addr
}

func (kernelLocalAddrs) Add(l desired.LocalAddr) (bool, error) {
	link, err := netlink.LinkByName(l.Interface)
	if err != nil {
		return false, fmt.Errorf("local address %s: interface %s: %w", l.Addr, l.Interface, err)
	}
	if err := netlink.AddrAdd(link, localNLAddr(l.Addr)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return false, nil
		}
		return false, fmt.Errorf("add local address %s to %s: %w", l.Addr, l.Interface, err)
	}
	return true, nil
}

func (kernelLocalAddrs) Remove(l desired.LocalAddr) error {
	link, err := netlink.LinkByName(l.Interface)
	if err != nil {
		return nil // gone with its interface
	}
	if err := netlink.AddrDel(link, localNLAddr(l.Addr)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove local address %s from %s: %w", l.Addr, l.Interface, err)
	}
	return nil
}

// applyLocalAddrsLocked holds the plan's local addresses and gives back
// those it added that the plan no longer has.
func (d *Director) applyLocalAddrsLocked(plan *desired.Plan) error {
	if d.dp == nil {
		return nil
	}
	want := map[desired.LocalAddr]bool{}
	for _, l := range plan.LocalAddrs {
		want[l] = true
		if _, ok := d.localAddrs[l]; ok {
			continue
		}
		added, err := d.opts.LocalAddrs.Add(l)
		if err != nil {
			return err
		}
		d.localAddrs[l] = added
		if added {
			d.log.Info("local address added for FullNAT", "addr", l.Addr, "interface", l.Interface)
		}
	}
	for l, added := range d.localAddrs {
		if want[l] {
			continue
		}
		delete(d.localAddrs, l)
		if added {
			if err := d.opts.LocalAddrs.Remove(l); err != nil {
				d.log.Warn("remove local address", "err", err)
			}
		}
	}
	return nil
}

// removeLocalAddrsLocked gives back every local address the director added.
func (d *Director) removeLocalAddrsLocked() {
	for l, added := range d.localAddrs {
		if added {
			if err := d.opts.LocalAddrs.Remove(l); err != nil {
				d.log.Warn("remove local address", "err", err)
			}
		}
	}
	d.localAddrs = map[desired.LocalAddr]bool{}
}
