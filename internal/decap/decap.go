// Package decap is the real server's side of TUN forwarding on a kernel
// without the ipip / ip6tnl modules: it attaches govs's decapsulation XDP
// program (bpf/decap.c) to the interface the director's packets arrive on.
// The program strips the outer header of IP-in-IP and IPv6-in-IP packets
// to this host's VIPs and passes the inner packet to the kernel, which
// delivers it to the VIP on lo, as in DR.
//
// The program is attached through netlink, not as a BPF link, so it stays
// attached when the process that attached it exits (as `ip link set dev X
// xdp obj ...` does); Attach, Detach and Status find it again by its name.
package decap

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ProgramName is the program's name in the kernel (bpftool prog, ip link).
const ProgramName = "govs_decap"

// ErrOtherProgram is returned for an interface with another XDP program
// than govs's decapsulation attached: it is left alone.
var ErrOtherProgram = errors.New("another XDP program is attached")

// Counters are what the attached program counted.
type Counters struct {
	// Decapsulated packets were passed on as their inner packet; NotOurs
	// were tunnelled to an address that is no VIP here; Malformed were
	// truncated or fragmented. Both of the latter are passed unchanged.
	Decapsulated, NotOurs, Malformed uint64
}

// Info is the program attached to an interface, if any.
type Info struct {
	Attached bool
	VIPs     []netip.Addr
	// GUEPorts are the UDP ports it decapsulates GUE on.
	GUEPorts []uint16
	Counters Counters
}

// load loads the program with vips and GUE ports in its maps.
func load(vips []netip.Addr, guePorts ...uint16) (*decapObjects, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	var objs decapObjects
	if err := loadDecapObjects(&objs, nil); err != nil {
		return nil, fmt.Errorf("load decapsulation program: %w", err)
	}
	for _, v := range vips {
		if err := objs.DecapVips.Put(keyOf(v), uint8(1)); err != nil {
			objs.Close()
			return nil, fmt.Errorf("add VIP %s: %w", v, err)
		}
	}
	for _, p := range guePorts {
		if err := objs.DecapPorts.Put(htons(p), uint8(1)); err != nil {
			objs.Close()
			return nil, fmt.Errorf("add GUE port %d: %w", p, err)
		}
	}
	return &objs, nil
}

func keyOf(a netip.Addr) decapDecapVip {
	a = a.Unmap()
	if a.Is4() {
		k := decapDecapVip{Family: 4}
		copy(k.Addr[:4], a.AsSlice())
		return k
	}
	return decapDecapVip{Family: 6, Addr: a.As16()}
}

// htons is the port as the program's memory holds a network-order one.
func htons(p uint16) uint16 { return p<<8 | p>>8 }

// Attach attaches the program for vips (IP-in-IP, and GUE on guePorts) to
// interface ifname, replacing a govs decapsulation program there (so the
// VIPs can change); it refuses to replace another XDP program. Native XDP
// is tried first, then generic.
func Attach(ifname string, vips []netip.Addr, guePorts ...uint16) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("attach decapsulation to %s: %w", ifname, err)
	}
	if cur, err := attached(link); err != nil {
		return fmt.Errorf("attach decapsulation to %s: %w", ifname, err)
	} else if cur != nil {
		defer cur.Close()
	}
	objs, err := load(vips, guePorts...)
	if err != nil {
		return err
	}
	// The kernel holds the program once it is attached; our references go.
	defer objs.Close()
	fd := objs.GovsDecap.FD()
	err = netlink.LinkSetXdpFdWithFlags(link, fd, unix.XDP_FLAGS_DRV_MODE)
	if err != nil {
		err = netlink.LinkSetXdpFdWithFlags(link, fd, unix.XDP_FLAGS_SKB_MODE)
	}
	if err != nil {
		return fmt.Errorf("attach decapsulation to %s: %w", ifname, err)
	}
	return nil
}

// attached returns the govs program attached to link, nil when there is
// none, and an error when another XDP program is.
func attached(link netlink.Link) (*ebpf.Program, error) {
	x := link.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId == 0 {
		return nil, nil
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId))
	if err != nil {
		return nil, fmt.Errorf("open the attached XDP program %d: %w", x.ProgId, err)
	}
	info, err := p.Info()
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("read the attached XDP program %d: %w", x.ProgId, err)
	}
	if info.Name != ProgramName {
		p.Close()
		return nil, fmt.Errorf("%w (%q, id %d)", ErrOtherProgram, info.Name, x.ProgId)
	}
	return p, nil
}

// Detach removes the govs decapsulation program from ifname; without one
// it does nothing, and another XDP program is left alone (an error).
func Detach(ifname string) error {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("detach decapsulation from %s: %w", ifname, err)
	}
	p, err := attached(link)
	if err != nil {
		return fmt.Errorf("detach decapsulation from %s: %w", ifname, err)
	}
	if p == nil {
		return nil
	}
	p.Close()
	flags := unix.XDP_FLAGS_DRV_MODE
	if link.Attrs().Xdp.AttachMode == nl.XDP_ATTACHED_SKB {
		flags = unix.XDP_FLAGS_SKB_MODE
	}
	if err := netlink.LinkSetXdpFdWithFlags(link, -1, flags); err != nil {
		return fmt.Errorf("detach decapsulation from %s: %w", ifname, err)
	}
	return nil
}

// Status reports the program attached to ifname: its VIPs and counters.
func Status(ifname string) (Info, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return Info{}, fmt.Errorf("decapsulation status of %s: %w", ifname, err)
	}
	p, err := attached(link)
	if err != nil || p == nil {
		return Info{}, err
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return Info{}, err
	}
	ids, _ := info.MapIDs()
	out := Info{Attached: true}
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			return Info{}, fmt.Errorf("open map %d of the decapsulation program: %w", id, err)
		}
		mi, err := m.Info()
		if err == nil {
			switch mi.Name {
			case "decap_vips":
				out.VIPs, err = vipsOf(m)
			case "decap_stats":
				out.Counters, err = countersOf(m)
			case "decap_ports":
				out.GUEPorts, err = portsOf(m)
			}
		}
		m.Close()
		if err != nil {
			return Info{}, fmt.Errorf("read map %d of the decapsulation program: %w", id, err)
		}
	}
	return out, nil
}

func vipsOf(m *ebpf.Map) ([]netip.Addr, error) {
	var (
		k   decapDecapVip
		v   uint8
		out []netip.Addr
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if k.Family == 4 {
			out = append(out, netip.AddrFrom4([4]byte(k.Addr[:4])))
		} else {
			out = append(out, netip.AddrFrom16(k.Addr))
		}
	}
	return out, it.Err()
}

func portsOf(m *ebpf.Map) ([]uint16, error) {
	var (
		k   uint16
		v   uint8
		out []uint16
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		out = append(out, htons(k))
	}
	return out, it.Err()
}

func countersOf(m *ebpf.Map) (Counters, error) {
	sum := func(i uint32) (uint64, error) {
		var per []uint64
		if err := m.Lookup(i, &per); err != nil {
			return 0, err
		}
		var n uint64
		for _, x := range per {
			n += x
		}
		return n, nil
	}
	var c Counters
	var errs []error
	for i, dst := range []*uint64{&c.Decapsulated, &c.NotOurs, &c.Malformed} {
		n, err := sum(uint32(i))
		*dst = n
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}
