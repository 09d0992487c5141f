// Package corpus generates keepalived.conf files for conformance tests: a
// file per keyword family and per bad value, as mutations of one director
// configuration, so govs and keepalived can be compared on each. It holds
// test data only; nothing in govs reads it at run time.
package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File is one generated configuration.
type File struct {
	Name string
	Src  string
}

// base is a DR director: one VRRP instance owning the VIP, one virtual
// server with two real servers. Mutations replace the marked lines.
const base = `global_defs {
    router_id lb1
    @GLOBAL@
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        198.18.0.100
    }
    @INSTANCE@
}

virtual_server 198.18.0.100 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    @VS@
    real_server 198.18.0.11 80 {
        weight 1
        @RS@
        TCP_CHECK {
            connect_timeout 3
            @CHECK@
        }
    }
    real_server 198.18.0.12 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`

func render(repl map[string]string) string {
	s := base
	for _, k := range []string{"GLOBAL", "INSTANCE", "VS", "RS", "CHECK"} {
		s = strings.ReplaceAll(s, "@"+k+"@", repl[k])
	}
	return s
}

// Files returns the generated corpus, in a fixed order.
func Files() []File {
	var out []File
	add := func(name string, repl map[string]string) {
		out = append(out, File{Name: name, Src: render(repl)})
	}
	add("base", nil)
	for _, kw := range []string{
		"enable_snmp_vrrp", "enable_dbus", "vrrp_no_swap", "checker_no_swap", "vrrp_skip_check_adv_addr",
		"vrrp_strict", "dynamic_interfaces", "enable_script_security", "vrrp_higher_prio_send_advert",
		"vrrp_lower_prio_no_advert", "lvs_flush",
	} {
		add("global-"+kw, map[string]string{"GLOBAL": kw})
	}
	for _, kv := range []string{
		"vrrp_mcast_group4 224.0.0.19", "vrrp_mcast_group6 ff02::13", "vrrp_version 3", "vrrp_garp_master_delay 2",
		"vrrp_garp_master_repeat 3", "vrrp_garp_master_refresh 60", "vrrp_garp_interval 0.1", "vrrp_gna_interval 0.1",
		"vrrp_garp_lower_prio_delay 3", "script_user nobody", "vrrp_priority -5", "checker_priority -5",
		"smtp_server 198.18.0.25", "smtp_connect_timeout 30", "notification_email_from lb@example.org",
		"vrrp_mcast_group4 198.18.0.1", "vrrp_startup_delay 5", "lvs_sync_daemon eth0 VI_1",
		"lvs_sync_daemon eth0 VI_9", "lvs_timeouts tcp 900 tcpfin 120 udp 300", "max_auto_priority 10",
		"notify_fifo /run/k.fifo", "startup_script /bin/true", "router_id",
	} {
		add("global-"+sanitize(kv), map[string]string{"GLOBAL": kv})
	}
	for _, kv := range []string{
		"nopreempt", "preempt_delay 5", "garp_master_delay 1", "garp_master_repeat 2", "garp_interval 0.1",
		"gna_interval 0.1", "garp_lower_prio_delay 2", "accept", "no_accept", "use_vmac", "native_ipv6",
		"strict_mode", "mcast_dst_ip 224.0.0.19", "unicast_src_ip 198.18.0.2\n    unicast_peer {\n        198.18.0.3\n    }",
		"unicast_peer {\n        198.18.0.3 min_ttl 250 max_ttl 255\n    }", "unicast_ttl 10", "dont_track_primary",
		"track_interface {\n        eth0 weight -20\n    }", "virtual_routes {\n        203.0.113.0/24 via 198.18.0.1\n    }",
		"virtual_rules {\n        from 198.18.0.100 table 100\n    }", "notify_master /bin/true", "notify_master \"/bin/true\" nobody",
		"notify /bin/true", "smtp_alert", "version 3", "priority 0", "priority 256", "priority high",
		"virtual_router_id 0", "virtual_router_id 256", "advert_int 0", "advert_int abc", "state BOTH",
		"interface", "wibble 1", "lvs_sync_daemon_interface eth1", "track_file {\n        f1\n    }",
		"virtual_ipaddress_excluded {\n        198.18.0.101\n    }", "higher_prio_send_advert", "debug 1",
		"kernel_rx_buf_size 65536", "skip_check_adv_addr",
	} {
		add("instance-"+sanitize(kv), map[string]string{"INSTANCE": kv})
	}
	// Scripts, with script security on as keepalived wants it.
	for _, kv := range []string{"", "reverse", "init_fail", "rise 2", "fall 2", "timeout 1", "user nobody", "user root", "weight 300", "interval abc"} {
		// keepalived needs a vrrp_script defined before the instance tracking it.
		f := File{Name: "script-" + sanitize(kv), Src: "vrrp_script chk {\n    script \"/bin/true\"\n    interval 2\n    weight -10\n    " + kv + "\n}\n" +
			render(map[string]string{
				"GLOBAL":   "enable_script_security\n    script_user root",
				"INSTANCE": "track_script {\n        chk\n    }",
			})}
		if kv == "" {
			f.Name = "script-plain"
		}
		out = append(out, f)
	}
	out = append(out, File{Name: "script-no-security", Src: render(map[string]string{"INSTANCE": "notify_master /bin/true"})})
	for _, kv := range []string{
		"lb_algo wrr", "lb_algo lc", "lb_algo wlc", "lb_algo sh", "lb_algo dh", "lb_algo mh", "lb_algo lblc",
		"lb_algo lblcr", "lb_algo sed", "lb_algo nq", "lb_algo fo", "lb_algo ovf", "lb_algo twos", "lb_algo RR",
		"lb_algo xyz", "lb_kind NAT", "lb_kind TUN", "lb_kind dr", "lb_kind FOO", "protocol UDP", "protocol SCTP",
		"protocol ICMP", "persistence_timeout 300", "persistence_timeout 300\n    persistence_granularity 255.255.255.0",
		"persistence_granularity 255.255.0", "ha_suspend", "ops", "sh-port", "sh-fallback", "mh-port", "flag-1",
		"quorum 2", "hysteresis 1", "quorum_up /bin/true", "alpha", "omega", "inhibit_on_failure",
		"virtualhost www.example.org", "sorry_server 198.18.0.13 80", "sorry_server 198.18.0.13 80\n    sorry_server_lvs_method DR",
		"delay_loop abc", "delay_loop 0", "retry 2", "delay_before_retry 2", "warmup 2", "connect_timeout 2",
		"smtp_alert", "persistence_engine sip", "nat_mask 255.255.255.0",
	} {
		add("vs-"+sanitize(kv), map[string]string{"VS": kv})
	}
	for _, kv := range []string{
		"weight 0", "weight -1", "weight abc", "inhibit_on_failure", "lb_kind NAT", "lb_kind TUN",
		"notify_up /bin/true", "notify_down /bin/true", "uthreshold 100", "lthreshold 10", "delay_loop 3",
		"retry 2", "alpha", "virtualhost rs.example.org", "smtp_alert",
	} {
		add("rs-"+sanitize(kv), map[string]string{"RS": kv})
	}
	for _, kv := range []string{
		"connect_port 8080", "connect_ip 198.18.0.21", "bindto 198.18.0.2", "bind_port 4000", "retry 3",
		"nb_get_retry 3", "delay_before_retry 2", "warmup 1", "delay_loop 3", "connect_port 0", "connect_port 70000",
		"connect_ip 1921681166", "fancy 1", "fwmark 5", "log_all_failures",
	} {
		add("check-"+sanitize(kv), map[string]string{"CHECK": kv})
	}
	out = append(out, checkers()...)
	out = append(out, structural()...)
	return out
}

// checkers replaces the TCP_CHECK of the first real server with each
// checker family.
func checkers() []File {
	var out []File
	for name, blk := range map[string]string{
		"http":               "HTTP_GET {\n            url {\n                path /health\n                status_code 200\n            }\n        }",
		"http-digest":        "HTTP_GET {\n            url {\n                path /\n                digest 640205b7b0fc66c1ea91c463fac6334d\n            }\n        }",
		"http-regex":         "HTTP_GET {\n            url {\n                path /\n                regex \"^ok\"\n            }\n        }",
		"http-regex-nomatch": "HTTP_GET {\n            url {\n                path /\n                regex \"error\"\n                regex_no_match\n            }\n        }",
		"http-regex-offset":  "HTTP_GET {\n            url {\n                path /\n                regex \"ok\"\n                regex_max_offset 100\n            }\n        }",
		"http-nb_get_retry":  "HTTP_GET {\n            nb_get_retry 3\n            url {\n                path /\n            }\n        }",
		"http-nourl":         "HTTP_GET {\n        }",
		"http-protocol":      "HTTP_GET {\n            http_protocol 1.1\n            url {\n                path /\n            }\n        }",
		"ssl":                "SSL_GET {\n            url {\n                path /\n            }\n        }",
		"misc":               "MISC_CHECK {\n            misc_path \"/bin/true\"\n            misc_timeout 5\n        }",
		"misc-dynamic":       "MISC_CHECK {\n            misc_path \"/bin/true\"\n            misc_dynamic\n        }",
		"misc-nopath":        "MISC_CHECK {\n        }",
		"dns":                "DNS_CHECK {\n            type A\n            name example.org\n        }",
		"dns-badtype":        "DNS_CHECK {\n            type XYZ\n        }",
		"smtp":               "SMTP_CHECK {\n            helo_name lb1.example.org\n        }",
		"udp":                "UDP_CHECK {\n            connect_port 53\n        }",
		"ping":               "PING_CHECK {\n        }",
		"bfd":                "BFD_CHECK {\n            name b1\n        }",
		"file":               "FILE_CHECK {\n            track_file f1\n        }",
	} {
		src := strings.Replace(render(nil), "TCP_CHECK {\n            connect_timeout 3\n            \n        }", blk, 1)
		out = append(out, File{Name: "checker-" + name, Src: src})
	}
	return sortFiles(out)
}

// structural are files that break the block structure or the top level.
func structural() []File {
	b := render(nil)
	return []File{
		{"struct-unclosed-instance", strings.Replace(b, "    @INSTANCE@\n}", "", 1)},
		{"struct-extra-brace", b + "}\n"},
		{"struct-unknown-top", b + "frobnicate {\n}\n"},
		{"struct-dup-vs", b + "virtual_server 198.18.0.100 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.13 80 {\n    }\n}\n"},
		{"struct-no-reals", b + "virtual_server 198.18.0.100 81 {\n    lb_kind DR\n    protocol TCP\n}\n"},
		{"struct-group", b + "virtual_server_group g {\n    198.18.0.100-101 443\n}\nvirtual_server group g {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.13 443 {\n    }\n}\n"},
		{"struct-group-undefined", b + "virtual_server group nope {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.13 443 {\n    }\n}\n"},
		{"struct-fwmark", b + "virtual_server fwmark 7 {\n    lb_kind DR\n    real_server 198.18.0.13 80 {\n    }\n}\n"},
		{"struct-ipv6", b + "vrrp_instance VI_6 {\n    interface eth0\n    virtual_router_id 52\n    version 3\n    virtual_ipaddress {\n        2001:db8::100\n    }\n}\nvirtual_server 2001:db8::100 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 2001:db8::11 80 {\n        TCP_CHECK {\n        }\n    }\n}\n"},
		{"struct-static-ipaddress", b + "static_ipaddress {\n    198.18.0.200/24 dev eth0\n}\n"},
		{"struct-static-routes", b + "static_routes {\n    203.0.113.0/24 via 198.18.0.1\n}\n"},
		{"struct-sync-group", b + "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n}\n"},
		{"struct-static-rules", b + "static_rules {\n    from 198.18.0.200 table 100 priority 100\n}\n"},
		{"struct-track-file", strings.Replace(b, "    @INSTANCE@\n}", "    track_file {\n        f weight 2\n    }\n}\ntrack_file f {\n    file /run/govs-corpus-track\n}", 1)},
		{"struct-sync-group-weighted-track", strings.Replace(b, "    @INSTANCE@\n}", "    track_interface {\n        eth1 weight 10\n    }\n}", 1) +
			"vrrp_instance VI_2 {\n    interface eth0\n    virtual_router_id 52\n    virtual_ipaddress {\n        198.18.0.101\n    }\n}\nvrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n}\n"},
		{"struct-sync-group-tracking-weight", strings.Replace(b, "    @INSTANCE@\n}", "    track_interface {\n        eth1 weight 10\n    }\n}", 1) +
			"vrrp_instance VI_2 {\n    interface eth0\n    virtual_router_id 52\n    virtual_ipaddress {\n        198.18.0.101\n    }\n}\nvrrp_sync_group G {\n    group {\n        VI_1\n        VI_2\n    }\n    sync_group_tracking_weight\n}\n"},
		{"struct-bad-ip", strings.Replace(b, "virtual_server 198.18.0.100 80", "virtual_server 1981800100 80", 1)},
		{"struct-include-missing", b + "include /nonexistent/govs-corpus/*.conf\n"},
	}
}

func sanitize(s string) string {
	f := strings.Fields(strings.NewReplacer("{", " ", "}", " ", "\"", " ", "/", "_").Replace(s))
	if len(f) > 3 {
		f = f[:3]
	}
	return strings.Join(f, "_")
}

func sortFiles(fs []File) []File {
	slices.SortFunc(fs, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return fs
}

// Path is a corpus file on disk.
type Path struct {
	Name string
	Path string
}

// Write writes the generated files into dir and lists them, followed by
// keepalived's samples and the fixtures in the shared test material
// (shared/keepalived-samples/*, shared/fixtures/*.conf), read in place.
func Write(dir, shared string) ([]Path, error) {
	var out []Path
	for _, f := range Files() {
		p := filepath.Join(dir, f.Name+".conf")
		if err := os.WriteFile(p, []byte(f.Src), 0o644); err != nil {
			return nil, fmt.Errorf("write corpus file: %w", err)
		}
		out = append(out, Path{f.Name, p})
	}
	for _, glob := range []string{"keepalived-samples/*", "fixtures/*.conf"} {
		files, err := filepath.Glob(filepath.Join(shared, glob))
		if err != nil {
			return nil, fmt.Errorf("list shared corpus: %w", err)
		}
		for _, f := range files {
			out = append(out, Path{"shared-" + filepath.Base(f), f})
		}
	}
	return out, nil
}
