package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteSummary(t *testing.T) {
	src := `global_defs {
 router_id lab
}
vrrp_instance VI_6 {
 interface eth1
 virtual_router_id 7
 version 3
 advert_int 0.5
 nopreempt
 preempt_delay 2
 unicast_src_ip 2001:db8::1
 unicast_peer {
  2001:db8::2
 }
 virtual_ipaddress {
  2001:db8::100/64 dev eth1 scope global
 }
 virtual_ipaddress_excluded {
  198.18.0.200/32 label eth1:x
 }
 track_interface {
  eth2 weight 5
 }
}
virtual_server_group WEB {
 198.18.0.1-3 80
 fwmark 9
}
virtual_server group WEB {
 lb_algo wlc
 lb_kind DR
 protocol TCP
 real_server 198.18.0.21 80 {
  PING_CHECK {
  }
 }
}
virtual_server fwmark 7 {
 lb_algo sh
 sh-port
 lb_kind TUN
 persistence_timeout 600
 persistence_granularity 255.255.255.0
 real_server 198.18.0.22 {
  weight 5
  DNS_CHECK {
   name example.com
  }
 }
}
virtual_server 2001:db8::80 53 {
 lb_algo rr
 lb_kind NAT
 protocol UDP
 ops
 persistence_timeout 30
 persistence_granularity 64
 sorry_server 2001:db8::99 53
 real_server 2001:db8::53 5353 {
  MISC_CHECK {
   misc_path "/bin/dns-ok now"
   misc_dynamic
  }
  SMTP_CHECK {
   connect_ip 2001:db8::25
   connect_port 25
  }
 }
}
`
	c, d := parse(t, src)
	if d.HasErrors() {
		t.Fatalf("errors:\n%s", strings.Join(diagStrings(d), "\n"))
	}
	var b bytes.Buffer
	if err := WriteSummary(&b, c); err != nil {
		t.Fatal(err)
	}
	want := `global: router_id lab, VRRP version 2
VRRP instances:
  VI_6: BACKUP on eth1, vrid 7, priority 100, advert 0.5s, version 3, nopreempt, preempt_delay 2s
    unicast 2001:db8::1 -> 2001:db8::2
    VIP 2001:db8::100/64 dev eth1 scope global
    VIP 198.18.0.200/32 label eth1:x (excluded from adverts)
    track interface eth2 weight 5
`
	if b.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestCheckerWithoutPort(t *testing.T) {
	_, d := parse(t, "virtual_server fwmark 1 {\n lb_kind DR\n lb_algo rr\n real_server 198.18.0.2 {\n  TCP_CHECK {\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n   connect_port 8080\n  }\n }\n}\n")
	want := "t.conf:5: TCP_CHECK: no port to connect to (the real server has none); set connect_port"
	if got := strings.Join(diagStrings(d), "\n"); got != want {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", got, want)
	}
}

func TestLeafShapes(t *testing.T) {
	runCases(t, []caseT{{
		name: "blocks, missing and extra values",
		src:  inst(" priority 100 {\n }\n state MASTER BACKUP\n unicast_src_ip\n smtp_alert yes no"),
		diags: []string{
			"t.conf:4: priority: unexpected block",
			"t.conf:6: warning: state: extra values 'BACKUP' ignored",
			"t.conf:7: unicast_src_ip: missing value",
			"t.conf:8: warning: smtp_alert: extra values 'no' ignored",
		},
	}})
}

func TestWriteSummarySyncDaemon(t *testing.T) {
	c, d := parse(t, "global_defs {\n lvs_sync_daemon eth0 VI_1 port 9000\n}\n"+inst(" virtual_ipaddress {\n  203.0.113.1\n }"))
	if len(d) != 0 {
		t.Fatalf("diagnostics: %v", diagStrings(d))
	}
	var b bytes.Buffer
	if err := WriteSummary(&b, c); err != nil {
		t.Fatal(err)
	}
	want := ", connection sync on eth0 for VI_1 (id 51, group 224.0.0.81 port 9000, ttl 1, maxlen 1472)\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("summary lacks %q:\n%s", want, b.String())
	}
}
