package config

import (
	"fmt"
	"testing"
	"time"
)

func TestLVSTimeouts(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "all three",
			src:  "global_defs {\n  lvs_timeouts tcp 7200 tcpfin 60 udp 30\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "LVSTimeouts", c.Global.LVSTimeouts, LVSTimeouts{TCP: 7200 * time.Second, TCPFin: 60 * time.Second, UDP: 30 * time.Second})
			},
		},
		{
			name: "one",
			src:  "global_defs {\n  lvs_timeouts udp 5\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "LVSTimeouts", c.Global.LVSTimeouts, LVSTimeouts{UDP: 5 * time.Second})
			},
		},
		{
			name: "bad",
			src:  "global_defs {\n  lvs_timeouts tcp\n  lvs_timeouts sctp 5\n  lvs_timeouts tcp 0\n  lvs_timeouts\n  lvs_timeouts tcp 5 udp\n}\n",
			diags: []string{
				"t.conf:2: lvs_timeouts: expects 2 values, got 1",
				"t.conf:3: lvs_timeouts: unknown timeout 'sctp' (want tcp, tcpfin or udp)",
				"t.conf:4: lvs_timeouts: tcp: invalid timeout '0' (want 1..2147483 seconds)",
				"t.conf:5: lvs_timeouts: expects 2 values, got 0",
				"t.conf:6: lvs_timeouts: want pairs of tcp|tcpfin|udp and seconds",
			},
		},
	})
}

func TestAdvertRules(t *testing.T) {
	two := "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  198.18.0.101\n }\n down_timer_adverts 7\n lower_prio_no_advert off\n higher_prio_send_advert no\n}\n"
	runCases(t, []caseT{
		{
			name: "global defaults and an instance's own",
			src:  "global_defs {\n vrrp_down_timer_adverts 4\n vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert true\n}\n" + inst("") + two,
			check: func(t *testing.T, c *Config) {
				eq(t, "VI_1", c.Instance("VI_1").Adverts, AdvertRules{DownTimerAdverts: 4, LowerPrioNoAdvert: true, HigherPrioSendAdvert: true})
				eq(t, "VI_2", c.Instance("VI_2").Adverts, AdvertRules{DownTimerAdverts: 7})
			},
		},
		{
			name: "vrrp_strict: the RFC's rules, as keepalived keeps them",
			src:  "global_defs {\n vrrp_strict\n}\n" + two,
			diags: []string{
				"t.conf:11: warning: vrrp_instance VI_2: vrrp_strict keeps lower_prio_no_advert on (the RFC's rule), as keepalived does",
			},
			check: func(t *testing.T, c *Config) {
				eq(t, "VI_2", c.Instance("VI_2").Adverts, AdvertRules{DownTimerAdverts: 7, LowerPrioNoAdvert: true})
			},
		},
		{
			name:  "out of range",
			src:   inst(" down_timer_adverts 0"),
			diags: []string{"t.conf:4: down_timer_adverts: number 0 outside range [1, 100]"},
		},
	})
}

func TestMinGARPUnicastTTLPromoteSecondaries(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "vrrp_min_garp: one GARP, no second burst",
			src:  "global_defs {\n vrrp_min_garp\n}\n" + inst(""),
			check: func(t *testing.T, c *Config) {
				g := c.Instance("VI_1").GARP
				eq(t, "repeat, delay, lower-priority repeat", []any{g.MasterRepeat, g.MasterDelay, g.LowerPrioRepeat}, []any{1, time.Duration(0), 1})
			},
		},
		{
			name: "vrrp_min_garp gives way to what is written",
			src:  "global_defs {\n vrrp_min_garp\n vrrp_garp_master_repeat 3\n}\n" + inst(""),
			check: func(t *testing.T, c *Config) {
				g := c.Instance("VI_1").GARP
				eq(t, "repeat, delay", []any{g.MasterRepeat, g.MasterDelay}, []any{3, time.Duration(0)})
			},
		},
		{
			name: "unicast_ttl and promote_secondaries",
			src:  inst(" unicast_ttl 7\n promote_secondaries\n unicast_peer {\n  198.18.0.12\n }"),
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "UnicastTTL, PromoteSecondaries", []any{in.UnicastTTL, in.PromoteSecondaries}, []any{7, true})
			},
		},
		{
			name: "notify_master_rx_lower_pri",
			src:  inst(" notify_master_rx_lower_pri \"/etc/keepalived/restore-eip.sh\" nobody"),
			check: func(t *testing.T, c *Config) {
				eq(t, "MasterRxLowerPri", c.Instance("VI_1").Notify.MasterRxLowerPri, Command{Cmd: "/etc/keepalived/restore-eip.sh", User: "nobody", Pos: at(4)})
			},
		},
		{
			name:  "unicast_ttl without unicast peers",
			src:   inst(" unicast_ttl 7"),
			diags: []string{"t.conf:4: warning: vrrp_instance VI_1: unicast_ttl without unicast_peer: ignored (multicast adverts carry 255), as keepalived does"},
			check: func(t *testing.T, c *Config) { eq(t, "UnicastTTL", c.Instance("VI_1").UnicastTTL, 0) },
		},
		{
			name:  "unicast_ttl out of range",
			src:   inst(" unicast_ttl 0"),
			diags: []string{"t.conf:4: unicast_ttl: number 0 outside range [1, 255]"},
		},
	})
}

func TestCheckUnicastSrc(t *testing.T) {
	peers := " unicast_peer {\n  198.18.0.12%s\n }"
	for _, tc := range []struct {
		name, global, instance string
		want                   bool
	}{
		{"unicast peers alone: any source, as keepalived", "", fmt.Sprintf(peers, ""), false},
		{"check_unicast_src", "", fmt.Sprintf(peers, "") + "\n check_unicast_src", true},
		{"vrrp_check_unicast_src", "global_defs {\n vrrp_check_unicast_src\n}\n", fmt.Sprintf(peers, ""), true},
		{"a peer's min_ttl turns it on", "", fmt.Sprintf(peers, " min_ttl 60"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, d := parse(t, tc.global+inst(tc.instance))
			if errs := d.Errors(); len(errs) > 0 {
				t.Fatal(errs)
			}
			if got := c.Instance("VI_1").CheckUnicastSrc; got != tc.want {
				t.Errorf("CheckUnicastSrc = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStartupShutdownScripts(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "scripts and timeouts",
			src:  "global_defs {\n startup_script \"/etc/govs/up.sh eth0\" nobody\n shutdown_script /etc/govs/down.sh\n startup_script_timeout 30\n}\n",
			check: func(t *testing.T, c *Config) {
				g := c.Global
				eq(t, "startup", g.StartupScript, Command{Cmd: "/etc/govs/up.sh eth0", User: "nobody", Pos: at(2)})
				eq(t, "shutdown", g.ShutdownScript.Cmd, "/etc/govs/down.sh")
				eq(t, "timeouts", []time.Duration{g.StartupTimeout, g.ShutdownTimeout}, []time.Duration{30 * time.Second, 10 * time.Second})
			},
		},
		{
			name:  "timeout out of range",
			src:   "global_defs {\n shutdown_script_timeout 1001\n}\n",
			diags: []string{"t.conf:2: shutdown_script_timeout: number 1001 outside range [1, 1000]"},
		},
	})
}

func TestStrictMode(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "strict_mode is the instance's vrrp_strict",
			src:  inst(" strict_mode"),
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "accept, lower_prio_no_advert", []bool{in.Accept, in.Adverts.LowerPrioNoAdvert}, []bool{false, true})
			},
		},
		{
			name: "strict_mode off overrides vrrp_strict",
			src:  "global_defs {\n vrrp_strict\n}\n" + inst(" strict_mode off"),
			check: func(t *testing.T, c *Config) {
				in := c.Instance("VI_1")
				eq(t, "accept, lower_prio_no_advert", []bool{in.Accept, in.Adverts.LowerPrioNoAdvert}, []bool{true, false})
			},
		},
	})
}

func TestUnicastWithoutPeers(t *testing.T) {
	runCases(t, []caseT{
		{
			name:  "an empty unicast_peer block: multicast, with keepalived's warning",
			src:   inst(" unicast_peer {\n }"),
			diags: []string{"t.conf:4: warning: vrrp_instance VI_1: unicast_peer without peers: multicast, as keepalived does (deprecated there; unicast_fault_no_peer keeps the instance in FAULT instead)"},
			check: func(t *testing.T, c *Config) {
				eq(t, "UnicastFaultNoPeer", c.Instance("VI_1").UnicastFaultNoPeer, false)
			},
		},
		{
			name: "unicast_fault_no_peer",
			src:  inst(" unicast_peer {\n }\n unicast_fault_no_peer"),
			check: func(t *testing.T, c *Config) {
				eq(t, "UnicastFaultNoPeer", c.Instance("VI_1").UnicastFaultNoPeer, true)
			},
		},
		{
			name: "unicast_fault_no_peer with peers: nothing to fault on",
			src:  inst(" unicast_peer {\n  198.18.0.12\n }\n unicast_fault_no_peer"),
			check: func(t *testing.T, c *Config) {
				eq(t, "UnicastFaultNoPeer", c.Instance("VI_1").UnicastFaultNoPeer, false)
			},
		},
	})
}

func TestVRRPNotifyFIFO(t *testing.T) {
	runCases(t, []caseT{{
		name: "fifo and script",
		src:  "global_defs {\n vrrp_notify_fifo /run/govs/vrrp.fifo nobody\n vrrp_notify_fifo_script \"/usr/local/bin/read -v\"\n}\n",
		check: func(t *testing.T, c *Config) {
			g := c.Global
			eq(t, "fifo", []string{g.VRRPNotifyFIFO.Cmd, g.VRRPNotifyFIFO.User, g.VRRPNotifyFIFOScript.Cmd}, []string{"/run/govs/vrrp.fifo", "nobody", "/usr/local/bin/read -v"})
		},
	}})
}

func TestNotifyPriorityChanges(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "global default",
			src:  "global_defs {\n vrrp_notify_priority_changes\n}\n" + inst(""),
			check: func(t *testing.T, c *Config) {
				eq(t, "NotifyPriorityChanges", c.Instance("VI_1").NotifyPriorityChanges, true)
			},
		},
		{
			name: "the instance's own",
			src:  "global_defs {\n vrrp_notify_priority_changes\n}\n" + inst(" notify_priority_changes off"),
			check: func(t *testing.T, c *Config) {
				eq(t, "NotifyPriorityChanges", c.Instance("VI_1").NotifyPriorityChanges, false)
			},
		},
	})
}

func TestTrackSrcIP(t *testing.T) {
	runCases(t, []caseT{{
		name:  "track_src_ip",
		src:   inst(" track_src_ip"),
		check: func(t *testing.T, c *Config) { eq(t, "TrackSrcIP", c.Instance("VI_1").TrackSrcIP, true) },
	}})
}
