// Package fwmark carries out keepalived's `virtual_server fwmark N`. The
// mark is set by the operator's netfilter rules (nftables, iptables-nft) in
// prerouting, after XDP has seen the packet, so the balancer cannot read it
// where it runs. Instead the kernel routes marked packets to the balancer:
//
//   - a veth pair, govs-fwm0 (routed to) and govs-fwm1 (the balancer's XDP
//     program, attached by the director with dataplane.AttachFwmark);
//   - a tc egress program on govs-fwm0 (bpf/fwmark.c) that copies the mark
//     into the destination MAC, where the XDP program reads it;
//   - one policy-routing rule per mark and family, `fwmark N lookup
//     RouteTable`, whose table routes everything out of govs-fwm0;
//   - the `lookup local` rule moved from priority 0 to LocalRulePriority,
//     after the fwmark rules: the VIP is a local address of the director
//     (VRRP holds it), and local delivery would otherwise win.
//
// Marked packets are forwarded by the kernel on their way to govs-fwm0, so
// IP forwarding must be on (Check says so); the operator's forward chain
// sees them. Everything here is kernel state that outlives the daemon,
// as the pinned data plane does; Remove takes it away.
package fwmark

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dpstate"
)

const (
	// RouteDevice is the veth end marked packets are routed out of.
	RouteDevice = "govs-fwm0"
	// BalanceDevice is its peer, where the balancer's XDP program runs.
	BalanceDevice = "govs-fwm1"
	// RouteTable is the routing table of the fwmark rules ("gv").
	RouteTable = 0x6776
	// RulePriority is the fwmark rules' priority.
	RulePriority = 90
	// LocalRulePriority is where the `lookup local` rule moves to.
	LocalRulePriority = 100
	// ProgramName is the tc program's name in the kernel.
	ProgramName = "govs_fwmark"
)

// Plumbing sets up and removes the kernel state above, in the current
// network namespace.
type Plumbing struct {
	// ProcSys is /proc/sys (a test may point it elsewhere).
	ProcSys string
}

// families are the address families marks need, in netlink's terms.
func families(marks []dpstate.Fwmark) []int {
	var out []int
	for _, m := range marks {
		f := unix.AF_INET
		if m.IPv6 {
			f = unix.AF_INET6
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

func (p Plumbing) procSys() string {
	if p.ProcSys != "" {
		return p.ProcSys
	}
	return "/proc/sys"
}

// Check reports what keeps the kernel from routing marked packets to the
// balancer: IP forwarding off for a family a mark needs.
func (p Plumbing) Check(marks []dpstate.Fwmark) error {
	var errs []error
	for _, f := range families(marks) {
		key, name := "net/ipv4/conf/all/forwarding", "net.ipv4.ip_forward"
		if f == unix.AF_INET6 {
			key, name = "net/ipv6/conf/all/forwarding", "net.ipv6.conf.all.forwarding"
		}
		b, err := os.ReadFile(p.procSys() + "/" + key)
		if err != nil {
			errs = append(errs, fmt.Errorf("fwmark services: read %s: %w", name, err))
			continue
		}
		if strings.TrimSpace(string(b)) != "1" {
			errs = append(errs, fmt.Errorf("fwmark services need IP forwarding (sysctl %s=1): the kernel forwards marked packets to %s, where govs balances them", name, RouteDevice))
		}
	}
	return errors.Join(errs...)
}

// Ensure sets up the veth pair, the tc program and the rules for marks
// (rules of marks no longer wanted go), and returns BalanceDevice's ifindex.
// It is idempotent: a restarted daemon finds what the last one left.
func (p Plumbing) Ensure(marks []dpstate.Fwmark) (int, error) {
	if err := p.Check(marks); err != nil {
		return 0, err
	}
	route, balance, err := ensureVeth()
	if err != nil {
		return 0, err
	}
	if err := attachTC(route); err != nil {
		return 0, err
	}
	for _, f := range []int{unix.AF_INET, unix.AF_INET6} {
		dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		if f == unix.AF_INET6 {
			dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		r := &netlink.Route{LinkIndex: route.Attrs().Index, Dst: dst, Table: RouteTable, Scope: netlink.SCOPE_LINK, Family: f}
		if err := netlink.RouteReplace(r); err != nil {
			return 0, fmt.Errorf("fwmark: route %s via %s in table %d: %w", dst, RouteDevice, RouteTable, err)
		}
	}
	if err := syncRules(marks); err != nil {
		return 0, err
	}
	for _, f := range families(marks) {
		if err := moveLocalRule(f); err != nil {
			return 0, err
		}
	}
	return balance.Attrs().Index, nil
}

// Remove deletes the rules and the veth pair (its routes and tc program go
// with it). The local rule stays where Ensure moved it: in that order it
// works the same without fwmark rules.
func (p Plumbing) Remove() error {
	err := syncRules(nil)
	l, lerr := netlink.LinkByName(RouteDevice)
	if lerr == nil {
		if derr := netlink.LinkDel(l); derr != nil {
			err = errors.Join(err, fmt.Errorf("fwmark: delete %s: %w", RouteDevice, derr))
		}
	}
	return err
}

func ensureVeth() (route, balance netlink.Link, err error) {
	route, err = netlink.LinkByName(RouteDevice)
	if err != nil {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: RouteDevice}, PeerName: BalanceDevice}
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, nil, fmt.Errorf("fwmark: create veth %s/%s: %w", RouteDevice, BalanceDevice, err)
		}
		if route, err = netlink.LinkByName(RouteDevice); err != nil {
			return nil, nil, fmt.Errorf("fwmark: %s: %w", RouteDevice, err)
		}
	}
	balance, err = netlink.LinkByName(BalanceDevice)
	if err != nil {
		return nil, nil, fmt.Errorf("fwmark: %s: %w", BalanceDevice, err)
	}
	// No ARP: the neighbour is govs-fwm0's own MAC, and nothing answers
	// on govs-fwm1. The XDP program is not multi-buffer, so GRO-merged
	// packets are cut to segments here, with full checksums (a redirected
	// XDP frame has no checksum offload).
	if err := netlink.LinkSetARPOff(route); err != nil {
		return nil, nil, fmt.Errorf("fwmark: %s arp off: %w", RouteDevice, err)
	}
	if err := netlink.LinkSetGSOMaxSegs(route, 1); err != nil {
		return nil, nil, fmt.Errorf("fwmark: %s gso_max_segs: %w", RouteDevice, err)
	}
	if err := txChecksumOff(RouteDevice); err != nil {
		return nil, nil, err
	}
	for _, l := range []netlink.Link{balance, route} {
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, nil, fmt.Errorf("fwmark: set %s up: %w", l.Attrs().Name, err)
		}
	}
	return route, balance, nil
}

// txChecksumOff turns off transmit checksum offload (ethtool -K dev tx
// off) with the legacy ETHTOOL_STXCSUM ioctl, which netlink does not carry.
func txChecksumOff(dev string) error {
	const ethtoolSTXCSUM = 0x17
	value := struct{ cmd, data uint32 }{cmd: ethtoolSTXCSUM}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(&value)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fwmark: socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("fwmark: %s tx checksum offload off: %w", dev, errno)
	}
	return nil
}

func attachTC(route netlink.Link) error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("fwmark: remove memlock limit: %w", err)
	}
	var objs fwmarkObjects
	if err := loadFwmarkObjects(&objs, nil); err != nil {
		return fmt.Errorf("fwmark: load tc program: %w", err)
	}
	// The filter holds the program; ours may close it.
	defer objs.Close()
	qdisc := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: route.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
	if err := netlink.QdiscReplace(qdisc); err != nil {
		return fmt.Errorf("fwmark: clsact qdisc on %s: %w", RouteDevice, err)
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: route.Attrs().Index, Parent: netlink.HANDLE_MIN_EGRESS,
			Handle: 1, Priority: 1, Protocol: unix.ETH_P_ALL},
		Fd: objs.GovsFwmark.FD(), Name: ProgramName, DirectAction: true,
	}
	if err := netlink.FilterReplace(filter); err != nil {
		return fmt.Errorf("fwmark: tc egress program on %s: %w", RouteDevice, err)
	}
	return nil
}

// syncRules leaves exactly one rule per wanted mark and family in front of
// RouteTable.
func syncRules(marks []dpstate.Fwmark) error {
	var errs []error
	for _, f := range []int{unix.AF_INET, unix.AF_INET6} {
		want := map[uint32]bool{}
		for _, m := range marks {
			if m.IPv6 == (f == unix.AF_INET6) {
				want[m.Mark] = true
			}
		}
		rules, err := netlink.RuleListFiltered(f, &netlink.Rule{Table: RouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return fmt.Errorf("fwmark: list rules: %w", err)
		}
		have := map[uint32]bool{}
		for _, r := range rules {
			if r.Priority == RulePriority && want[r.Mark] && !have[r.Mark] {
				have[r.Mark] = true
				continue
			}
			r := r
			if err := netlink.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("fwmark: delete rule %s: %w", r, err))
			}
		}
		for m := range want {
			if have[m] {
				continue
			}
			r := netlink.NewRule()
			r.Family, r.Priority, r.Mark, r.Table = f, RulePriority, m, RouteTable
			mask := uint32(0xffffffff)
			r.Mask = &mask
			if err := netlink.RuleAdd(r); err != nil {
				errs = append(errs, fmt.Errorf("fwmark: add rule fwmark %d lookup %d: %w", m, RouteTable, err))
			}
		}
	}
	return errors.Join(errs...)
}

// moveLocalRule puts `lookup local` at LocalRulePriority (adding it there
// first, so local delivery never lapses) and deletes it at priority 0.
func moveLocalRule(family int) error {
	rules, err := netlink.RuleListFiltered(family, &netlink.Rule{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("fwmark: list rules: %w", err)
	}
	var at0, moved bool
	for _, r := range rules {
		if r.Mark != 0 || r.Src != nil || r.Dst != nil || r.IifName != "" || r.OifName != "" {
			continue
		}
		switch r.Priority {
		case 0:
			at0 = true
		case LocalRulePriority:
			moved = true
		}
	}
	if !moved {
		r := netlink.NewRule()
		r.Family, r.Priority, r.Table = family, LocalRulePriority, unix.RT_TABLE_LOCAL
		if err := netlink.RuleAdd(r); err != nil {
			return fmt.Errorf("fwmark: add rule %d lookup local: %w", LocalRulePriority, err)
		}
	}
	if at0 {
		r := netlink.NewRule()
		r.Family, r.Priority, r.Table = family, 0, unix.RT_TABLE_LOCAL
		if err := netlink.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("fwmark: move rule 0 lookup local to %d: %w", LocalRulePriority, err)
		}
	}
	return nil
}
