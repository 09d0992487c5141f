package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// schedulers are the IPVS schedulers keepalived accepts.
var schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

// schedulerFlags are the -b flags of ipvsadm (and -o for ops).
var schedulerFlags = set("flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback", "ops")

var ignoredVS = set("persistence_engine", "snmp_name", "smtp_alert", "nat_mask")
var ignoredRS = set("snmp_name", "smtp_alert", "BFD_CHECK", "FILE_CHECK")

const (
	defaultPersistence = 360 * time.Second
	maxTimer           = 24 * time.Hour
	maxPersistence     = 2678400 * time.Second // 31 days, the longest IPVS accepts here
)

// maxLocalAddrs bounds a local_address_group (the data plane holds 16 per
// service; a longer group is refused where it is used).
const maxLocalAddrs = 256

// localAddressGroup reads DPVS's local_address_group: lines of an address
// (or range) and, optionally, the interface it lives on.
func (b *builder) localAddressGroup(blk *node) {
	name, ok := b.blockName(blk)
	if !ok {
		return
	}
	if b.cfg.LocalAddressGroup(name) != nil {
		b.errorf(blk, "local_address_group %s defined twice", name)
		return
	}
	g := &LocalAddressGroup{Name: name, Pos: blk.Pos}
	n := 0
	for _, e := range blk.Body {
		if e.Block {
			b.errorf(e, "unexpected block in local_address_group")
			continue
		}
		first, last, ok := parseRange(e.Keyword)
		if !ok || strings.Contains(e.Keyword, "/") {
			b.d.Errorf(e.Pos, blk.Keyword, "local_address_group: invalid IP address or range '%s'", e.Keyword)
			continue
		}
		ent := LocalAddr{First: first, Last: last, Pos: e.Pos}
		if len(e.Args) > 0 {
			ent.Interface = e.Args[0].Text
		}
		if len(e.Args) > 1 {
			b.d.Errorf(e.Pos, blk.Keyword, "local_address_group: '%s' takes an interface at most, not '%s'", e.Keyword, e.arg(1))
			continue
		}
		for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
			if n++; n > maxLocalAddrs {
				break
			}
		}
		if n > maxLocalAddrs {
			b.d.Errorf(e.Pos, blk.Keyword, "local_address_group %s: more than %d addresses", name, maxLocalAddrs)
			break
		}
		g.Entries = append(g.Entries, ent)
	}
	b.cfg.LocalAddressGroups = append(b.cfg.LocalAddressGroups, g)
}

func (b *builder) vsGroup(blk *node) {
	name, ok := b.blockName(blk)
	if !ok {
		return
	}
	if b.cfg.VirtualServerGroup(name) != nil {
		b.errorf(blk, "virtual_server_group %s defined twice", name)
		return
	}
	g := &VirtualServerGroup{Name: name, Pos: blk.Pos}
	for _, e := range blk.Body {
		if e.Block {
			b.errorf(e, "unexpected block in virtual_server_group")
			continue
		}
		if e.Keyword == "fwmark" {
			if !b.leaf(e, 1, 2) {
				continue
			}
			v, ok := b.parseInt(e, e.Args[0].Text, 1, 1<<32-1)
			if !ok {
				continue
			}
			ent := VSGroupEntry{Fwmark: uint32(v), Pos: e.Pos}
			if len(e.Args) > 1 {
				if f, ok := b.enum(e, e.Args[1].Text, "inet", "inet6"); ok {
					ent.Family = f
				}
			}
			g.Entries = append(g.Entries, ent)
			continue
		}
		if e.Keyword == "vip_group" || e.Keyword == "fwmark_group" {
			b.ignore(e)
			continue
		}
		first, last, ok := parseRange(e.Keyword)
		if !ok {
			b.d.Errorf(e.Pos, blk.Keyword, "virtual_server_group: invalid IP address or range '%s'", e.Keyword)
			continue
		}
		ent := VSGroupEntry{First: first, Last: last, Pos: e.Pos}
		if len(e.Args) > 0 {
			p, ok := b.parsePort(&node{Keyword: blk.Keyword, Pos: e.Pos}, e.Args[0].Text, 0)
			if !ok {
				continue
			}
			ent.Port = p
		}
		if len(e.Args) > 1 {
			b.d.Warnf(e.Pos, blk.Keyword, "virtual_server_group: extra values after '%s %s' ignored", e.Keyword, e.Args[0].Text)
		}
		g.Entries = append(g.Entries, ent)
	}
	b.cfg.VirtualServerGroups = append(b.cfg.VirtualServerGroups, g)
}

// parseRange reads A, A-B (last part of the address, e.g. 10.0.0.1-10),
// A-C (a full end address) or A/NN.
func parseRange(s string) (netip.Addr, netip.Addr, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, false
		}
		p = p.Masked()
		return p.Addr().Unmap(), lastOf(p).Unmap(), true
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil {
		return netip.Addr{}, netip.Addr{}, false
	}
	first = first.Unmap()
	if !isRange {
		return first, first, true
	}
	if last, err := netip.ParseAddr(hi); err == nil {
		last = last.Unmap()
		if last.BitLen() != first.BitLen() || last.Less(first) {
			return netip.Addr{}, netip.Addr{}, false
		}
		return first, last, true
	}
	// Only the last group of the address is given.
	sep := "."
	base := 10
	if first.Is6() {
		sep, base = ":", 16
	}
	i := strings.LastIndex(lo, sep)
	if i < 0 {
		return netip.Addr{}, netip.Addr{}, false
	}
	max := 255
	if first.Is6() {
		max = 0xffff
	}
	v, err := strconv.ParseUint(hi, base, 32)
	if err != nil || int(v) > max {
		return netip.Addr{}, netip.Addr{}, false
	}
	last, err := netip.ParseAddr(lo[:i+1] + strconv.FormatUint(v, base))
	if err != nil || last.Less(first) {
		return netip.Addr{}, netip.Addr{}, false
	}
	return first, last, true
}

// lastOf returns the highest address of a prefix.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (b *builder) method(n *node) (Method, uint16, bool) {
	if !b.leaf(n, 1, -1) {
		return NAT, 0, false
	}
	v, ok := b.enum(n, n.Args[0].Text, "NAT", "DR", "TUN", "FNAT")
	if !ok {
		return NAT, 0, false
	}
	if v != n.Args[0].Text {
		// keepalived compares exactly: "dr" is unknown to it and the
		// method stays NAT.
		b.warnf(n, "keepalived does not know '%s' (methods are upper case) and keeps its default NAT; govs does the same (write %s)", n.Args[0].Text, v)
		return NAT, 0, false
	}
	switch v {
	case "DR":
		b.leaf(n, 1, 1)
		return DR, 0, true
	case "TUN":
		port, ok := b.tunnelOptions(n)
		return TUN, port, ok
	}
	if v == "FNAT" {
		b.leaf(n, 1, 1)
		return FNAT, 0, true
	}
	b.leaf(n, 1, 1)
	return NAT, 0, true
}

// tunnelOptions reads keepalived's "TUN type ipip" and "TUN type gue port
// N [nocsum]" and returns the GUE port (0 for ipip). What govs does not
// build (GRE, GUE checksums) is refused, not downgraded: a real server set
// up for it would not decapsulate what it got.
func (b *builder) tunnelOptions(n *node) (uint16, bool) {
	args := n.Args[1:]
	if len(args) == 0 {
		return 0, true
	}
	if args[0].Text != "type" || len(args) < 2 {
		b.errorf(n, "tunnel options '%s': want 'type ipip' or 'type gue port N'", joinArgs(n, 1))
		return 0, false
	}
	// Not a switch: the keyword table reads case labels as keywords, and
	// these are values.
	if kind := args[1].Text; kind == "ipip" {
		if len(args) > 2 {
			b.errorf(n, "tunnel options '%s': ipip takes no options", joinArgs(n, 1))
			return 0, false
		}
		return 0, true
	} else if kind == "gue" {
		if len(args) < 4 || args[2].Text != "port" {
			b.errorf(n, "tunnel options '%s': GUE needs 'port N' (the real servers' decapsulation port)", joinArgs(n, 1))
			return 0, false
		}
		port, err := strconv.ParseUint(args[3].Text, 10, 16)
		if err != nil || port == 0 {
			b.errorf(n, "tunnel options '%s': GUE port '%s' is not 1 to 65535", joinArgs(n, 1), args[3].Text)
			return 0, false
		}
		for _, o := range args[4:] {
			if o.Text != "nocsum" {
				b.errorf(n, "tunnel option '%s': govs sends GUE without UDP checksums only (nocsum, IPVS's default)", o.Text)
				return 0, false
			}
		}
		return uint16(port), true
	}
	b.errorf(n, "tunnel type '%s': govs encapsulates in ipip or gue (not %s)", args[1].Text, args[1].Text)
	return 0, false
}

func joinArgs(n *node, from int) string {
	var parts []string
	for _, a := range n.Args[from:] {
		parts = append(parts, a.Text)
	}
	return strings.Join(parts, " ")
}

// checkDefault handles the timing keywords shared by virtual servers, real
// servers and checkers. It reports whether n was one of them.
func (b *builder) checkDefault(n *node, c *CheckDefaults) bool {
	switch n.Keyword {
	case "connect_timeout":
		if v, ok := b.timerArg(n, time.Millisecond, maxTimer); ok {
			c.ConnectTimeout, c.set.connectTimeout = v, true
		}
	case "retry", "nb_get_retry", "nb_sock_retry":
		if v, ok := b.intArg(n, 0, 1<<20); ok {
			c.Retry, c.set.retry = v, true
		}
	case "delay_before_retry":
		if v, ok := b.timerArg(n, 0, maxTimer); ok {
			c.DelayBeforeRetry, c.set.delayBeforeRetry = v, true
		}
	case "warmup":
		if v, ok := b.timerArg(n, 0, maxTimer); ok {
			c.Warmup, c.set.warmup = v, true
		}
	case "delay_loop":
		if v, ok := b.timerArg(n, time.Millisecond, maxTimer); ok {
			c.DelayLoop, c.set.delayLoop = v, true
		}
	case "alpha":
		c.Alpha, c.set.alpha = b.boolArg(n), true
	default:
		return false
	}
	return true
}

func (b *builder) virtualServer(blk *node) {
	if !b.block(blk) {
		return
	}
	vs := &VirtualServer{Pos: blk.Pos, Quorum: 1, Scheduler: "", PersistenceGranularity: -1}
	ok := true
	switch {
	case len(blk.Args) == 0:
		b.errorf(blk, "missing address, 'fwmark N' or 'group NAME'")
		ok = false
	case blk.arg(0) == "fwmark":
		if len(blk.Args) < 2 {
			b.errorf(blk, "fwmark needs a number")
			ok = false
		} else if v, good := b.parseInt(blk, blk.arg(1), 1, 1<<32-1); good {
			vs.Fwmark = uint32(v)
		} else {
			ok = false
		}
	case blk.arg(0) == "group":
		if len(blk.Args) < 2 {
			b.errorf(blk, "group needs a name")
			ok = false
		} else {
			vs.Group = blk.arg(1)
		}
	default:
		a, good := b.parseAddr(blk, blk.arg(0))
		if !good {
			ok = false
		}
		vs.Addr = a
		if len(blk.Args) > 1 {
			if p, good := b.parsePort(blk, blk.arg(1), 0); good {
				vs.Port = p
			} else {
				ok = false
			}
		}
	}
	for _, n := range blk.Body {
		vs.Keywords.add(n)
		if b.checkDefault(n, &vs.Checks) {
			continue
		}
		switch n.Keyword {
		case "lb_algo", "lvs_sched":
			if v, good := b.enumArg(n, schedulers...); good {
				if v != n.Args[0].Text {
					// keepalived compares exactly and falls back to wlc.
					b.warnf(n, "keepalived does not know scheduler '%s' (names are lower case) and uses wlc; govs does the same (write %s)", n.Args[0].Text, v)
					continue
				}
				vs.Scheduler = v
			}
		case "lb_kind", "lvs_method":
			if m, port, good := b.method(n); good {
				vs.Method, vs.GUEPort = m, port
			}
		case "laddr_group_name":
			if b.leaf(n, 1, 1) {
				vs.LocalAddressGroup = n.Args[0].Text
			}
		case "persistence_timeout":
			if len(n.Args) == 0 {
				b.leaf(n, 0, 0)
				vs.PersistenceTimeout = defaultPersistence
			} else if v, good := b.intArg(n, 0, int(maxPersistence/time.Second)); good {
				// 0 switches persistence off.
				vs.PersistenceTimeout = time.Duration(v) * time.Second
			}
		case "persistence_granularity":
			if s, good := b.stringArg(n); good {
				if bits, good := parseMask(s); good {
					vs.PersistenceGranularity = bits
				} else {
					b.errorf(n, "invalid netmask '%s'", s)
				}
			}
		case "protocol":
			if v, good := b.enumArg(n, "TCP", "UDP", "SCTP"); good {
				vs.Protocol = map[string]Protocol{"TCP": TCP, "UDP": UDP, "SCTP": SCTP}[v]
			}
		case "quorum":
			if v, good := b.intArg(n, 1, 1<<31-1); good {
				vs.Quorum = v
			}
		case "hysteresis":
			if v, good := b.intArg(n, 0, 1<<31-1); good {
				vs.Hysteresis = v
			}
		case "quorum_up":
			vs.QuorumUp = b.commandArg(n)
		case "quorum_down":
			vs.QuorumDown = b.commandArg(n)
		case "omega":
			vs.Omega = b.boolArg(n)
		case "ha_suspend":
			vs.HASuspend = b.boolArg(n)
		case "virtualhost":
			if s, good := b.stringArg(n); good {
				vs.VirtualHost = s
			}
		case "inhibit_on_failure":
			vs.InhibitOnFailure = b.boolArg(n)
		case "ip_family":
			if v, good := b.enumArg(n, "inet", "inet6"); good {
				vs.Family = v
			}
		case "sorry_server":
			b.sorryServer(n, vs)
		case "sorry_server_inhibit":
			b.leaf(n, 0, 1)
			if vs.SorryServer == nil {
				b.errorf(n, "sorry_server must come first")
				continue
			}
			vs.SorryServer.Inhibit = true
		case "sorry_server_lvs_method", "sorry_server_lb_kind":
			m, port, good := b.method(n)
			if !good {
				continue
			}
			if vs.SorryServer == nil {
				b.errorf(n, "sorry_server must come first")
				continue
			}
			vs.SorryServer.Method, vs.SorryServer.GUEPort = m, port
		case "real_server":
			if rs := b.realServer(n); rs != nil {
				vs.RealServers = append(vs.RealServers, rs)
			}
		default:
			if schedulerFlags[n.Keyword] {
				b.leaf(n, 0, 0)
				vs.SchedulerFlags = append(vs.SchedulerFlags, n.Keyword)
				continue
			}
			b.other(n, "virtual_server", ignoredVS)
		}
	}
	if !ok {
		return
	}
	b.cfg.VirtualServers = append(b.cfg.VirtualServers, vs)
}

// parseMask reads an IPv4 netmask (255.255.255.0) or a prefix length.
func parseMask(s string) (int, bool) {
	if v, err := strconv.Atoi(s); err == nil {
		return v, v >= 0 && v <= 128
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, false
	}
	m := a.As4()
	bits := 0
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return 0, false // not contiguous
	}
	return bits, true
}

func (b *builder) sorryServer(n *node, vs *VirtualServer) {
	if !b.leaf(n, 1, 2) {
		return
	}
	a, ok := b.parseAddr(n, n.Args[0].Text)
	if !ok {
		return
	}
	ss := &SorryServer{Addr: a, Pos: n.Pos, Method: -1}
	if len(n.Args) > 1 {
		p, ok := b.parsePort(n, n.Args[1].Text, 0)
		if !ok {
			return
		}
		ss.Port = p
	}
	vs.SorryServer = ss
}

func (b *builder) realServer(blk *node) *RealServer {
	if !b.block(blk) {
		return nil
	}
	rs := &RealServer{Pos: blk.Pos, Weight: 1, Method: -1}
	ok := true
	if len(blk.Args) == 0 {
		b.errorf(blk, "missing address")
		ok = false
	} else {
		a, good := b.parseAddr(blk, blk.arg(0))
		rs.Addr, ok = a, good
		if len(blk.Args) > 1 {
			p, good := b.parsePort(blk, blk.arg(1), 0)
			rs.Port, ok = p, ok && good
		}
		if len(blk.Args) > 2 {
			b.warnf(blk, "extra values after '%s %s' ignored", blk.arg(0), blk.arg(1))
		}
	}
	for _, n := range blk.Body {
		rs.Keywords.add(n)
		if b.checkDefault(n, &rs.Checks) {
			continue
		}
		if t, isChecker := checkerTypes[n.Keyword]; isChecker {
			if c := b.checker(n, t); c != nil {
				rs.Checkers = append(rs.Checkers, c)
			}
			continue
		}
		switch n.Keyword {
		case "weight":
			if v, good := b.intArg(n, 0, 1<<31-1); good {
				rs.Weight = v
			}
		case "lb_kind":
			// keepalived 2.2 knows only lvs_method in a real_server.
			b.warnf(n, "keepalived 2.2 does not know lb_kind in a real_server and ignores it (the virtual server's method applies); govs does the same (write lvs_method)")
		case "lvs_method":
			if m, port, good := b.method(n); good {
				rs.Method, rs.GUEPort = m, port
			}
		case "inhibit_on_failure":
			rs.InhibitOnFailure, rs.inhibitSet = b.boolArg(n), true
		case "notify_up":
			rs.NotifyUp = b.commandArg(n)
		case "notify_down":
			rs.NotifyDown = b.commandArg(n)
		case "uthreshold":
			if v, good := b.intArg(n, 0, 1<<31-1); good {
				rs.UThreshold = v
			}
		case "lthreshold":
			if v, good := b.intArg(n, 0, 1<<31-1); good {
				rs.LThreshold = v
			}
		case "virtualhost":
			if s, good := b.stringArg(n); good {
				rs.VirtualHost = s
			}
		default:
			b.other(n, "real_server", ignoredRS)
		}
	}
	if !ok {
		return nil
	}
	return rs
}
