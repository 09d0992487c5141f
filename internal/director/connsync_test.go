package director

import (
	"testing"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/status"
)

type fixedVRRP []status.VRRPInstance

func (f fixedVRRP) Status() []status.VRRPInstance { return f }
func (f fixedVRRP) Stop()                         {}

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
	keyed := syncConfig(parse("global_defs {\n lvs_sync_daemon eth0 VI_1\n govs_sync_key 0123456789abcdef-key\n}\n" + inst).Global.LVSSyncDaemon)
	if keyed == nil || keyed.Key != "0123456789abcdef-key" || *keyed == *a {
		t.Fatalf("a sync key must reach the daemon and restart it when it changes: %+v", keyed)
	}
	if syncConfig(parse(inst).Global.LVSSyncDaemon) != nil {
		t.Fatal("sync config without lvs_sync_daemon")
	}
}
