package config

// harmless are the keywords keepalived knows that govs accepts without
// acting on them because they cannot change what is forwarded, how VRRP
// elects or what the checkers decide: process tuning, SNMP/D-Bus, mail
// alerts, and settings that only matter with a feature govs refuses anyway
// (an instance using that feature is an error on its own). Every other
// known keyword govs does not implement is an error.
var harmless = set(
	// process placement, priorities and buffers
	"bfd_cpu_affinity", "bfd_no_swap", "bfd_priority", "bfd_process_name", "bfd_rlimit_rttime", "bfd_rt_priority",
	"checker_cpu_affinity", "checker_no_swap", "checker_priority", "checker_process_name",
	"checker_rlimit_rttime", "checker_rt_priority", "child_wait_time", "vrrp_cpu_affinity", "vrrp_no_swap",
	"vrrp_priority", "vrrp_process_name", "vrrp_rlimit_rttime", "vrrp_rt_priority", "vrrp_rx_bufs_multiplier",
	"vrrp_rx_bufs_policy", "process_name", "process_names", "max_auto_priority", "min_auto_priority_delay",
	"lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs",
	"lvs_netlink_monitor_rcv_bufs_force", "process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
	"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs",
	"vrrp_netlink_monitor_rcv_bufs_force", "kernel_rx_buf_size", "random_seed", "umask", "use_pid_dir",
	"linkbeat_use_polling", "linkbeat_interfaces", "debug",
	// SNMP, D-Bus and mail alerts
	"enable_dbus", "dbus_service_name", "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2",
	"enable_snmp_rfcv3", "enable_snmp_vrrp", "enable_snmp_keepalived", "enable_traps", "snmp_socket", "snmp_name",
	"smtp_alert", "smtp_alert_checker", "smtp_alert_vrrp", "no_checker_emails", "no_email_faults",
	"checker_log_all_failures", "log_unknown_vrids",
	// how keepalived itself reloads and stores its configuration
	"config_save_dir", "tmp_config_directory", "reload_check_config", "reload_file", "reload_repeat",
	"reload_time_file", "include_check", "fifo_write_vrrp_states_on_reload",
	// checks keepalived makes of received adverts that govs does not make
	// either way (it never drops on them)
	"vrrp_skip_check_adv_addr", "skip_check_adv_addr",
	// used only with features govs refuses on their own (VMAC, strict mode's
	// firewall rules, LVS flushing it does not need)
	"vmac_addr_prefix", "vmac_prefix", "vrrp_ipsets", "vrrp_iptables", "nftables", "nftables_counters",
	"nftables_ifindex", "nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark", "nftables_priority",
	"lvs_flush_on_stop", "lvs_id", "script_security",
	// definitions that do nothing until an instance tracks them (tracking
	// them is an error)
	"vrrp_track_process", "bfd_instance", "global_tracking",
	// only meaningful for NAT, itself an error
	"nat_mask",
)

// Harmless reports whether a keepalived keyword govs does not act on is
// safe to leave out (a warning) rather than an error.
func Harmless(keyword string) bool { return harmless[keyword] }
