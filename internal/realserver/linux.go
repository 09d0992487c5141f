package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/decap"
)

// LinuxHost is the Host of the network namespace it was created in: netlink
// for devices and addresses, files under ProcSys for sysctls. /proc/sys/net
// shows the namespace of the thread that opens it, so a LinuxHost used from
// inside another namespace (netns.Set on a locked thread) acts there.
type LinuxHost struct {
	nl *netlink.Handle
	// ProcSys is the sysctl tree, normally /proc/sys.
	ProcSys string
}

// NewLinuxHost opens a netlink handle in the calling thread's namespace.
func NewLinuxHost() (*LinuxHost, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return &LinuxHost{nl: h, ProcSys: "/proc/sys"}, nil
}

// TunnelSupported reports whether the kernel decapsulates tunnelled
// packets itself: the fallback device (tunl0, or ip6tnl0 for ipv6) exists,
// or, with create, can be created (loading the module). A kernel without
// the module needs govs's XDP decapsulation (internal/decap).
func (h *LinuxHost) TunnelSupported(ipv6, create bool) (bool, error) {
	name, link := TunnelDev4, netlink.Link(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: TunnelDev4}})
	if ipv6 {
		name, link = TunnelDev6, &netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: TunnelDev6}}
	}
	if _, err := h.nl.LinkByName(name); err == nil {
		return true, nil
	}
	if !create {
		return false, nil
	}
	err := h.nl.LinkAdd(link)
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return true, nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return false, nil
	}
	return false, fmt.Errorf("probe %s tunnel support: %w", link.Type(), err)
}

// Close releases the netlink handle.
func (h *LinuxHost) Close() { h.nl.Close() }

// Observe implements Host.
func (h *LinuxHost) Observe(devs, sysctls []string) (Observed, error) {
	obs := Observed{Links: map[string]LinkState{}, Addrs: map[string][]netip.Prefix{}, Sysctls: map[string]string{}}
	for _, d := range devs {
		link, err := h.nl.LinkByName(d)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return obs, fmt.Errorf("look up device %s: %w", d, err)
		}
		obs.Links[d] = LinkState{Up: link.Attrs().Flags&net.FlagUp != 0}
		if x := link.Attrs().Xdp; x != nil && x.Attached {
			info, err := decap.Status(d)
			if err != nil && !errors.Is(err, decap.ErrOtherProgram) {
				return obs, err
			}
			if info.Attached {
				if obs.Decaps == nil {
					obs.Decaps = map[string]Decap{}
				}
				obs.Decaps[d] = Decap{Interface: d, VIPs: info.VIPs, GUEPorts: info.GUEPorts}
			}
		}
		addrs, err := h.addrList(link)
		if err != nil {
			return obs, fmt.Errorf("list addresses of %s: %w", d, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ones, _ := a.Mask.Size()
			obs.Addrs[d] = append(obs.Addrs[d], netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	for _, k := range sysctls {
		v, err := h.ReadSysctl(k)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return obs, err
		}
		obs.Sysctls[k] = v
	}
	return obs, nil
}

func (h *LinuxHost) addrList(link netlink.Link) ([]netlink.Addr, error) {
	var err error
	for range 5 {
		var addrs []netlink.Addr
		addrs, err = h.nl.AddrList(link, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return addrs, err
		}
	}
	return nil, err
}

func (h *LinuxHost) sysctlPath(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return "", fmt.Errorf("bad sysctl key %q", key)
	}
	return filepath.Join(h.ProcSys, key), nil
}

// ReadSysctl implements Host.
func (h *LinuxHost) ReadSysctl(key string) (string, error) {
	p, err := h.sysctlPath(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", Name(key), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (h *LinuxHost) writeSysctl(key, value string) error {
	p, err := h.sysctlPath(key)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("write sysctl %s: %w", Name(key), err)
	}
	_, err = f.WriteString(value + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write sysctl %s: %w", Name(key), err)
	}
	return nil
}

// Apply implements Host.
func (h *LinuxHost) Apply(a Action) error {
	switch a.Kind {
	case CreateTunnel:
		var link netlink.Link = &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: a.Tunnel.Name}}
		if a.Tunnel.IPv6 {
			link = &netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: a.Tunnel.Name}}
		}
		err := h.nl.LinkAdd(link)
		// Adding the device may load the tunnel module, which creates the
		// fallback device itself and makes our request a duplicate.
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("create %s: the kernel has no %s tunnel support: %w", a.Tunnel.Name, link.Type(), err)
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", a.Tunnel.Name, err)
		}
		return nil
	case LinkUp, LinkDown:
		link, err := h.nl.LinkByName(a.Tunnel.Name)
		if err != nil {
			return fmt.Errorf("look up device %s: %w", a.Tunnel.Name, err)
		}
		if a.Kind == LinkUp {
			err = h.nl.LinkSetUp(link)
		} else {
			err = h.nl.LinkSetDown(link)
		}
		if err != nil {
			return fmt.Errorf("set %s up/down: %w", a.Tunnel.Name, err)
		}
		return nil
	case AddAddr, DelAddr:
		link, err := h.nl.LinkByName(a.Addr.Dev)
		if err != nil {
			return fmt.Errorf("look up device %s: %w", a.Addr.Dev, err)
		}
		p := a.Addr.Prefix
		addr := &netlink.Addr{
			IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
			Label: a.Addr.Label,
		}
		if p.Addr().Is6() {
			// Duplicate address detection on lo would only delay the address:
			// the VIP is meant to exist on several hosts.
			addr.Flags = unix.IFA_F_NODAD
		}
		if a.Kind == AddAddr {
			err = h.nl.AddrAdd(link, addr)
			if errors.Is(err, unix.EEXIST) {
				err = nil
			}
		} else {
			err = h.nl.AddrDel(link, addr)
			if errors.Is(err, unix.EADDRNOTAVAIL) {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("change address %s on %s: %w", p, a.Addr.Dev, err)
		}
		return nil
	case SetSysctl:
		return h.writeSysctl(a.Setting.Key, a.Setting.Value)
	case AttachDecap:
		return decap.Attach(a.Decap.Interface, a.Decap.VIPs, a.Decap.GUEPorts...)
	case DetachDecap:
		return decap.Detach(a.Decap.Interface)
	}
	return fmt.Errorf("apply: unknown action kind %d", a.Kind)
}
