package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/config/lexer"
)

// ignoredGlobal are global_defs keywords keepalived knows that govs does
// not act on.
var ignoredGlobal = set(
	"bfd_cpu_affinity", "bfd_no_swap", "bfd_priority", "bfd_process_name", "bfd_rlimit_rttime", "bfd_rt_priority",
	"checker_cpu_affinity", "checker_log_all_failures", "checker_no_swap", "checker_priority", "checker_process_name",
	"checker_rlimit_rttime", "checker_rt_priority", "child_wait_time", "config_save_dir", "data_use_instance",
	"dbus_service_name", "disable_local_igmp", "dynamic_interfaces", "enable_dbus", "enable_snmp_checker",
	"enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_snmp_vrrp", "enable_snmp_keepalived",
	"enable_traps", "fifo_write_vrrp_states_on_reload", "include_check", "instance", "linkbeat_use_polling",
	"log_unknown_vrids", "lvs_flush_on_stop", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
	"lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force", "lvs_notify_fifo", "lvs_notify_fifo_script",
	"max_auto_priority", "min_auto_priority_delay", "namespace_with_ipsets",
	"net_namespace", "net_namespace_ipvs", "nftables", "nftables_counters", "nftables_ifindex", "nftables_ipvs",
	"nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "nftables_priority", "no_checker_emails", "no_email_faults",
	"notify_fifo", "notify_fifo_script", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force", "process_name",
	"process_names", "random_seed", "reload_check_config", "reload_file", "reload_repeat", "reload_time_file",
	"rs_init_notifies", "smtp_alert", "smtp_alert_checker",
	"smtp_alert_vrrp", "snmp_socket", "tmp_config_directory", "umask",
	"use_pid_dir", "vmac_addr_prefix", "vmac_prefix", "vrrp_cpu_affinity",
	"vrrp_garp_extra_if", "vrrp_ipsets", "vrrp_iptables", "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
	"vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force", "vrrp_no_swap",
	"vrrp_priority", "vrrp_process_name",
	"vrrp_rlimit_rttime", "vrrp_rt_priority", "vrrp_rx_bufs_multiplier", "vrrp_rx_bufs_policy",
	"vrrp_skip_check_adv_addr", "script_security", "lvs_id", "lvs_sync_daemon_interface",
)

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

const maxGARPRepeat = 255

// Bounds of govs_conn_table_size and govs_embryo_table_size: below 1024
// entries a table is full at once; 16 Mi connection entries take about
// 2 GB of kernel memory.
const (
	MinTableSize       = 1024
	MaxConnTableSize   = 1 << 24
	MaxEmbryoTableSize = 1 << 22
)

// MaxNewFlowLimit bounds govs_new_flow_limit (new flows per second).
const MaxNewFlowLimit = 1_000_000_000

// minSyncKeyLen is the shortest govs_sync_key accepted.
const minSyncKeyLen = 16

func (b *builder) global(blk *node) {
	g := &b.cfg.Global
	if !g.Pos.IsValid() {
		g.Pos = blk.Pos
	}
	lowerDelaySet, lowerRepeatSet := false, false
	var (
		syncKey   string
		syncKeyAt *node
	)
	for _, n := range blk.Body {
		g.Keywords.add(n)
		switch n.Keyword {
		case "router_id":
			if s, ok := b.stringArg(n); ok {
				g.RouterID = s
			}
		case "notification_email":
			if !b.block(n) {
				continue
			}
			for _, e := range n.Body {
				if e.Block {
					b.errorf(e, "unexpected block in notification_email")
					continue
				}
				g.NotificationEmail = append(g.NotificationEmail, e.Keyword)
				for _, a := range e.Args {
					g.NotificationEmail = append(g.NotificationEmail, a.Text)
				}
			}
		case "notification_email_from":
			if s, ok := b.stringArg(n); ok {
				g.NotificationEmailFrom = s
			}
		case "smtp_server":
			if !b.leaf(n, 1, 2) {
				continue
			}
			g.SMTPServer = n.Args[0].Text
			if len(n.Args) > 1 {
				if p, ok := b.parsePort(n, n.Args[1].Text, 1); ok {
					g.SMTPServerPort = p
				}
			}
		case "smtp_helo_name":
			if s, ok := b.stringArg(n); ok {
				g.SMTPHeloName = s
			}
		case "smtp_connect_timeout":
			if v, ok := b.timerArg(n, time.Second, time.Hour); ok {
				g.SMTPConnectTimeout = v
			}
		case "vrrp_version":
			if v, ok := b.intArg(n, 2, 3); ok {
				g.VRRPVersion = v
			}
		case "vrrp_mcast_group4":
			if a, ok := b.addrArg(n); ok {
				if !a.Is4() || !a.IsMulticast() {
					b.errorf(n, "'%s' is not an IPv4 multicast address", a)
				} else {
					g.VRRPMcastGroup4 = a
				}
			}
		case "vrrp_mcast_group6":
			if a, ok := b.addrArg(n); ok {
				if !a.Is6() || !a.IsMulticast() {
					b.errorf(n, "'%s' is not an IPv6 multicast address", a)
				} else {
					g.VRRPMcastGroup6 = a
				}
			}
		case "vrrp_strict":
			g.VRRPStrict = b.boolArg(n)
		case "vrrp_garp_master_delay":
			if v, ok := b.intArg(n, 0, 3600); ok {
				g.GARP.MasterDelay = time.Duration(v) * time.Second
			}
		case "vrrp_notify_priority_changes":
			g.NotifyPriorityChanges = b.boolArg(n)
		case "vrrp_notify_fifo":
			g.VRRPNotifyFIFO = b.commandArg(n)
		case "vrrp_notify_fifo_script":
			g.VRRPNotifyFIFOScript = b.commandArg(n)
		case "startup_script":
			g.StartupScript = b.commandArg(n)
		case "shutdown_script":
			g.ShutdownScript = b.commandArg(n)
		case "startup_script_timeout":
			if v, ok := b.intArg(n, 1, 1000); ok {
				g.StartupTimeout = time.Duration(v) * time.Second
			}
		case "shutdown_script_timeout":
			if v, ok := b.intArg(n, 1, 1000); ok {
				g.ShutdownTimeout = time.Duration(v) * time.Second
			}
		case "vrrp_startup_delay":
			if v, ok := b.timerArg(n, 0, time.Hour); ok {
				g.VRRPStartupDelay = v
			}
		case "vrrp_check_unicast_src":
			b.leaf(n, 0, 0)
			g.CheckUnicastSrc = true
		case "vrrp_min_garp":
			b.minGARP = b.boolArg(n)
		case "vrrp_garp_master_repeat":
			if v, ok := b.intArg(n, 0, maxGARPRepeat); ok {
				g.GARP.MasterRepeat = v
			}
		case "vrrp_garp_master_refresh":
			if v, ok := b.intArg(n, 0, 86400); ok {
				g.GARP.MasterRefresh = time.Duration(v) * time.Second
			}
		case "vrrp_garp_master_refresh_repeat":
			if v, ok := b.intArg(n, 1, maxGARPRepeat); ok {
				g.GARP.MasterRefreshRepeat = v
			}
		case "vrrp_garp_lower_prio_delay":
			if v, ok := b.intArg(n, 0, 3600); ok {
				g.GARP.LowerPrioDelay = time.Duration(v) * time.Second
				lowerDelaySet = true
			}
		case "vrrp_garp_lower_prio_repeat":
			if v, ok := b.intArg(n, 0, maxGARPRepeat); ok {
				g.GARP.LowerPrioRepeat = v
				lowerRepeatSet = true
			}
		case "vrrp_garp_interval":
			if v, ok := b.timerArg(n, 0, time.Second); ok {
				g.GARP.Interval = v
			}
		case "vrrp_gna_interval":
			if v, ok := b.timerArg(n, 0, time.Second); ok {
				g.GARP.NAInterval = v
			}
		case "default_interface":
			if s, ok := b.stringArg(n); ok {
				if s, ok := b.interfaceName(n, s); ok {
					g.DefaultInterface = s
				}
			}
		case "script_user":
			if b.leaf(n, 1, 2) {
				g.ScriptUser = n.Args[0].Text
				if len(n.Args) > 1 {
					g.ScriptGroup = n.Args[1].Text
				}
			}
		case "enable_script_security":
			g.EnableScriptSecurity = b.boolArg(n)
		case "lvs_flush":
			g.LVSFlush = b.boolArg(n)
		case "lvs_sync_daemon":
			if sd, ok := b.syncDaemon(n); ok {
				g.LVSSyncDaemon = sd
			}
		case "govs_conn_table_size":
			if v, ok := b.intArg(n, MinTableSize, MaxConnTableSize); ok {
				g.ConnTableSize = v
			}
		case "govs_embryo_table_size":
			if v, ok := b.intArg(n, MinTableSize, MaxEmbryoTableSize); ok {
				g.EmbryoTableSize = v
			}
		case "vrrp_down_timer_adverts":
			if v, ok := b.intArg(n, 1, 100); ok {
				g.Adverts.DownTimerAdverts = v
			}
		case "vrrp_lower_prio_no_advert":
			g.Adverts.LowerPrioNoAdvert = b.boolArg(n)
		case "vrrp_higher_prio_send_advert":
			g.Adverts.HigherPrioSendAdvert = b.boolArg(n)
		case "lvs_timeouts":
			b.lvsTimeouts(n, &g.LVSTimeouts)
		case "govs_new_flow_limit":
			if v, ok := b.intArg(n, 0, MaxNewFlowLimit); ok {
				g.NewFlowLimit = uint32(v)
			}
		case "govs_sync_key":
			if s, ok := b.stringArg(n); ok {
				if len(s) < minSyncKeyLen {
					b.errorf(n, "govs_sync_key must be at least %d characters (it is a shared secret)", minSyncKeyLen)
					continue
				}
				syncKey = s
				syncKeyAt = n
			}
		case "govs_xdp_interface":
			if !b.leaf(n, 1, -1) {
				continue
			}
			for _, a := range n.Args {
				if s, ok := b.interfaceName(n, a.Text); ok {
					g.XDPInterfaces = append(g.XDPInterfaces, s)
				}
			}
		default:
			b.other(n, "global_defs", ignoredGlobal)
		}
	}
	if syncKeyAt != nil {
		// lvs_sync_daemon or govs_bgp's connection_sync takes it in
		// resolveSyncDaemon.
		b.syncKey, b.syncKeyAt = syncKey, syncKeyAt
	}
	// vrrp_min_garp: one GARP / NA on becoming MASTER and no second burst,
	// unless vrrp_garp_master_repeat / _delay say otherwise.
	if b.minGARP {
		if !g.Keywords.Of("vrrp_garp_master_repeat").IsValid() {
			g.GARP.MasterRepeat = 1
		}
		if !g.Keywords.Of("vrrp_garp_master_delay").IsValid() {
			g.GARP.MasterDelay = 0
		}
	}
	// The lower-priority GARP settings follow the master ones unless given.
	if !lowerDelaySet {
		g.GARP.LowerPrioDelay = g.GARP.MasterDelay
	}
	if !lowerRepeatSet {
		g.GARP.LowerPrioRepeat = g.GARP.MasterRepeat
	}
}

// IPVS's sync daemon defaults (ip_vs_sync.c): the multicast group and port
// connection synchronisation uses, and the largest message that fits an
// Ethernet MTU of 1500 without fragmentation.
var defaultSyncGroup4 = netip.AddrFrom4([4]byte{224, 0, 0, 81})

const (
	defaultSyncPort   = 8848
	defaultSyncTTL    = 1
	defaultSyncMaxLen = 1500 - 20 - 8
)

// syncDaemon parses `lvs_sync_daemon IF INSTANCE [id N] [maxlen N]
// [port N] [ttl N] [group ADDR]`; the instance is checked in resolve.
func (b *builder) syncDaemon(n *node) (*LVSSyncDaemon, bool) {
	if !b.leaf(n, 2, -1) {
		return nil, false
	}
	sd, ok := b.syncDaemonArgs(n, n.Args[2:])
	if ok {
		sd.Instance = n.Args[1].Text
	}
	return sd, ok
}

// syncDaemonArgs reads the interface (the first argument) and the options
// (args) of lvs_sync_daemon and govs_bgp's connection_sync.
func (b *builder) syncDaemonArgs(n *node, args []lexer.Token) (*LVSSyncDaemon, bool) {
	if !b.leaf(n, 1, -1) {
		return nil, false
	}
	iface, ok := b.interfaceName(n, n.Args[0].Text)
	if !ok {
		return nil, false
	}
	sd := &LVSSyncDaemon{
		Pos: n.Pos, Interface: iface, SyncID: -1,
		MaxLen: defaultSyncMaxLen, Port: defaultSyncPort, TTL: defaultSyncTTL, Group: defaultSyncGroup4,
	}
	for len(args) > 0 {
		name := args[0].Text
		opt := strings.ToLower(name)
		if len(args) < 2 {
			b.errorf(n, "'%s' needs a value", args[0].Text)
			return nil, false
		}
		val := args[1].Text
		args = args[2:]
		switch opt {
		case "id":
			v, ok := b.parseInt(n, val, 0, 255)
			if !ok {
				return nil, false
			}
			sd.SyncID = v
		case "maxlen":
			v, ok := b.parseInt(n, val, 1, 65507)
			if !ok {
				return nil, false
			}
			sd.MaxLen = v
		case "port":
			v, ok := b.parsePort(n, val, 1)
			if !ok {
				return nil, false
			}
			sd.Port = v
		case "ttl":
			v, ok := b.parseInt(n, val, 1, 255)
			if !ok {
				return nil, false
			}
			sd.TTL = v
		case "group":
			a, ok := b.parseAddr(n, val)
			if !ok {
				return nil, false
			}
			if !a.IsMulticast() {
				b.errorf(n, "group '%s' is not a multicast address", a)
				return nil, false
			}
			sd.Group = a
		default:
			b.errorf(n, "unknown option '%s' (want id|maxlen|port|ttl|group)", name)
			return nil, false
		}
	}
	return sd, true
}

// oldSyncDaemon takes a vrrp_instance's lvs_sync_daemon_interface as
// `lvs_sync_daemon IFACE INSTANCE`, unless global_defs has one (which
// keepalived prefers).
func (b *builder) oldSyncDaemon(n *node, iface string, in *VRRPInstance) {
	if sd := b.cfg.Global.LVSSyncDaemon; sd != nil {
		if sd.Pos.Line > 0 && sd.Interface != iface {
			b.warnf(n, "lvs_sync_daemon at %s is already set; this one is ignored", sd.Pos)
		}
		return
	}
	b.cfg.Global.LVSSyncDaemon = &LVSSyncDaemon{
		Pos: n.Pos, Interface: iface, Instance: in.Name, SyncID: -1,
		MaxLen: defaultSyncMaxLen, Port: defaultSyncPort, TTL: defaultSyncTTL, Group: defaultSyncGroup4,
	}
}

// resolveSyncDaemon checks the named instance exists and takes its VRID
// as the sync id when none was given, as keepalived does.
func (b *builder) resolveSyncDaemon() {
	if bg := b.cfg.BGP; bg != nil && bg.Sync != nil {
		if sd := b.cfg.Global.LVSSyncDaemon; sd != nil {
			b.d.Errorf(bg.Sync.Pos, "connection_sync", "connection_sync and lvs_sync_daemon (%s) both set: a director syncs with one group", sd.Pos)
		} else {
			b.cfg.Global.LVSSyncDaemon = bg.Sync
		}
	}
	sd := b.cfg.Global.LVSSyncDaemon
	switch {
	case sd != nil && b.syncKeyAt != nil:
		sd.Key = b.syncKey
	case b.syncKeyAt != nil:
		b.errorf(b.syncKeyAt, "govs_sync_key needs lvs_sync_daemon (or govs_bgp's connection_sync): without connection sync there is nothing to authenticate")
	}
	if sd == nil || sd.Mesh {
		return
	}
	for _, in := range b.cfg.Instances {
		if in.Name == sd.Instance {
			if sd.SyncID < 0 {
				sd.SyncID = in.VRID
			}
			return
		}
	}
	b.d.Warnf(sd.Pos, "lvs_sync_daemon", "lvs_sync_daemon: vrrp_instance '%s' not found; connection sync is off (keepalived runs without it too)", sd.Instance)
	b.cfg.Global.LVSSyncDaemon = nil
}

// maxLVSTimeout is the longest lvs_timeouts value IPVS takes (INT_MAX
// jiffies at HZ=1000, in seconds).
const maxLVSTimeout = 2147483

// lvsTimeouts reads `lvs_timeouts [tcp S] [tcpfin S] [udp S]`, at least one.
func (b *builder) lvsTimeouts(n *node, t *LVSTimeouts) {
	if !b.leaf(n, 2, 6) {
		return
	}
	if len(n.Args)%2 != 0 {
		b.errorf(n, "want pairs of tcp|tcpfin|udp and seconds")
		return
	}
	var out LVSTimeouts
	for i := 0; i < len(n.Args); i += 2 {
		v, err := strconv.Atoi(n.Args[i+1].Text)
		if err != nil || v < 1 || v > maxLVSTimeout {
			b.errorf(n, "%s: invalid timeout '%s' (want 1..%d seconds)", n.Args[i].Text, n.Args[i+1].Text, maxLVSTimeout)
			return
		}
		d := time.Duration(v) * time.Second
		switch n.Args[i].Text {
		case "tcp":
			out.TCP = d
		case "tcpfin":
			out.TCPFin = d
		case "udp":
			out.UDP = d
		default:
			b.errorf(n, "unknown timeout '%s' (want tcp, tcpfin or udp)", n.Args[i].Text)
			return
		}
	}
	*t = out
}
