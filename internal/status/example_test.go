package status_test

import (
	"net/netip"
	"os"
	"time"

	"github.com/govs/govs/internal/status"
)

func ExampleFormat() {
	snap := status.Snapshot{
		Version:       "1.0.0",
		ConnTableSize: 65536,
		Services: []status.Service{{
			Protocol: status.TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80,
			Scheduler: "rr", Persistent: 50 * time.Second,
			Reals: []status.Real{
				{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Weight: 1, ActiveConn: 2, Healthy: true},
			},
		}},
		VRRP: []status.VRRPInstance{{Name: "VI_1", Interface: "eth0", VRID: 51, State: status.StateMaster,
			Priority: 100, EffectivePriority: 100, VIPs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}}},
	}
	status.Format(os.Stdout, snap, status.FormatOptions{View: status.ViewStats})
	// Output:
	// govs Virtual Server version 1.0.0 (connection table size=65536)
	// Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
	//   -> RemoteAddress:Port
	// TCP  198.18.0.100:80                     0        0        0        0        0
	//   -> 198.18.0.11:80                      0        0        0        0        0
	//
	// VRRP instance VI_1: MASTER prio 100 on eth0 vrid 51 VIPs 198.18.0.100
}
