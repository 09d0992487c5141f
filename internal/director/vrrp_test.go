package director

import (
	"testing"
	"time"
)

func TestVRRPConfig(t *testing.T) {
	cfg := parse(t, `
vrrp_script chk {
    script "/bin/true"
    interval 2
    weight -20
}
vrrp_sync_group G {
    group {
        VI_1
    }
    track_interface {
        lan1
    }
}
vrrp_instance VI_1 {
    state MASTER
    interface lan0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    unicast_src_ip 198.18.0.11
    unicast_peer {
        198.18.0.12
    }
    virtual_ipaddress {
        198.18.0.100/24 dev lan0 label lan0:vip
    }
    track_script {
        chk
    }
    notify_master "/usr/local/bin/master.sh"
}
`)
	insts, groups, scripts := vrrpConfig(cfg)
	if len(insts) != 1 || len(groups) != 1 || len(scripts) != 1 {
		t.Fatalf("got %d instances, %d groups, %d scripts", len(insts), len(groups), len(scripts))
	}
	in := insts[0].WithDefaults()
	if err := in.Validate(); err != nil {
		t.Fatalf("mapped instance does not validate: %v", err)
	}
	if in.Name != "VI_1" || in.VRID != 51 || in.Priority != 150 || in.Interval != time.Second || !in.InitialMaster || in.AuthPass != "s3cret" {
		t.Errorf("instance = %+v", in)
	}
	if len(in.VIPs) != 1 || in.VIPs[0].Prefix.String() != "198.18.0.100/24" || in.VIPs[0].Label != "lan0:vip" || in.IPv6 {
		t.Errorf("VIPs = %+v", in.VIPs)
	}
	if in.UnicastSrc.String() != "198.18.0.11" || len(in.UnicastPeers) != 1 {
		t.Errorf("unicast = %v %v", in.UnicastSrc, in.UnicastPeers)
	}
	if in.SyncGroup != "G" || len(in.TrackInterfaces) != 1 || in.TrackInterfaces[0].Name != "lan1" {
		t.Errorf("sync group tracking not inherited: group %q tracks %+v", in.SyncGroup, in.TrackInterfaces)
	}
	if len(in.TrackScripts) != 1 || in.TrackScripts[0].Name != "chk" || scripts[0].Weight != -20 || scripts[0].Command != "/bin/true" {
		t.Errorf("track scripts = %+v, scripts = %+v", in.TrackScripts, scripts)
	}
	if in.Notify.Master != "/usr/local/bin/master.sh" {
		t.Errorf("notify = %+v", in.Notify)
	}
}
