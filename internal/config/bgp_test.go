package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestBGPBlock(t *testing.T) {
	src := `govs_bgp {
    router_id 198.18.0.2
    local_as 4200000001
    listen_port 179
    community 65001:100 65001:200
    local_pref 200
    med 10
    neighbor 198.18.0.1 {
        remote_as 65000
        password s3cret
        hold_time 9
        multihop 2
        bfd interval 0.1 multiplier 5
    }
    neighbor 2001:db8::1 {
        remote_as 65000
        passive
        keepalive_interval 10
    }
    neighbor 198.18.0.3 {
        remote_as 65000
        bfd
    }
}
`
	cfg, diags := ParseString("t.conf", src, Options{})
	if diags.HasErrors() {
		t.Fatalf("errors: %v", diags.Errors())
	}
	g := cfg.BGP
	if g == nil || g.RouterID != netip.MustParseAddr("198.18.0.2") || g.LocalAS != 4200000001 || g.ListenPort != 179 ||
		len(g.Communities) != 2 || g.Communities[0] != 65001<<16|100 || !g.LocalPrefSet || g.LocalPref != 200 || !g.MEDSet || g.MED != 10 {
		t.Fatalf("govs_bgp %+v", g)
	}
	n := g.Neighbors[0]
	if n.RemoteAS != 65000 || n.Password != "s3cret" || n.HoldTime != 9*time.Second || n.Keepalive != 3*time.Second || n.Multihop != 2 || n.Passive {
		t.Errorf("neighbor %+v", n)
	}
	if n.BFD == nil || n.BFD.Interval != 100*time.Millisecond || n.BFD.Multiplier != 5 {
		t.Errorf("neighbor bfd %+v", n.BFD)
	}
	if n := g.Neighbors[1]; !n.Passive || n.HoldTime != 90*time.Second || n.Keepalive != 10*time.Second || n.BFD != nil {
		t.Errorf("neighbor %+v (BFD must be off unless written)", n)
	}
	if n := g.Neighbors[2]; n.BFD == nil || n.BFD.Interval != DefaultBFDInterval || n.BFD.Multiplier != DefaultBFDMultiplier {
		t.Errorf("neighbor bfd %+v, want the defaults", n.BFD)
	}
}

func TestBGPBlockErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		line             int
	}{
		{"no router id", " local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "router_id is required", 1},
		{"IPv6 router id", " router_id 2001:db8::2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "must be an IPv4 address", 2},
		{"bad AS", " router_id 198.18.0.2\n local_as 0\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "invalid AS number", 3},
		{"no neighbor", " router_id 198.18.0.2\n local_as 65001\n", "at least one neighbor", 1},
		{"bad community", " router_id 198.18.0.2\n local_as 65001\n community 70000:1\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "invalid community", 4},
		{"no remote AS", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n }\n", "remote_as is required", 4},
		{"short hold", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n  hold_time 2\n }\n", "at least 3 seconds", 6},
		{"slow keepalive", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n  hold_time 9\n  keepalive_interval 4\n }\n", "more than a third", 7},
		{"hold-down cap below the hold", " router_id 198.18.0.2\n local_as 65001\n hold_down 10\n max_hold_down 5\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "below hold_down", 5},
		{"sync option", " router_id 198.18.0.2\n local_as 65001\n connection_sync eth1 speed 9\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "unknown option 'speed'", 4},
		{"restart time", " router_id 198.18.0.2\n local_as 65001\n graceful_restart 5000\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "outside range", 4},
		{"bfd option", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n  bfd echo 1\n }\n", "unknown bfd option 'echo'", 6},
		{"bfd value", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n  bfd multiplier\n }\n", "needs a value", 6},
		{"bfd interval", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n  bfd interval 0.001\n }\n", "outside range", 6},
		{"twice", " router_id 198.18.0.2\n local_as 65001\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n neighbor 198.18.0.1 {\n  remote_as 1\n }\n", "defined twice", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := ParseString("t.conf", "govs_bgp {\n"+tc.body+"}\n", Options{})
			found := false
			for _, d := range diags.Errors() {
				found = found || strings.Contains(d.Message, tc.want) && d.Line == tc.line
			}
			if !found {
				t.Errorf("errors %v: none says %q at line %d", diags.Errors(), tc.want, tc.line)
			}
		})
	}
}

// TestBGPConnectionSync: govs_bgp's connection_sync is a mesh sync
// (no VRRP instance) with lvs_sync_daemon's options and govs_sync_key, and
// cannot be combined with lvs_sync_daemon.
func TestBGPConnectionSync(t *testing.T) {
	src := `global_defs {
    govs_sync_key a-secret-of-16-chars
}
govs_bgp {
    router_id 198.18.0.2
    local_as 65001
    hold_down 2
    max_hold_down 30
    max_updates 5
    sync_wait 3
    graceful_restart
    connection_sync eth1 id 9 port 8849
    neighbor 198.18.0.1 {
        remote_as 65000
    }
}
`
	cfg, diags := ParseString("t.conf", src, Options{})
	if diags.HasErrors() {
		t.Fatalf("errors: %v", diags.Errors())
	}
	sd := cfg.Global.LVSSyncDaemon
	if sd == nil || !sd.Mesh || sd.Instance != "" || sd.Interface != "eth1" || sd.SyncID != 9 || sd.Port != 8849 ||
		sd.Key != "a-secret-of-16-chars" || sd.Pos.Line != 12 {
		t.Fatalf("sync %+v", sd)
	}
	if g := cfg.BGP; g.HoldDown != 2*time.Second || g.MaxHoldDown != 30*time.Second || g.MaxUpdates != 5 || g.SyncWait != 3*time.Second || g.GracefulRestart != 120*time.Second {
		t.Fatalf("damping %+v", g)
	}
	_, diags = ParseString("t.conf", src+`vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.18.0.100
    }
}
global_defs {
    lvs_sync_daemon eth0 VI_1
}
`, Options{})
	found := false
	for _, d := range diags.Errors() {
		found = found || strings.Contains(d.Message, "both set") && d.Line == 12
	}
	if !found {
		t.Fatalf("connection_sync with lvs_sync_daemon: errors %v", diags.Errors())
	}
}
