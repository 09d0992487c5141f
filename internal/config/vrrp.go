package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// instanceSet records which instance settings were written, so the rest
// can come from global_defs once it is read completely.
type instanceSet struct {
	version, accept                          bool
	garpMasterDelay, garpMasterRepeat        bool
	garpMasterRefresh, garpMasterRefreshRep  bool
	garpLowerPrioDelay, garpLowerPrioRepeat  bool
	state                                    bool
	downTimer, lowerPrio, higherPrio         bool
	strict                                   *bool
	unicastNode                              *node // an unicast_peer block
	notifyPrio                               *bool
	vrid                                     bool
	iface                                    bool
	noPreemptNode, preemptDelayNode, advNode *node
}

// ignoredInstance are vrrp_instance keywords govs does not act on.
var ignoredInstance = set(
	"use_vmac", "vmac_xmit_base", "use_vmac_addr", "use_ipvlan", "native_ipv6",
	"track_process", "track_bfd",
	"debug", "skip_check_adv_addr",
	"old_unicast_checksum", "kernel_rx_buf_size", "linkbeat_use_polling", "garp_extra_if", "notify_deleted", "global_tracking", "sync_group_tracking_weight",
)

// ignoredScript and ignoredSyncGroup are likewise for their blocks.
var (
	ignoredScript    = set()
	ignoredSyncGroup = set("global_tracking", "track_process",
		"track_bfd", "notify_priority_changes", "notify_deleted")
)

// blockName returns the single name argument of a named block.
func (b *builder) blockName(n *node) (string, bool) {
	if !b.block(n) {
		return "", false
	}
	if len(n.Args) == 0 {
		b.errorf(n, "missing name")
		return "", false
	}
	if len(n.Args) > 1 {
		b.warnf(n, "extra values after name '%s' ignored", n.Args[0].Text)
	}
	return n.Args[0].Text, true
}

func (b *builder) script(blk *node) {
	name, ok := b.blockName(blk)
	if !ok {
		return
	}
	if b.cfg.Script(name) != nil {
		b.errorf(blk, "vrrp_script %s defined twice", name)
		return
	}
	s := &Script{Name: name, Pos: blk.Pos, Interval: time.Second, Rise: 1, Fall: 1}
	for _, n := range blk.Body {
		s.Keywords.add(n)
		switch n.Keyword {
		case "script":
			s.Cmd = b.commandArg(n)
		case "interval":
			if v, ok := b.intArg(n, 1, 86400); ok {
				s.Interval = time.Duration(v) * time.Second
			}
		case "timeout":
			if v, ok := b.intArg(n, 1, 86400); ok {
				s.Timeout = time.Duration(v) * time.Second
			}
		case "weight":
			if !b.leaf(n, 1, 2) {
				continue
			}
			if v, ok := b.parseInt(n, n.Args[0].Text, -253, 253); ok {
				s.Weight = v
			}
			if len(n.Args) > 1 {
				if _, ok := b.enum(n, n.Args[1].Text, "reverse"); ok {
					s.Reverse = true
				}
			}
		case "rise":
			if v, ok := b.intArg(n, 1, 1<<20); ok {
				s.Rise = v
			}
		case "fall":
			if v, ok := b.intArg(n, 1, 1<<20); ok {
				s.Fall = v
			}
		case "user":
			if b.leaf(n, 1, 2) {
				s.Cmd.User = n.Args[0].Text
				if len(n.Args) > 1 {
					s.Cmd.Group = n.Args[1].Text
				}
			}
		case "init_fail":
			b.leaf(n, 0, 0)
			s.InitFail = true
		default:
			b.other(n, "vrrp_script", ignoredScript)
		}
	}
	if !s.Cmd.IsSet() {
		b.d.Warnf(blk.Pos, blk.Keyword, "%s %s: no script given; instances tracking it ignore it", blk.Keyword, name)
	}
	if s.Timeout == 0 {
		s.Timeout = s.Interval
	}
	b.cfg.Scripts = append(b.cfg.Scripts, s)
}

func (b *builder) notify(n *node, nt *Notify) bool {
	switch n.Keyword {
	case "notify_master":
		nt.Master = b.commandArg(n)
	case "notify_backup":
		nt.Backup = b.commandArg(n)
	case "notify_fault":
		nt.Fault = b.commandArg(n)
	case "notify_stop":
		nt.Stop = b.commandArg(n)
	case "notify":
		nt.Any = b.commandArg(n)
	default:
		return false
	}
	return true
}

func (b *builder) trackInterfaces(blk *node) []TrackInterface {
	if !b.block(blk) {
		return nil
	}
	var out []TrackInterface
	for _, e := range blk.Body {
		if e.Block {
			b.errorf(e, "unexpected block in %s", blk.Keyword)
			continue
		}
		name, ok := b.interfaceName(e, e.Keyword)
		if !ok {
			continue
		}
		ti := TrackInterface{Name: name, Pos: e.Pos}
		if w, rev, ok := b.trackWeight(e, blk.Keyword, 253); ok {
			ti.Weight, ti.Reverse = w.v, rev
		}
		out = append(out, ti)
	}
	return out
}

type optInt struct {
	v   int
	set bool
}

// trackWeight reads `[weight W] [reverse|no_reverse|noreverse]` after a
// track_* entry name.
func (b *builder) trackWeight(e *node, where string, limit int) (optInt, bool, bool) {
	var w optInt
	rev := false
	args := e.Args
	for i := 0; i < len(args); i++ {
		switch args[i].Text {
		case "weight":
			if i+1 >= len(args) {
				b.d.Errorf(e.Pos, where, "%s: %s: weight needs a value", where, e.Keyword)
				return w, false, false
			}
			i++
			v, err := strconv.Atoi(args[i].Text)
			if err != nil {
				b.d.Errorf(e.Pos, where, "%s: %s: invalid weight '%s'", where, e.Keyword, args[i].Text)
				return w, false, false
			}
			if v < -limit || v > limit {
				b.d.Errorf(e.Pos, where, "%s: %s: weight %d outside range [%d, %d]", where, e.Keyword, v, -limit, limit)
				return w, false, false
			}
			w = optInt{v: v, set: true}
		case "reverse":
			rev = true
		case "no_reverse", "noreverse":
			rev = false
		default:
			b.d.Warnf(e.Pos, where, "%s: %s: unknown option '%s' ignored", where, e.Keyword, args[i].Text)
		}
	}
	return w, rev, true
}

// trackScripts reads track_script entries, and track_file ones (whose
// weights go to 254: a file's value can be negative).
func (b *builder) trackScripts(blk *node) []TrackScript {
	if !b.block(blk) {
		return nil
	}
	var out []TrackScript
	for _, e := range blk.Body {
		if e.Block {
			b.errorf(e, "unexpected block in %s", blk.Keyword)
			continue
		}
		ts := TrackScript{Name: e.Keyword, Pos: e.Pos}
		limit := 253
		if blk.Keyword == "track_file" {
			limit = 254
		}
		if w, rev, ok := b.trackWeight(e, blk.Keyword, limit); ok {
			ts.Weight, ts.WeightSet, ts.Reverse = w.v, w.set, rev
		}
		out = append(out, ts)
	}
	return out
}

func (b *builder) syncGroup(blk *node) {
	name, ok := b.blockName(blk)
	if !ok {
		return
	}
	for _, g := range b.cfg.SyncGroups {
		if g.Name == name {
			b.errorf(blk, "vrrp_sync_group %s defined twice", name)
			return
		}
	}
	g := &SyncGroup{Name: name, Pos: blk.Pos}
	addMember := func(e *node, member string) {
		g.Instances = append(g.Instances, member)
	}
	for _, n := range blk.Body {
		g.Keywords.add(n)
		if b.notify(n, &g.Notify) {
			continue
		}
		switch n.Keyword {
		case "group":
			if !b.block(n) {
				continue
			}
			for _, e := range n.Body {
				if e.Block {
					b.errorf(e, "unexpected block in group")
					continue
				}
				addMember(e, e.Keyword)
				for _, a := range e.Args {
					addMember(e, a.Text)
				}
			}
		case "track_interface":
			g.TrackInterfaces = append(g.TrackInterfaces, b.trackInterfaces(n)...)
		case "track_script":
			g.TrackScripts = append(g.TrackScripts, b.trackScripts(n)...)
		case "track_file":
			g.TrackFiles = append(g.TrackFiles, b.trackScripts(n)...)
		case "sync_group_tracking_weight":
			b.leaf(n, 0, 0)
			g.TrackingWeight = true
		case "smtp_alert":
			g.SMTPAlert = b.boolArg(n)
		default:
			if ignoredSyncGroup[n.Keyword] {
				b.ignore(n)
				continue
			}
			// Old syntax: instance names directly in the block.
			if !n.Block && len(n.Args) == 0 {
				addMember(n, n.Keyword)
				continue
			}
			b.unknown(n, "vrrp_sync_group")
		}
	}
	if len(g.Instances) == 0 {
		b.d.Warnf(blk.Pos, blk.Keyword, "vrrp_sync_group %s: no instances in group", name)
	}
	b.cfg.SyncGroups = append(b.cfg.SyncGroups, g)
}

func (b *builder) instance(blk *node) {
	name, ok := b.blockName(blk)
	if !ok {
		return
	}
	if b.cfg.Instance(name) != nil {
		b.errorf(blk, "vrrp_instance %s defined twice", name)
		return
	}
	in := &VRRPInstance{Name: name, Pos: blk.Pos, Priority: 100, AdvertInt: time.Second}
	st := &instanceSet{}
	b.inst[in] = st
	for _, n := range blk.Body {
		in.Keywords.add(n)
		if b.notify(n, &in.Notify) {
			continue
		}
		switch n.Keyword {
		case "state":
			if v, ok := b.enumArg(n, "MASTER", "BACKUP"); ok {
				st.state = true
				in.State = StateBackup
				if v == "MASTER" {
					in.State = StateMaster
				}
			}
		case "lvs_sync_daemon_interface":
			// The old spelling of global_defs' lvs_sync_daemon: sync on this
			// interface while this instance is MASTER.
			b.warnf(n, "lvs_sync_daemon_interface in a vrrp_instance is deprecated (keepalived says so too); taken as global_defs' lvs_sync_daemon %s %s", n.arg(0), in.Name)
			if s, ok := b.stringArg(n); ok {
				if s, ok := b.interfaceName(n, s); ok {
					b.oldSyncDaemon(n, s, in)
				}
			}
		case "interface":
			st.iface = true // a bad value is reported here, not as missing
			if s, ok := b.stringArg(n); ok {
				if s, ok := b.interfaceName(n, s); ok {
					in.Interface = s
				}
			}
		case "virtual_router_id":
			st.vrid = true
			if v, ok := b.intArg(n, 1, 255); ok {
				in.VRID = v
			}
		case "priority":
			if v, ok := b.intArg(n, 1, 255); ok {
				in.Priority = v
			}
		case "advert_int":
			if v, ok := b.timerArg(n, 10*time.Millisecond, 255*time.Second); ok {
				in.AdvertInt, st.advNode = v, n
			}
		case "version":
			if v, ok := b.intArg(n, 2, 3); ok {
				in.Version, st.version = v, true
			}
		case "nopreempt", "no_preempt":
			b.leaf(n, 0, 0)
			in.NoPreempt, st.noPreemptNode = true, n
		case "preempt":
			b.leaf(n, 0, 0)
			in.NoPreempt = false
		case "preempt_delay":
			if v, ok := b.timerArg(n, 0, 1000*time.Second); ok {
				in.PreemptDelay, st.preemptDelayNode = v, n
			}
		case "authentication":
			b.auth(n, in)
		case "virtual_ipaddress":
			in.VIPs = append(in.VIPs, b.vips(n)...)
		case "virtual_ipaddress_excluded":
			in.ExcludedVIPs = append(in.ExcludedVIPs, b.vips(n)...)
		case "virtual_routes":
			in.Routes = append(in.Routes, b.routes(n)...)
		case "virtual_rules":
			in.Rules = append(in.Rules, b.rules(n)...)
		case "unicast_src_ip", "mcast_src_ip":
			if a, ok := b.addrArg(n); ok {
				in.UnicastSrcIP = a
			}
		case "mcast_dst_ip":
			if a, ok := b.addrArg(n); ok {
				if !a.IsMulticast() {
					b.errorf(n, "'%s' is not a multicast address", a)
				} else {
					in.McastDstIP = a
				}
			}
		case "unicast_peer":
			in.UnicastPeers = append(in.UnicastPeers, b.unicastPeers(n)...)
			st.unicastNode = n
		case "notify_priority_changes":
			v := b.boolArg(n)
			st.notifyPrio = &v
		case "track_src_ip":
			b.leaf(n, 0, 0)
			in.TrackSrcIP = true
		case "unicast_fault_no_peer":
			b.leaf(n, 0, 0)
			in.UnicastFaultNoPeer = true
		case "track_interface":
			in.TrackInterfaces = append(in.TrackInterfaces, b.trackInterfaces(n)...)
		case "track_script":
			in.TrackScripts = append(in.TrackScripts, b.trackScripts(n)...)
		case "track_file":
			in.TrackFiles = append(in.TrackFiles, b.trackScripts(n)...)
		case "dont_track_primary":
			b.leaf(n, 0, 0)
			in.DontTrackPrimary = true
		case "accept":
			b.leaf(n, 0, 0)
			in.Accept, st.accept = true, true
		case "no_accept":
			b.leaf(n, 0, 0)
			in.Accept, st.accept = false, true
		case "smtp_alert":
			in.SMTPAlert = b.boolArg(n)
		case "unicast_ttl":
			if v, ok := b.intArg(n, 1, 255); ok {
				in.UnicastTTL = v
			}
		case "notify_master_rx_lower_pri":
			in.Notify.MasterRxLowerPri = b.commandArg(n)
		case "strict_mode":
			v := b.boolArg(n)
			st.strict = &v
		case "check_unicast_src":
			b.leaf(n, 0, 0)
			in.CheckUnicastSrc = true
		case "promote_secondaries":
			b.leaf(n, 0, 0)
			in.PromoteSecondaries = true
		case "down_timer_adverts":
			if v, ok := b.intArg(n, 1, 100); ok {
				in.Adverts.DownTimerAdverts, st.downTimer = v, true
			}
		case "lower_prio_no_advert":
			in.Adverts.LowerPrioNoAdvert, st.lowerPrio = b.boolArg(n), true
		case "higher_prio_send_advert":
			in.Adverts.HigherPrioSendAdvert, st.higherPrio = b.boolArg(n), true
		case "garp_master_delay":
			if v, ok := b.intArg(n, 0, 3600); ok {
				in.GARP.MasterDelay, st.garpMasterDelay = time.Duration(v)*time.Second, true
			}
		case "garp_master_repeat":
			if v, ok := b.intArg(n, 0, maxGARPRepeat); ok {
				in.GARP.MasterRepeat, st.garpMasterRepeat = v, true
			}
		case "garp_master_refresh":
			if v, ok := b.intArg(n, 0, 86400); ok {
				in.GARP.MasterRefresh, st.garpMasterRefresh = time.Duration(v)*time.Second, true
			}
		case "garp_master_refresh_repeat":
			if v, ok := b.intArg(n, 1, maxGARPRepeat); ok {
				in.GARP.MasterRefreshRepeat, st.garpMasterRefreshRep = v, true
			}
		case "garp_lower_prio_delay":
			if v, ok := b.intArg(n, 0, 3600); ok {
				in.GARP.LowerPrioDelay, st.garpLowerPrioDelay = time.Duration(v)*time.Second, true
			}
		case "garp_lower_prio_repeat":
			if v, ok := b.intArg(n, 0, maxGARPRepeat); ok {
				in.GARP.LowerPrioRepeat, st.garpLowerPrioRepeat = v, true
			}
		case "garp_interval", "gna_interval":
			// keepalived 2.2 knows these only in global_defs (vrrp_...).
			b.warnf(n, "keepalived 2.2 does not know %s in a vrrp_instance and ignores it; govs does the same (write vrrp_%s in global_defs)", n.Keyword, n.Keyword)
		default:
			b.other(n, "vrrp_instance", ignoredInstance)
		}
	}
	// Since keepalived 2.1 unicast instances may leave the interface out:
	// it follows from the route to the peers.
	if !st.iface && b.cfg.Global.DefaultInterface == "" && len(in.UnicastPeers) == 0 {
		b.d.Errorf(blk.Pos, blk.Keyword, "vrrp_instance %s: no interface given", name)
	}
	if !st.vrid {
		b.d.Errorf(blk.Pos, blk.Keyword, "vrrp_instance %s: no virtual_router_id given", name)
	}
	b.cfg.Instances = append(b.cfg.Instances, in)
}

func (b *builder) auth(blk *node, in *VRRPInstance) {
	if !b.block(blk) {
		return
	}
	in.Auth.Pos = blk.Pos
	for _, n := range blk.Body {
		switch n.Keyword {
		case "auth_type":
			if v, ok := b.enumArg(n, "PASS", "AH"); ok {
				in.Auth.Type = AuthPass
				if v == "AH" {
					in.Auth.Type = AuthAH
				}
			}
		case "auth_pass":
			if s, ok := b.stringArg(n); ok {
				if len(s) > 8 {
					b.warnf(n, "password longer than 8 characters; only '%s' is used", s[:8])
					s = s[:8]
				}
				in.Auth.Pass = s
			}
		default:
			b.unknown(n, "authentication")
		}
	}
	if in.Auth.Type == AuthNone && in.Auth.Pass != "" {
		in.Auth.Type = AuthPass
	}
	if in.Auth.Type == AuthPass && in.Auth.Pass == "" {
		b.d.Warnf(blk.Pos, blk.Keyword, "authentication: auth_type PASS without auth_pass; the password is empty")
	}
}

var scopes = set("site", "link", "host", "nowhere", "global")

// vips reads virtual_ipaddress entries:
// ADDR[/LEN] [brd ADDR] [dev IF] [scope S] [label L] [peer ADDR] [flags...].
func (b *builder) vips(blk *node) []VIP {
	if !b.block(blk) {
		return nil
	}
	var out []VIP
	for _, e := range blk.Body {
		if e.Block {
			b.d.Errorf(e.Pos, blk.Keyword, "%s: unexpected block", blk.Keyword)
			continue
		}
		v, ok := b.vip(blk.Keyword, e)
		if ok {
			out = append(out, v)
		}
	}
	return out
}

func (b *builder) vip(kw string, e *node) (VIP, bool) {
	errf := func(format string, args ...any) {
		b.d.Errorf(e.Pos, kw, "%s: "+format, append([]any{kw}, args...)...)
	}
	v := VIP{Pos: e.Pos}
	p, ok := parsePrefix(e.Keyword)
	if !ok {
		errf("invalid IP address '%s'%s", e.Keyword, addrHint(strings.Split(e.Keyword, "/")[0]))
		return v, false
	}
	v.Prefix = p
	args := e.Args
	need := func(i int, opt string) (string, bool) {
		if i+1 >= len(args) {
			errf("%s %s: '%s' needs a value", kw, e.Keyword, opt)
			return "", false
		}
		return args[i+1].Text, true
	}
	for i := 0; i < len(args); i++ {
		opt := args[i].Text
		switch opt {
		case "dev", "scope", "label", "brd", "broadcast", "peer", "preferred_lft", "track_group", "use_vmac":
			if opt == "use_vmac" && (i+1 >= len(args) || isVIPOption(args[i+1].Text)) {
				v.Options = append(v.Options, opt)
				continue
			}
			val, ok := need(i, opt)
			if !ok {
				return v, false
			}
			i++
			switch opt {
			case "dev":
				if _, ok := b.interfaceName(&node{Keyword: kw, Pos: e.Pos}, val); !ok {
					return v, false
				}
				v.Dev = val
			case "scope":
				if !scopes[val] {
					if _, err := strconv.ParseUint(val, 10, 8); err != nil {
						errf("invalid scope '%s' (want site|link|host|nowhere|global)", val)
						return v, false
					}
				}
				v.Scope = val
			case "label":
				if len(val) > 15 {
					errf("label '%s' longer than 15 characters", val)
					return v, false
				}
				v.Label = val
			case "brd", "broadcast":
				a, err := netip.ParseAddr(val)
				if err != nil {
					errf("invalid IP address '%s'", val)
					return v, false
				}
				v.Brd = a
			case "peer":
				a, err := netip.ParseAddr(strings.Split(val, "/")[0])
				if err != nil {
					errf("invalid IP address '%s'", val)
					return v, false
				}
				v.Peer = a
			default:
				v.Options = append(v.Options, opt+" "+val)
			}
		case "home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track":
			v.Options = append(v.Options, opt)
		default:
			b.d.Warnf(e.Pos, kw, "%s: %s: unknown option '%s' ignored", kw, e.Keyword, opt)
		}
	}
	return v, true
}

func isVIPOption(s string) bool {
	switch s {
	case "dev", "scope", "label", "brd", "broadcast", "peer", "preferred_lft", "track_group", "use_vmac",
		"home", "-nodad", "nodad", "mngtmpaddr", "noprefixroute", "autojoin", "no_track":
		return true
	}
	return false
}

// parsePrefix reads ADDR or ADDR/LEN; a bare address is a host prefix.
func parsePrefix(s string) (netip.Prefix, bool) {
	addr, bits, hasLen := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	n := a.BitLen()
	if hasLen {
		v, err := strconv.Atoi(bits)
		if err != nil || v < 0 || v > a.BitLen() {
			return netip.Prefix{}, false
		}
		n = v
	}
	return netip.PrefixFrom(a, n), true
}

func (b *builder) unicastPeers(blk *node) []UnicastPeer {
	if !b.block(blk) {
		return nil
	}
	var out []UnicastPeer
	for _, e := range blk.Body {
		a, err := netip.ParseAddr(e.Keyword)
		if err != nil || e.Block {
			b.d.Errorf(e.Pos, blk.Keyword, "unicast_peer: invalid IP address '%s'", e.Keyword)
			continue
		}
		p := UnicastPeer{Addr: a.Unmap(), MinTTL: 0, MaxTTL: 255, Pos: e.Pos}
		ok := true
		for i := 0; i < len(e.Args); i++ {
			opt := e.Args[i].Text
			if (opt != "min_ttl" && opt != "max_ttl") || i+1 >= len(e.Args) {
				b.d.Errorf(e.Pos, blk.Keyword, "unicast_peer: %s: unexpected '%s'", e.Keyword, opt)
				ok = false
				break
			}
			i++
			v, err := strconv.Atoi(e.Args[i].Text)
			if err != nil || v < 0 || v > 255 {
				b.d.Errorf(e.Pos, blk.Keyword, "unicast_peer: %s: %s '%s' outside range [0, 255]", e.Keyword, opt, e.Args[i].Text)
				ok = false
				break
			}
			if opt == "min_ttl" {
				p.MinTTL = v
			} else {
				p.MaxTTL = v
			}
		}
		if ok {
			out = append(out, p)
		}
	}
	return out
}
