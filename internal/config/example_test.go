package config_test

import (
	"fmt"
	"os"

	"github.com/govs/govs/internal/config"
)

func ExampleParseString() {
	src := `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 300
    virtual_ipaddress {
        198.18.0.100/24
    }
}
virtual_server 198.18.0.100 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.21 80 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`
	cfg, diags := config.ParseString("keepalived.conf", src, config.Options{FS: config.MapFS{}})
	for _, d := range diags {
		fmt.Println(d)
	}
	if diags.HasErrors() {
		fmt.Println("not usable")
	}
	rs := cfg.VirtualServers[0].RealServers[0]
	fmt.Println(rs.Method.IPVSName(), config.DescribeChecker(rs.Checkers[0], rs))
	// Output:
	// keepalived.conf:5: priority: number 300 outside range [1, 255]
	// not usable
	// Route TCP_CHECK port 80 timeout 3s retry 1 delay 1s every 60s
}

func ExampleWriteSummary() {
	cfg, diags := config.ParseString("k.conf", "global_defs {\n router_id lb1\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  198.18.0.100\n }\n}\n", config.Options{FS: config.MapFS{}})
	if err := diags.Err(); err != nil {
		fmt.Println(err)
		return
	}
	_ = config.WriteSummary(os.Stdout, cfg)
	// Output:
	// global: router_id lb1, VRRP version 2
	// VRRP instances:
	//   VI_1: BACKUP on eth0, vrid 51, priority 100, advert 1s, version 2
	//     VIP 198.18.0.100/32
}
