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
	cfg, diags := config.ParseString("k.conf", "virtual_server 198.18.0.100 80 {\n protocol TCP\n lb_algo wrr\n lb_kind DR\n persistence_timeout 50\n real_server 198.18.0.21 80 {\n  weight 3\n }\n}\n", config.Options{FS: config.MapFS{}})
	if err := diags.Err(); err != nil {
		fmt.Println(err)
		return
	}
	_ = config.WriteVirtualServers(os.Stdout, cfg)
	// Output:
	// Prot LocalAddress:Port Scheduler Flags
	//   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
	// TCP  198.18.0.100:80 wrr persistent 50
	//   -> 198.18.0.21:80               Route   3      0          0
}
