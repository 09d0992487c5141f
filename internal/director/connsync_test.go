package director

import (
	"testing"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/status"
)

type fixedVRRP []status.VRRPInstance

func (f fixedVRRP) Status() []status.VRRPInstance { return f }
func (f fixedVRRP) Stop()                         {}

func TestIsMaster(t *testing.T) {
	d := &Director{}
	if d.isMaster("VI_1") {
		t.Fatal("master without VRRP")
	}
	d.setVRRPLocked(fixedVRRP{{Name: "VI_1", State: "BACKUP"}, {Name: "VI_2", State: "MASTER"}})
	for _, tc := range []struct {
		instance string
		want     bool
	}{{"VI_1", false}, {"VI_2", true}, {"VI_3", false}} {
		if got := d.isMaster(tc.instance); got != tc.want {
			t.Errorf("isMaster(%s) = %v, want %v", tc.instance, got, tc.want)
		}
	}
	d.setVRRPLocked(nil)
	if d.isMaster("VI_2") {
		t.Fatal("master after VRRP stopped")
	}
}

func TestSyncConfigIgnoresPosition(t *testing.T) {
	parse := func(src string) *config.Config {
		cfg, diags := config.ParseString("t.conf", src, config.Options{FS: config.MapFS{}})
		for _, d := range diags {
			t.Fatalf("diagnostic: %s", d)
		}
		return cfg
	}
	inst := "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  203.0.113.1\n }\n}\n"
	a := syncConfig(parse("global_defs {\n lvs_sync_daemon eth0 VI_1\n}\n" + inst).Global.LVSSyncDaemon)
	b := syncConfig(parse("\n\nglobal_defs {\n router_id x\n lvs_sync_daemon eth0 VI_1\n}\n" + inst).Global.LVSSyncDaemon)
	if a == nil || b == nil || *a != *b {
		t.Fatalf("moved lvs_sync_daemon compares different: %+v vs %+v", a, b)
	}
	if syncConfig(parse(inst).Global.LVSSyncDaemon) != nil {
		t.Fatal("sync config without lvs_sync_daemon")
	}
}
