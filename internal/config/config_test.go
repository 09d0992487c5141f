package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parse(t *testing.T, src string) (*Config, Diagnostics) {
	t.Helper()
	return ParseString("t.conf", src, Options{FS: MapFS{}})
}

// caseT is one table entry: a configuration, the exact diagnostics it
// must produce (in order) and an optional check of the model.
type caseT struct {
	name  string
	src   string
	diags []string
	check func(t *testing.T, c *Config)
}

func runCases(t *testing.T, cases []caseT) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c, d := parse(t, tt.src)
			if got := diagStrings(d); strings.Join(got, "\n") != strings.Join(tt.diags, "\n") {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.diags, "\n"))
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

const minimalInstance = "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n%s\n}\n"

func inst(body string) string { return strings.Replace(minimalInstance, "%s", body, 1) }

func TestGlobalDefs(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "defaults",
			src:  "",
			check: func(t *testing.T, c *Config) {
				g := c.Global
				eq(t, "VRRPVersion", g.VRRPVersion, 2)
				eq(t, "GARP", g.GARP, GARP{MasterDelay: 5 * time.Second, MasterRepeat: 5, MasterRefreshRepeat: 1, LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5})
				eq(t, "VRRPMcastGroup4", g.VRRPMcastGroup4, netip.MustParseAddr("224.0.0.18"))
				eq(t, "SMTPConnectTimeout", g.SMTPConnectTimeout, 30*time.Second)
			},
		},
		{
			name: "values",
			src: `global_defs {
  notification_email {
    a@example.com
    b@example.com
  }
  notification_email_from x@example.com
  smtp_server 198.18.0.1 2525
  smtp_connect_timeout 10
  router_id LVS_DEVEL
  vrrp_version 3
  vrrp_garp_master_delay 2
  vrrp_garp_master_repeat 3
  vrrp_garp_master_refresh 60
  vrrp_garp_interval 0.001
  vrrp_strict
  govs_xdp_interface eth0 eth1
  govs_xdp_interface eth2
}`,
			check: func(t *testing.T, c *Config) {
				g := c.Global
				eq(t, "NotificationEmail", g.NotificationEmail, []string{"a@example.com", "b@example.com"})
				eq(t, "SMTPServer", g.SMTPServer+" "+itoa(int(g.SMTPServerPort)), "198.18.0.1 2525")
				eq(t, "RouterID", g.RouterID, "LVS_DEVEL")
				eq(t, "VRRPVersion", g.VRRPVersion, 3)
				eq(t, "GARP", g.GARP, GARP{MasterDelay: 2 * time.Second, MasterRepeat: 3, MasterRefresh: time.Minute, MasterRefreshRepeat: 1,
					LowerPrioDelay: 2 * time.Second, LowerPrioRepeat: 3, Interval: time.Millisecond})
				eq(t, "VRRPStrict", g.VRRPStrict, true)
				eq(t, "XDPInterfaces", g.XDPInterfaces, []string{"eth0", "eth1", "eth2"})
				eq(t, "Pos", g.Pos, Pos{File: "t.conf", Line: 1})
			},
		},
		{
			name: "bad values",
			src: `global_defs {
  vrrp_version 4
  smtp_server 198.18.0.1 99999
  vrrp_mcast_group4 198.18.0.1
  vrrp_garp_master_repeat many
  govs_xdp_interface eth0/1
  router_id
  vrrp_strict maybe
}`,
			diags: []string{
				"t.conf:2: vrrp_version: number 4 outside range [2, 3]",
				"t.conf:3: smtp_server: port 99999 outside range [1, 65535]",
				"t.conf:4: vrrp_mcast_group4: '198.18.0.1' is not an IPv4 multicast address",
				"t.conf:5: vrrp_garp_master_repeat: invalid number 'many'",
				"t.conf:6: govs_xdp_interface: invalid interface name 'eth0/1'",
				"t.conf:7: router_id: missing value",
				"t.conf:8: vrrp_strict: invalid boolean 'maybe' (want on|off|true|false|yes|no)",
			},
		},
		{
			name: "known but unsupported and unknown keywords",
			src:  "global_defs {\n  enable_snmp_vrrp\n  frobnicate 1\n}\nnet_namespace_ipvs {\n  blue\n}\nwhatever\n",
			diags: []string{
				"t.conf:2: warning: enable_snmp_vrrp: keepalived option govs does not act on; ignored (it does not change forwarding, VRRP or health checks)",
				"t.conf:3: warning: unknown keyword 'frobnicate' in global_defs; ignored",
				"t.conf:5: net_namespace_ipvs: keepalived option not supported by govs; refused, because running without it would behave differently from keepalived",
				"t.conf:8: warning: unknown keyword 'whatever' in top level; ignored",
			},
			check: func(t *testing.T, c *Config) {
				eq(t, "Ignored", c.Ignored, []Ignored{{"enable_snmp_vrrp", at(2)}, {"net_namespace_ipvs", at(5)}})
			},
		},
	})
}

func TestVRRPScript(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "values and defaults",
			src:  "vrrp_script chk {\n script \"killall -0 sshd\" root wheel\n interval 2\n weight -4 reverse\n fall 2\n rise 3\n init_fail\n}\nvrrp_script d {\n script /bin/true\n}\n",
			check: func(t *testing.T, c *Config) {
				s := c.Script("chk")
				eq(t, "keyword position", s.Keywords.Of("weight"), at(4))
				s.Keywords = nil
				eq(t, "chk", *s, Script{Name: "chk", Pos: at(1), Cmd: Command{Cmd: "killall -0 sshd", User: "root", Group: "wheel", Pos: at(2)},
					Interval: 2 * time.Second, Timeout: 2 * time.Second, Weight: -4, Reverse: true, Rise: 3, Fall: 2, InitFail: true})
				d := c.Script("d")
				eq(t, "d.Interval", d.Interval, time.Second)
				eq(t, "d.Rise/Fall", [2]int{d.Rise, d.Fall}, [2]int{1, 1})
			},
		},
		{
			name: "bad values",
			src:  "vrrp_script chk {\n script \"\"\n interval 0\n weight 300\n weight 1 sideways\n fall -1\n}\nvrrp_script chk {\n}\nvrrp_script {\n}\n",
			diags: []string{
				"t.conf:1: warning: vrrp_script chk: no script given; instances tracking it ignore it",
				"t.conf:2: script: empty command",
				"t.conf:3: interval: number 0 outside range [1, 86400]",
				"t.conf:4: weight: number 300 outside range [-253, 253]",
				"t.conf:5: weight: invalid value 'sideways' (want reverse)",
				"t.conf:6: fall: number -1 outside range [1, 1048576]",
				"t.conf:8: vrrp_script: vrrp_script chk defined twice",
				"t.conf:10: vrrp_script: missing name",
			},
		},
	})
}

func TestVRRPInstance(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "defaults",
			src:  inst(""),
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "State", in.State, StateBackup)
				eq(t, "Priority", in.Priority, 100)
				eq(t, "AdvertInt", in.AdvertInt, time.Second)
				eq(t, "Version", in.Version, 2)
				eq(t, "Accept", in.Accept, true)
				eq(t, "GARP", in.GARP, c.Global.GARP)
			},
		},
		{
			name: "values",
			src: inst(` state MASTER
 priority 150
 advert_int 3
 nopreempt
 preempt_delay 4.5
 authentication {
   auth_type PASS
   auth_pass s3cret
 }
 unicast_src_ip 198.18.0.11
 unicast_peer {
   198.18.0.12
   2001:db8::12 min_ttl 250 max_ttl 255
 }
 notify_master "/bin/master.sh a b"
 notify_backup /bin/backup.sh
 notify_fault /bin/fault.sh
 notify_stop /bin/stop.sh
 notify /bin/any.sh user
 garp_master_delay 1
 garp_master_repeat 2
 garp_master_refresh 30
 garp_master_refresh_repeat 3
 dont_track_primary
 no_accept`),
			diags: []string{
				"t.conf:7: warning: nopreempt: has no effect with state MASTER (keepalived requires state BACKUP)",
				"t.conf:8: warning: preempt_delay: has no effect with state MASTER (keepalived requires state BACKUP)",
			},
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "State", in.State, StateMaster)
				eq(t, "Priority", in.Priority, 150)
				eq(t, "priority position", in.Keywords.Of("priority"), at(5))
				eq(t, "AdvertInt", in.AdvertInt, 3*time.Second)
				eq(t, "NoPreempt", in.NoPreempt, true)
				eq(t, "PreemptDelay", in.PreemptDelay, 4500*time.Millisecond)
				eq(t, "Auth", in.Auth, Auth{Type: AuthPass, Pass: "s3cret", Pos: at(9)})
				eq(t, "UnicastSrcIP", in.UnicastSrcIP, netip.MustParseAddr("198.18.0.11"))
				eq(t, "UnicastPeers", in.UnicastPeers, []UnicastPeer{
					{Addr: netip.MustParseAddr("198.18.0.12"), MaxTTL: 255, Pos: at(15)},
					{Addr: netip.MustParseAddr("2001:db8::12"), MinTTL: 250, MaxTTL: 255, Pos: at(16)},
				})
				eq(t, "Notify.Master", in.Notify.Master.Cmd, "/bin/master.sh a b")
				eq(t, "Notify.Any", in.Notify.Any, Command{Cmd: "/bin/any.sh", User: "user", Pos: at(22)})
				eq(t, "Notify.Stop", in.Notify.Stop.Cmd, "/bin/stop.sh")
				eq(t, "GARP", in.GARP, GARP{MasterDelay: time.Second, MasterRepeat: 2, MasterRefresh: 30 * time.Second, MasterRefreshRepeat: 3,
					LowerPrioDelay: time.Second, LowerPrioRepeat: 2})
				eq(t, "DontTrackPrimary", in.DontTrackPrimary, true)
				eq(t, "Accept", in.Accept, false)
			},
		},
		{
			name: "out of range values",
			src:  inst(" priority 300\n advert_int 0\n state SLAVE\n version 4\n preempt_delay 1001\n interface this-name-is-too-long"),
			diags: []string{
				"t.conf:4: priority: number 300 outside range [1, 255]",
				"t.conf:5: advert_int: time 0 outside range [0.01, 255] seconds",
				"t.conf:6: state: invalid value 'SLAVE' (want MASTER|BACKUP)",
				"t.conf:7: version: number 4 outside range [2, 3]",
				"t.conf:8: preempt_delay: time 1001 outside range [0, 1000] seconds",
				"t.conf:9: interface: invalid interface name 'this-name-is-too-long'",
			},
		},
		{
			name: "unicast instance needs no interface",
			src:  "vrrp_instance VI_1 {\n virtual_router_id 1\n unicast_peer {\n  198.18.0.2\n }\n}\n",
		},
		{
			name:  "missing interface and vrid",
			src:   "vrrp_instance VI_1 {\n}\nvrrp_instance VI_1 {\n}\n",
			diags: []string{"t.conf:1: vrrp_instance VI_1: no interface given", "t.conf:1: vrrp_instance VI_1: no virtual_router_id given", "t.conf:3: vrrp_instance: vrrp_instance VI_1 defined twice"},
		},
		{
			name: "default_interface stands in",
			src:  "global_defs {\n default_interface eth9\n}\nvrrp_instance VI_1 {\n virtual_router_id 9\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "Interface", c.Instance("VI_1").Interface, "eth9")
			},
		},
		{
			name:  "auth_pass truncated to eight characters",
			src:   inst(" authentication {\n auth_type PASS\n auth_pass 0123456789\n }"),
			diags: []string{"t.conf:6: warning: auth_pass: password longer than 8 characters; only '01234567' is used"},
			check: func(t *testing.T, c *Config) { eq(t, "Pass", c.Instance("VI_1").Auth.Pass, "01234567") },
		},
		{
			name:  "auth errors",
			src:   inst(" authentication {\n auth_type MD5\n }\n authentication {\n auth_type AH\n }\n authentication {\n auth_type PASS\n }"),
			diags: []string{"t.conf:5: auth_type: invalid value 'MD5' (want PASS|AH)", "t.conf:10: warning: authentication: auth_type PASS without auth_pass; the password is empty"},
		},
		{
			name: "VRRPv3 fractional advert and global version",
			src:  "global_defs {\n vrrp_version 3\n}\n" + inst(" advert_int 0.1"),
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "Version", in.Version, 3)
				eq(t, "AdvertInt", in.AdvertInt, 100*time.Millisecond)
			},
		},
		{
			name:  "VRRPv2 rounds fractional advert",
			src:   inst(" advert_int 1.5"),
			diags: []string{"t.conf:4: warning: advert_int: VRRP version 2 counts whole seconds; 1.5s rounded up to 2s"},
			check: func(t *testing.T, c *Config) { eq(t, "AdvertInt", c.Instance("VI_1").AdvertInt, 2*time.Second) },
		},
		{
			name:  "VRRPv3 rounds to centiseconds",
			src:   inst(" version 3\n advert_int 0.123"),
			diags: []string{"t.conf:5: warning: advert_int: VRRP version 3 counts centiseconds; 0.123s rounded to 0.12s"},
			check: func(t *testing.T, c *Config) { eq(t, "AdvertInt", c.Instance("VI_1").AdvertInt, 120*time.Millisecond) },
		},
		{
			name:  "VRRPv3 advert limit",
			src:   inst(" version 3\n advert_int 41"),
			diags: []string{"t.conf:1: advert_int: 41s too long for VRRP version 3 (at most 40.95s)"},
		},
		{
			name:  "IPv6 instance uses version 3",
			src:   inst(" version 2\n virtual_ipaddress {\n 2001:db8::100/64\n }"),
			diags: []string{"t.conf:1: warning: vrrp_instance VI_1: IPv6 addresses need VRRP version 3; using 3"},
			check: func(t *testing.T, c *Config) { eq(t, "Version", c.Instance("VI_1").Version, 3) },
		},
		{
			name: "duplicate vrid on one interface",
			src:  inst("") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 51\n}\nvrrp_instance VI_3 {\n interface eth1\n virtual_router_id 51\n}\n",
			diags: []string{
				"t.conf:6: virtual_router_id: 51 on eth0 already used by vrrp_instance VI_1 at t.conf:1",
			},
		},
		{
			name: "bad unicast peers",
			src:  inst(" unicast_peer {\n 1921681169\n 198.18.0.1 min_ttl 300\n 198.18.0.2 ttl 3\n }\n unicast_src_ip nope"),
			diags: []string{
				"t.conf:5: unicast_peer: invalid IP address '1921681169'",
				"t.conf:6: unicast_peer: 198.18.0.1: min_ttl '300' outside range [0, 255]",
				"t.conf:7: unicast_peer: 198.18.0.2: unexpected 'ttl'",
				"t.conf:9: unicast_src_ip: invalid IP address 'nope'",
			},
		},
		{
			name: "unsupported and unknown keywords",
			src:  inst(" use_vmac\n track_process {\n  nginx\n }\n lvs_sync_daemon_interface eth1\n wibble"),
			diags: []string{
				"t.conf:4: use_vmac: keepalived option not supported by govs; refused, because running without it would behave differently from keepalived",
				"t.conf:5: track_process: keepalived option not supported by govs; refused, because running without it would behave differently from keepalived",
				"t.conf:8: warning: lvs_sync_daemon_interface: lvs_sync_daemon_interface in a vrrp_instance is deprecated (keepalived says so too); taken as global_defs' lvs_sync_daemon eth1 VI_1",
				"t.conf:9: warning: unknown keyword 'wibble' in vrrp_instance; ignored",
			},
		},
	})
}

func TestVirtualIPAddress(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "forms",
			src: inst(` virtual_ipaddress {
  192.168.200.16
  192.168.200.17/24 dev eth1
  192.168.200.18/24 dev eth2 scope link label eth2:1 brd 192.168.200.255 no_track
 }
 virtual_ipaddress_excluded {
  2001:db8::1/64 dev eth0 -nodad
 }`),
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "VIPs", in.VIPs, []VIP{
					{Prefix: netip.MustParsePrefix("192.168.200.16/32"), Pos: at(5)},
					{Prefix: netip.MustParsePrefix("192.168.200.17/24"), Dev: "eth1", Pos: at(6)},
					{Prefix: netip.MustParsePrefix("192.168.200.18/24"), Dev: "eth2", Scope: "link", Label: "eth2:1",
						Brd: netip.MustParseAddr("192.168.200.255"), Options: []string{"no_track"}, Pos: at(7)},
				})
				eq(t, "ExcludedVIPs", in.ExcludedVIPs, []VIP{
					{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Dev: "eth0", Options: []string{"-nodad"}, Pos: at(10)},
				})
			},
		},
		{
			name: "bad entries",
			src: inst(` virtual_ipaddress {
  1921681169
  10.0.0.1/33
  10.0.0.2 dev
  10.0.0.3 scope galaxy
  10.0.0.4 label this-label-is-too-long
  10.0.0.5 sparkle
  10.0.0.5/24
 }
 virtual_ipaddress 10.0.0.9`),
			diags: []string{
				"t.conf:5: virtual_ipaddress: invalid IP address '1921681169' (dots missing? an IPv4 address is written like 192.168.1.169)",
				"t.conf:6: virtual_ipaddress: invalid IP address '10.0.0.1/33'",
				"t.conf:7: virtual_ipaddress: virtual_ipaddress 10.0.0.2: 'dev' needs a value",
				"t.conf:8: virtual_ipaddress: invalid scope 'galaxy' (want site|link|host|nowhere|global)",
				"t.conf:9: virtual_ipaddress: label 'this-label-is-too-long' longer than 15 characters",
				"t.conf:10: warning: virtual_ipaddress: 10.0.0.5: unknown option 'sparkle' ignored",
				"t.conf:11: warning: virtual_ipaddress: 10.0.0.5 already listed at t.conf:10",
				"t.conf:13: virtual_ipaddress: expects a block { ... }",
			},
		},
		{
			name:  "mixed families",
			src:   inst(" virtual_ipaddress {\n 10.0.0.1\n 2001:db8::1\n }"),
			diags: []string{"t.conf:6: warning: virtual_ipaddress: 2001:db8::1 is not the same address family as 10.0.0.1; all addresses of an instance must be; ignored (use virtual_ipaddress_excluded to mix families)"},
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "VIPs", len(in.VIPs), 1)
				eq(t, "ExcludedVIPs", len(in.ExcludedVIPs), 0)
			},
		},
	})
}

func TestTracking(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "track_interface and track_script",
			src: "vrrp_script chk {\n script /bin/true\n weight -4\n}\n" + inst(` track_interface {
  eth1 weight 2
  eth2 weight -2 reverse
  eth3
 }
 track_script {
  chk
  chk weight 2
  missing
 }`),
			diags: []string{
				"t.conf:15: warning: track_script: chk already tracked at t.conf:14; ignored (keepalived ignores it too)",
				"t.conf:16: warning: track_script: vrrp_script 'missing' is not defined; ignored",
			},
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "TrackInterfaces", in.TrackInterfaces, []TrackInterface{
					{Name: "eth1", Weight: 2, Pos: at(9)},
					{Name: "eth2", Weight: -2, Reverse: true, Pos: at(10)},
					{Name: "eth3", Pos: at(11)},
				})
				eq(t, "TrackScripts", in.TrackScripts, []TrackScript{
					{Name: "chk", Weight: -4, Pos: at(14)},
					{Name: "missing", Pos: at(16)},
				})
			},
		},
		{
			name: "bad weights",
			src:  inst(" track_interface {\n  eth1 weight 254\n  eth2 weight\n  eth3 weight x\n  eth/4\n }"),
			diags: []string{
				"t.conf:5: track_interface: eth1: weight 254 outside range [-253, 253]",
				"t.conf:6: track_interface: eth2: weight needs a value",
				"t.conf:7: track_interface: eth3: invalid weight 'x'",
				"t.conf:8: eth/4: invalid interface name 'eth/4'",
			},
		},
	})
}

func TestSyncGroup(t *testing.T) {
	two := inst("") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n}\n"
	runCases(t, []caseT{
		{
			name: "group block with notify",
			src:  "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n notify_master \"/bin/m x\"\n smtp_alert\n}\n" + two,
			check: func(t *testing.T, c *Config) {
				g := c.SyncGroups[0]
				eq(t, "Instances", g.Instances, []string{"VI_1", "VI_2"})
				eq(t, "Notify.Master", g.Notify.Master.Cmd, "/bin/m x")
				eq(t, "SMTPAlert", g.SMTPAlert, true)
				eq(t, "VI_2.SyncGroup", c.Instance("VI_2").SyncGroup, "G")
			},
		},
		{
			name: "old syntax without group block",
			src:  "vrrp_sync_group VG1 {\n  VI_1\n  VI_2\n}\n" + two,
			check: func(t *testing.T, c *Config) {
				eq(t, "Instances", c.SyncGroups[0].Instances, []string{"VI_1", "VI_2"})
			},
		},
		{
			name: "problems",
			src:  "vrrp_sync_group A {\n group {\n  VI_1\n  VI_9\n }\n}\nvrrp_sync_group B {\n group {\n  VI_1\n }\n}\nvrrp_sync_group C {\n}\nvrrp_sync_group A {\n}\n" + two,
			diags: []string{
				"t.conf:1: warning: vrrp_sync_group A: vrrp_instance VI_9 is not defined; ignored",
				"t.conf:1: warning: vrrp_sync_group A has only one vrrp_instance; keepalived warns about this too",
				"t.conf:7: vrrp_sync_group B: vrrp_instance VI_1 already belongs to vrrp_sync_group A",
				"t.conf:12: warning: vrrp_sync_group C: no instances in group",
				"t.conf:14: vrrp_sync_group: vrrp_sync_group A defined twice",
			},
		},
	})
}

const vsHead = "virtual_server 192.168.1.169 80 {\n"

func TestVirtualServer(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "seed-like service and defaults",
			src:  vsHead + " lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 192.168.1.166 80 {\n  weight 1\n }\n}\n",
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				eq(t, "Addr", vs.Addr, netip.MustParseAddr("192.168.1.169"))
				eq(t, "Port", vs.Port, uint16(80))
				eq(t, "Scheduler", vs.Scheduler, "rr")
				eq(t, "Method", vs.Method, DR)
				eq(t, "DelayLoop", vs.DelayLoop, 60*time.Second)
				eq(t, "Quorum", vs.Quorum, 1)
				eq(t, "PersistenceGranularity", vs.PersistenceGranularity, 32)
				eq(t, "Persistent", vs.Persistent(), false)
				rs := vs.RealServers[0]
				eq(t, "rs.Method", rs.Method, DR)
				eq(t, "rs.Weight", rs.Weight, 1)
			},
		},
		{
			name: "new spellings and every option",
			src: `virtual_server 2001:db8::100 443 {
 lvs_sched mh
 mh-port
 ops
 lvs_method TUN
 protocol UDP
 persistence_timeout
 persistence_granularity 64
 delay_loop 2.5
 quorum 3
 hysteresis 1
 quorum_up /bin/up
 quorum_down "/bin/down now"
 alpha
 omega
 ha_suspend
 virtualhost www.example.com
 inhibit_on_failure
 sorry_server 2001:db8::99 8080
 sorry_server_inhibit
 sorry_server_lvs_method NAT
 ip_family inet6
 real_server 2001:db8::1 443 {
  weight 0
  lvs_method NAT
  notify_up /bin/rs-up
  notify_down "/bin/rs-down x"
  uthreshold 100
  lthreshold 10
 }
 real_server 198.18.0.2 443 {
  weight 5
 }
}`,
			check: func(t *testing.T, c *Config) {
				vs := c.VirtualServers[0]
				eq(t, "Scheduler", vs.Scheduler, "mh")
				eq(t, "SchedulerFlags", vs.SchedulerFlags, []string{"mh-port", "ops"})
				eq(t, "Method", vs.Method, TUN)
				eq(t, "Protocol", vs.Protocol, UDP)
				eq(t, "PersistenceTimeout", vs.PersistenceTimeout, 360*time.Second)
				eq(t, "PersistenceGranularity", vs.PersistenceGranularity, 64)
				eq(t, "DelayLoop", vs.DelayLoop, 2500*time.Millisecond)
				eq(t, "Quorum/Hysteresis", [2]int{vs.Quorum, vs.Hysteresis}, [2]int{3, 1})
				eq(t, "QuorumDown", vs.QuorumDown.Cmd, "/bin/down now")
				eq(t, "flags", [4]bool{vs.Alpha, vs.Omega, vs.HASuspend, vs.InhibitOnFailure}, [4]bool{true, true, true, true})
				eq(t, "VirtualHost", vs.VirtualHost, "www.example.com")
				eq(t, "SorryServer", *vs.SorryServer, SorryServer{Addr: netip.MustParseAddr("2001:db8::99"), Port: 8080, Method: NAT, Inhibit: true, Pos: at(19)})
				rs := vs.RealServers[0]
				eq(t, "rs", [3]int{rs.Weight, rs.UThreshold, rs.LThreshold}, [3]int{0, 100, 10})
				eq(t, "rs.Method", rs.Method, NAT)
				eq(t, "rs.NotifyDown", rs.NotifyDown.Cmd, "/bin/rs-down x")
				eq(t, "rs.InhibitOnFailure (inherited)", rs.InhibitOnFailure, true)
				eq(t, "rs.VirtualHost (inherited)", rs.VirtualHost, "www.example.com")
				eq(t, "tunnelled rs of other family", vs.RealServers[1].Method, TUN)
			},
		},
		{
			name: "fwmark and group services",
			src: `virtual_server_group G {
 192.168.200.1-10 80
 192.168.201.250-192.168.202.10 80
 192.168.203.8/29 443
 2001:db8::1
 fwmark 7 inet6
}
virtual_server group G {
 lb_algo wrr
 lb_kind DR
 protocol TCP
 real_server 192.168.1.1 80 {
 }
}
virtual_server fwmark 5 {
 lb_algo sh
 lb_kind DR
 persistence_timeout 50
 persistence_granularity 255.255.255.0
 real_server 192.168.1.1 80 {
 }
}`,
			diags: []string{
				"t.conf:8: warning: virtual_server group G: port 0 (all ports) only works persistent; using persistence_timeout 360",
				"t.conf:20: warning: real_server 192.168.1.1:80: port 80 ignored: a fwmark service keeps the packet's port",
			},
			check: func(t *testing.T, c *Config) {
				g := c.VirtualServerGroup("G")
				r := func(a, b string) [2]netip.Addr { return [2]netip.Addr{netip.MustParseAddr(a), netip.MustParseAddr(b)} }
				var got [][2]netip.Addr
				for _, e := range g.Entries[:4] {
					got = append(got, [2]netip.Addr{e.First, e.Last})
				}
				eq(t, "ranges", got, [][2]netip.Addr{
					r("192.168.200.1", "192.168.200.10"), r("192.168.201.250", "192.168.202.10"),
					r("192.168.203.8", "192.168.203.15"), r("2001:db8::1", "2001:db8::1"),
				})
				eq(t, "ports", []uint16{g.Entries[0].Port, g.Entries[2].Port, g.Entries[3].Port}, []uint16{80, 443, 0})
				eq(t, "fwmark entry", [2]any{g.Entries[4].Fwmark, g.Entries[4].Family}, [2]any{uint32(7), "inet6"})
				eq(t, "group vs", c.VirtualServers[0].Group, "G")
				fw := c.VirtualServers[1]
				eq(t, "Fwmark", fw.Fwmark, uint32(5))
				eq(t, "PersistenceGranularity", fw.PersistenceGranularity, 24)
				eq(t, "Name", fw.Name(), "fwmark 5")
				eq(t, "fwmark real server port", fw.RealServers[0].Port, uint16(0))
			},
		},
		{
			name: "bad values",
			src: vsHead + ` lb_algo fastest
 lb_kind XDP
 protocol ICMP
 persistence_timeout 2678401
 persistence_granularity 255.0.255.0
 delay_loop never
 quorum 0
 hysteresis -1
 sorry_server_inhibit
 sorry_server 1921681170
 real_server 10.0.0.1 70000 {
 }
 real_server 10.0.0.2 80 {
  weight -1
  lvs_method TUN type gue port 6080
 }
 real_server 2001:db8::2 80 {
 }
 real_server 10.0.0.2 80 {
 }
 real_server 10.0.0.3 8080 {
  lb_kind DR
 }
}
$RS=real_server 10.0.0.9 80 { weight 1 }
virtual_server 10.0.0.1 {
 $RS
}
virtual_server fwmark 0 {
 $RS
}
virtual_server group nothere {
 $RS
}
virtual_server 192.168.1.169 80 {
 protocol ICMP
 $RS
}
virtual_server {
}
virtual_server 10.0.0.5 80 {
}`,
			diags: []string{
				"t.conf:2: lb_algo: invalid value 'fastest' (want rr|wrr|lc|wlc|lblc|sh|mh|dh|fo|ovf|lblcr|sed|nq|twos)",
				"t.conf:3: lb_kind: invalid value 'XDP' (want NAT|DR|TUN|FNAT)",
				"t.conf:4: protocol: invalid value 'ICMP' (want TCP|UDP|SCTP)",
				"t.conf:5: persistence_timeout: number 2678401 outside range [0, 2678400]",
				"t.conf:6: persistence_granularity: invalid netmask '255.0.255.0'",
				"t.conf:7: delay_loop: invalid time 'never' (seconds)",
				"t.conf:8: quorum: number 0 outside range [1, 2147483647]",
				"t.conf:9: hysteresis: number -1 outside range [0, 2147483647]",
				"t.conf:10: sorry_server_inhibit: sorry_server must come first",
				"t.conf:11: sorry_server: invalid IP address '1921681170' (dots missing? an IPv4 address is written like 192.168.1.169)",
				"t.conf:12: real_server: port 70000 outside range [0, 65535]",
				"t.conf:15: weight: number -1 outside range [0, 2147483647]",

				"t.conf:18: real_server [2001:db8::2]:80: address family differs from virtual_server 192.168.1.169:80 (only TUN can mix families)",
				"t.conf:20: warning: real_server 10.0.0.2:80: duplicate of the real server at t.conf:14; ignored",
				"t.conf:23: warning: lb_kind: keepalived 2.2 does not know lb_kind in a real_server and ignores it (the virtual server's method applies); govs does the same (write lvs_method)",
				"t.conf:27: warning: virtual_server 10.0.0.1:0: no protocol given; defaulting to UDP like keepalived (write 'protocol TCP' for web services)",
				"t.conf:27: warning: virtual_server 10.0.0.1:0: no scheduler given; using wlc",
				"t.conf:27: warning: virtual_server 10.0.0.1:0: port 0 (all ports) only works persistent; using persistence_timeout 360",
				"t.conf:27: warning: virtual_server 10.0.0.1:0: no forwarding method given; using NAT",
				"t.conf:30: virtual_server: number 0 outside range [1, 4294967295]",
				"t.conf:33: warning: virtual_server: virtual_server_group 'nothere' is not defined; the virtual server is ignored (as keepalived does)",
				"t.conf:36: warning: virtual_server 192.168.1.169:80: no scheduler given; using wlc",
				"t.conf:36: virtual_server TCP 192.168.1.169:80: already defined at t.conf:1",
				"t.conf:36: warning: virtual_server 192.168.1.169:80: no forwarding method given; using NAT",
				"t.conf:37: protocol: invalid value 'ICMP' (want TCP|UDP|SCTP)",
				"t.conf:40: virtual_server: missing address, 'fwmark N' or 'group NAME'",
				"t.conf:42: warning: virtual_server 10.0.0.5:80: no real servers; ignored (as keepalived does)",
			},
		},
		{
			name: "bad group entries",
			src:  "virtual_server_group G {\n 10.0.0.10-5 80\n 10.0.0.1-300\n nonsense\n fwmark x\n 10.0.0.1 80 extra\n}\n",
			diags: []string{
				"t.conf:2: virtual_server_group: invalid IP address or range '10.0.0.10-5'",
				"t.conf:3: virtual_server_group: invalid IP address or range '10.0.0.1-300'",
				"t.conf:4: virtual_server_group: invalid IP address or range 'nonsense'",
				"t.conf:5: fwmark: invalid number 'x'",
				"t.conf:6: warning: virtual_server_group: extra values after '10.0.0.1 80' ignored",
			},
		},
	})
}

func TestCheckers(t *testing.T) {
	rs := func(body string) string {
		return vsHead + " protocol TCP\n lb_algo rr\n lb_kind NAT\n delay_loop 6\n real_server 192.168.1.166 80 {\n" + body + "\n }\n}\n"
	}
	checker := func(c *Config, i int) *Checker { return c.VirtualServers[0].RealServers[0].Checkers[i] }
	runCases(t, []caseT{
		{
			// keepalived 2.2 does not know nb_get_retry in TCP_CHECK: it
			// warns and keeps retry at 1, and so does govs.
			name:  "TCP_CHECK with old spelling and inherited timings",
			src:   rs("  TCP_CHECK {\n   connect_timeout 5\n   nb_get_retry 3\n   delay_before_retry 3\n   connect_port 8080\n   bindto 192.168.1.2\n   bind_port 4000\n  }"),
			diags: []string{"t.conf:9: warning: nb_get_retry: keepalived 2.2 does not know nb_get_retry in TCP_CHECK and ignores it, so retry keeps its default; govs does the same (write 'retry 3' to retry)"},
			check: func(t *testing.T, c *Config) {
				ch := checker(c, 0)
				eq(t, "Type", ch.Type, TCPCheck)
				eq(t, "timings", [4]time.Duration{ch.ConnectTimeout, ch.DelayBeforeRetry, ch.DelayLoop, ch.Warmup}, [4]time.Duration{5 * time.Second, 3 * time.Second, 6 * time.Second, 6 * time.Second})
				eq(t, "Retry", ch.Retry, 1)
				eq(t, "Target", ch.Target, Target{ConnectIP: netip.MustParseAddr("192.168.1.166"), ConnectPort: 8080,
					BindTo: netip.MustParseAddr("192.168.1.2"), BindPort: 4000, Pos: at(7)})
			},
		},
		{
			name: "defaults per type and inheritance from real server",
			src:  rs("  retry 7\n  TCP_CHECK {\n  }\n  MISC_CHECK {\n   misc_path \"/bin/check arg\"\n   misc_timeout 5\n   misc_dynamic\n  }\n  DNS_CHECK {\n   type A\n   name example.com\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n  PING_CHECK {\n  }"),
			check: func(t *testing.T, c *Config) {
				tcp, misc, dns, http, ping := checker(c, 0), checker(c, 1), checker(c, 2), checker(c, 3), checker(c, 4)
				eq(t, "tcp", [3]any{tcp.Retry, tcp.ConnectTimeout, tcp.DelayBeforeRetry}, [3]any{7, 5 * time.Second, time.Second})
				eq(t, "misc", *misc.Misc, MiscCheckSpec{Path: Command{Cmd: "/bin/check arg", Pos: at(11)}, Timeout: 5 * time.Second, Dynamic: true})
				eq(t, "dns", [2]any{*dns.DNS, dns.DelayBeforeRetry}, [2]any{DNSCheckSpec{Type: "A", Name: "example.com"}, 6 * time.Second})
				eq(t, "http", [2]any{http.DelayBeforeRetry, http.HTTP.URLs[0].StatusCodes}, [2]any{3 * time.Second, []StatusRange{{200, 299}}})
				eq(t, "ping", ping.Type, PingCheck)
			},
		},
		{
			name: "HTTP_GET and SSL_GET",
			src: rs(`  HTTP_GET {
   url {
    path /health
    digest 640205B7B0FC66C1EA91C463FAC6334D
    status_code 200 300-399
    virtualhost a.example
   }
   url {
    path /other
   }
   http_protocol 1.1
   warmup 0
  }
  SSL_GET {
   url {
    path /
   }
   enable_sni
   connect_ip 192.168.1.200
  }`),
			check: func(t *testing.T, c *Config) {
				h := checker(c, 0)
				eq(t, "URL0", h.HTTP.URLs[0], URL{Path: "/health", Digest: "640205b7b0fc66c1ea91c463fac6334d",
					StatusCodes: []StatusRange{{200, 200}, {300, 399}}, VirtualHost: "a.example", Pos: at(8)})
				eq(t, "Protocol", h.HTTP.Protocol, "1.1")
				eq(t, "Warmup", h.Warmup, time.Duration(0))
				s := checker(c, 1)
				eq(t, "ssl", [2]any{s.Type, s.HTTP.EnableSNI}, [2]any{SSLGet, true})
				eq(t, "ConnectIP", s.ConnectIP, netip.MustParseAddr("192.168.1.200"))
				eq(t, "ConnectPort (real server's)", s.ConnectPort, uint16(80))
			},
		},
		{
			name: "SMTP_CHECK hosts and UDP_CHECK",
			src:  rs("  SMTP_CHECK {\n   helo_name \"foo.bar\"\n   host {\n    connect_ip 172.16.1.11\n    connect_port 587\n   }\n  }\n  UDP_CHECK {\n   payload Ab12f 3\n   require_reply 0aXx\n   min_reply_length 2\n   max_reply_length 100\n  }"),
			check: func(t *testing.T, c *Config) {
				s := checker(c, 0)
				eq(t, "helo", s.SMTP.HeloName, "foo.bar")
				eq(t, "hosts", s.SMTP.Hosts, []Target{{ConnectIP: netip.MustParseAddr("172.16.1.11"), ConnectPort: 587, Pos: at(9)}})
				u := checker(c, 1)
				eq(t, "udp", *u.UDP, UDPCheckSpec{Payload: []byte{0xab, 0x12, 0x0f, 0x03}, RequireReply: true, ReplyPattern: "0axx", MinReplyLength: 2, MaxReplyLength: 100})
			},
		},
		{
			name: "bad checker values",
			src: rs(`  TCP_CHECK {
   connect_port 0
   connect_timeout -1
   retry x
   connect_ip 1921681166
   fancy 1
  }
  HTTP_GET {
   url {
    digest abc
    status_code 99 300-200
    regex "(?<=a)b"
   }
   http_protocol 2
  }
  MISC_CHECK {
  }
  DNS_CHECK {
   type PTR
  }
  UDP_CHECK {
   payload zz
   min_reply_length 10
   max_reply_length 5
  }
  FILE_CHECK {
  }`),
			diags: []string{
				"t.conf:8: connect_port: port 0 outside range [1, 65535]",
				"t.conf:9: connect_timeout: time -1 outside range [0.001, 86400] seconds",
				"t.conf:10: retry: invalid number 'x'",
				"t.conf:11: connect_ip: invalid IP address '1921681166' (dots missing? an IPv4 address is written like 192.168.1.169)",
				"t.conf:12: warning: unknown keyword 'fancy' in TCP_CHECK; ignored",
				"t.conf:14: HTTP_GET: no url block",
				"t.conf:15: url: no path",
				"t.conf:16: digest: invalid MD5 digest 'abc' (want 32 hex digits)",
				"t.conf:17: status_code: invalid status code '99' (want N or N-M within [100, 599])",
				"t.conf:17: status_code: invalid status code '300-200' (want N or N-M within [100, 599])",
				"t.conf:18: regex: regex \"(?<=a)b\": error parsing regexp: invalid named capture: `(?<=a)b` (govs matches with Go's RE2 syntax: PCRE's backreferences, lookaround and possessive quantifiers are not available)",
				"t.conf:20: http_protocol: invalid value '2' (want 1.0|1.0C|1.1)",
				"t.conf:22: MISC_CHECK: no misc_path",
				"t.conf:25: type: invalid value 'PTR' (want A|NS|CNAME|SOA|MX|TXT|AAAA)",
				"t.conf:27: UDP_CHECK: min_reply_length 10 above max_reply_length 5",
				"t.conf:28: payload: invalid hex string 'zz'",
				"t.conf:32: FILE_CHECK: keepalived option not supported by govs; refused, because running without it would behave differently from keepalived",
			},
		},
	})
}

func TestNeverClosedBlockStillChecksTheRest(t *testing.T) {
	src := inst(" priority 100") + "virtual_server 10.0.0.1 80 {\n lb_algo rr\n real_server 10.0.0.2 80 {\n  weight -3\n }\n"
	src = strings.Replace(src, "}\nvirtual_server", "virtual_server", 1)
	_, d := parse(t, src)
	want := []string{
		"t.conf:1: vrrp_instance VI_1 opened here is never closed (virtual_server at line 5 is only valid at top level; missing '}')",
		"t.conf:5: virtual_server 10.0.0.1 80 opened here is never closed (missing '}' before end of file)",
		"t.conf:5: warning: virtual_server 10.0.0.1:80: no protocol given; defaulting to UDP like keepalived (write 'protocol TCP' for web services)",
		"t.conf:5: warning: virtual_server 10.0.0.1:80: no forwarding method given; using NAT",
		"t.conf:8: weight: number -3 outside range [0, 2147483647]",
	}
	if got := diagStrings(d); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseFileIncludesAndConditionals(t *testing.T) {
	fsys := MapFS{
		"/etc/keepalived/keepalived.conf": "$PRIO=150\ninclude conf.d/*.conf\n",
		"/etc/keepalived/conf.d/10-vrrp.conf": `vrrp_instance VI_1 {
 interface eth0
 virtual_router_id 51
 @main priority ${PRIO}
 @^main priority 50
 virtual_ipaddress {
  ${VIP}
 }
}
`,
		"/etc/keepalived/conf.d/00-defs.conf": "$VIP=198.18.0.100/24\n",
		"/etc/keepalived/conf.d/20-bad.conf":  "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 0\n}\n",
	}
	for _, tc := range []struct {
		id       string
		priority int
	}{{"main", 150}, {"backup", 50}} {
		c, d := ParseFile("/etc/keepalived/keepalived.conf", Options{FS: fsys, ConfigID: tc.id})
		want := "/etc/keepalived/conf.d/20-bad.conf:3: virtual_router_id: number 0 outside range [1, 255]"
		if got := strings.Join(diagStrings(d), "\n"); !strings.HasPrefix(got, want) {
			t.Errorf("id %s: diagnostics %q, want first %q", tc.id, got, want)
		}
		in := c.Instance("VI_1")
		if in == nil {
			t.Fatalf("id %s: VI_1 missing", tc.id)
		}
		eq(t, "Priority", in.Priority, tc.priority)
		eq(t, "VIP", in.VIPs[0].Prefix, netip.MustParsePrefix("198.18.0.100/24"))
		eq(t, "VIP pos", in.VIPs[0].Pos, Pos{File: "/etc/keepalived/conf.d/10-vrrp.conf", Line: 7})
		if d.Err() == nil {
			t.Error("Err() = nil with errors present")
		}
	}
}

// at is a position in the test file.
func at(line int) Pos { return Pos{File: "t.conf", Line: line} }

func TestUnclosedBlockAcrossIncludes(t *testing.T) {
	fsys := MapFS{
		"/k/keepalived.conf": "include conf.d/*.conf\n",
		"/k/conf.d/a.conf":   "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n",
		"/k/conf.d/b.conf":   "vrrp_instance B {\n interface eth0\n virtual_router_id 2\n}\n",
	}
	c, d := ParseFile("/k/keepalived.conf", Options{FS: fsys})
	want := "/k/conf.d/a.conf:1: vrrp_instance A opened here is never closed (vrrp_instance at /k/conf.d/b.conf:1 is only valid at top level; missing '}')"
	if got := strings.Join(diagStrings(d), "\n"); got != want {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", got, want)
	}
	if c.Instance("A") == nil || c.Instance("B") == nil {
		t.Error("both instances should still be parsed")
	}
}

func TestLVSSyncDaemon(t *testing.T) {
	withInst := func(line string) string {
		return "global_defs {\n  " + line + "\n}\n" + inst(" virtual_ipaddress {\n  203.0.113.1\n }")
	}
	runCases(t, []caseT{
		{
			name: "defaults, sync id from the instance's VRID",
			src:  withInst("lvs_sync_daemon eth0 VI_1"),
			check: func(t *testing.T, c *Config) {
				eq(t, "LVSSyncDaemon", *c.Global.LVSSyncDaemon, LVSSyncDaemon{Pos: at(2), Interface: "eth0", Instance: "VI_1",
					SyncID: 51, MaxLen: 1472, Port: 8848, TTL: 1, Group: netip.MustParseAddr("224.0.0.81")})
			},
		},
		{
			name: "every option",
			src:  withInst("lvs_sync_daemon eth1 VI_1 id 7 maxlen 9000 port 9999 ttl 3 group ff02::81"),
			check: func(t *testing.T, c *Config) {
				eq(t, "LVSSyncDaemon", *c.Global.LVSSyncDaemon, LVSSyncDaemon{Pos: at(2), Interface: "eth1", Instance: "VI_1",
					SyncID: 7, MaxLen: 9000, Port: 9999, TTL: 3, Group: netip.MustParseAddr("ff02::81")})
			},
		},
		{
			name: "govs_sync_key authenticates it, before or after",
			src:  withInst("govs_sync_key 0123456789abcdef-key\n  lvs_sync_daemon eth0 VI_1"),
			check: func(t *testing.T, c *Config) {
				eq(t, "Key", c.Global.LVSSyncDaemon.Key, "0123456789abcdef-key")
			},
		},
		{
			name:  "govs_sync_key too short",
			src:   withInst("lvs_sync_daemon eth0 VI_1\n  govs_sync_key short"),
			diags: []string{"t.conf:3: govs_sync_key: govs_sync_key must be at least 16 characters (it is a shared secret)"},
			check: func(t *testing.T, c *Config) {
				eq(t, "Key", c.Global.LVSSyncDaemon.Key, "")
			},
		},
		{
			name: "table sizes",
			src:  withInst("govs_conn_table_size 1048576\n  govs_embryo_table_size 131072"),
			check: func(t *testing.T, c *Config) {
				eq(t, "ConnTableSize", c.Global.ConnTableSize, 1048576)
				eq(t, "EmbryoTableSize", c.Global.EmbryoTableSize, 131072)
			},
		},
		{
			name: "new-flow limit",
			src:  withInst("govs_new_flow_limit 200000"),
			check: func(t *testing.T, c *Config) {
				eq(t, "NewFlowLimit", c.Global.NewFlowLimit, uint32(200000))
			},
		},
		{
			name:  "new-flow limit out of range",
			src:   withInst("govs_new_flow_limit -1"),
			diags: []string{"t.conf:2: govs_new_flow_limit: number -1 outside range [0, 1000000000]"},
		},
		{
			name:  "table size out of range",
			src:   withInst("govs_conn_table_size 100"),
			diags: []string{"t.conf:2: govs_conn_table_size: number 100 outside range [1024, 16777216]"},
		},
		{
			name:  "govs_sync_key without lvs_sync_daemon",
			src:   withInst("govs_sync_key 0123456789abcdef-key"),
			diags: []string{"t.conf:2: govs_sync_key: govs_sync_key needs lvs_sync_daemon (or govs_bgp's connection_sync): without connection sync there is nothing to authenticate"},
		},
		{
			name: "id 0 is kept",
			src:  withInst("lvs_sync_daemon eth0 VI_1 id 0"),
			check: func(t *testing.T, c *Config) {
				eq(t, "SyncID", c.Global.LVSSyncDaemon.SyncID, 0)
			},
		},
		{
			name:  "unknown instance",
			src:   withInst("lvs_sync_daemon eth0 VI_9"),
			diags: []string{"t.conf:2: warning: lvs_sync_daemon: vrrp_instance 'VI_9' not found; connection sync is off (keepalived runs without it too)"},
			check: func(t *testing.T, c *Config) {
				if c.Global.LVSSyncDaemon != nil {
					t.Errorf("LVSSyncDaemon = %+v, want nil", c.Global.LVSSyncDaemon)
				}
			},
		},
		{name: "missing instance", src: withInst("lvs_sync_daemon eth0"), diags: []string{"t.conf:2: lvs_sync_daemon: expects 2 values, got 1"}},
		{name: "bad interface", src: withInst("lvs_sync_daemon eth0/1 VI_1"), diags: []string{"t.conf:2: lvs_sync_daemon: invalid interface name 'eth0/1'"}},
		{name: "id range", src: withInst("lvs_sync_daemon eth0 VI_1 id 256"), diags: []string{"t.conf:2: lvs_sync_daemon: number 256 outside range [0, 255]"}},
		{name: "maxlen range", src: withInst("lvs_sync_daemon eth0 VI_1 maxlen 70000"), diags: []string{"t.conf:2: lvs_sync_daemon: number 70000 outside range [1, 65507]"}},
		{name: "port range", src: withInst("lvs_sync_daemon eth0 VI_1 port 0"), diags: []string{"t.conf:2: lvs_sync_daemon: port 0 outside range [1, 65535]"}},
		{name: "ttl range", src: withInst("lvs_sync_daemon eth0 VI_1 ttl 0"), diags: []string{"t.conf:2: lvs_sync_daemon: number 0 outside range [1, 255]"}},
		{name: "group not multicast", src: withInst("lvs_sync_daemon eth0 VI_1 group 198.18.0.1"), diags: []string{"t.conf:2: lvs_sync_daemon: group '198.18.0.1' is not a multicast address"}},
		{name: "option without value", src: withInst("lvs_sync_daemon eth0 VI_1 port"), diags: []string{"t.conf:2: lvs_sync_daemon: 'port' needs a value"}},
		{name: "unknown option", src: withInst("lvs_sync_daemon eth0 VI_1 speed 9"), diags: []string{"t.conf:2: lvs_sync_daemon: unknown option 'speed' (want id|maxlen|port|ttl|group)"}},
	})
}

// TestTunnelOptions: keepalived's TUN options become the GUE port govs
// encapsulates to (inherited by real servers that set no method), and what
// govs does not build is an error at its line, never a downgrade.
func TestTunnelOptions(t *testing.T) {
	vs := func(method string) string {
		return "virtual_server 198.18.0.100 80 {\n lb_algo rr\n protocol TCP\n lvs_method " + method + "\n real_server 198.18.0.11 80 {\n }\n}\n"
	}
	for _, tc := range []struct {
		method string
		port   uint16
		err    string
	}{
		{"TUN", 0, ""},
		{"TUN type ipip", 0, ""},
		{"TUN type gue port 6080", 6080, ""},
		{"TUN type gue port 6080 nocsum", 6080, ""},
		{"TUN type gue", 0, "GUE needs 'port N'"},
		{"TUN type gue port 0", 0, "is not 1 to 65535"},
		{"TUN type gue port 6080 csum", 0, "without UDP checksums only"},
		{"TUN type gre", 0, "tunnel type 'gre'"},
		{"TUN type ipip extra", 0, "ipip takes no options"},
	} {
		c, d := parse(t, vs(tc.method))
		diags := strings.Join(diagStrings(d), "\n")
		if tc.err != "" {
			if !strings.Contains(diags, "t.conf:4: lvs_method: ") || !strings.Contains(diags, tc.err) {
				t.Errorf("%s: diagnostics %q, want an error at t.conf:4 with %q", tc.method, diags, tc.err)
			}
			continue
		}
		if diags != "" {
			t.Errorf("%s: diagnostics %q", tc.method, diags)
			continue
		}
		v := c.VirtualServers[0]
		if v.Method != TUN || v.GUEPort != tc.port || v.RealServers[0].GUEPort != tc.port {
			t.Errorf("%s: method %v port %d, real server's port %d; want TUN, %d", tc.method, v.Method, v.GUEPort, v.RealServers[0].GUEPort, tc.port)
		}
	}
}
