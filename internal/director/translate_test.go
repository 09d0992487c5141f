package director

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
)

const scenarioConf = `
vrrp_instance VI_1 {
    state MASTER
    interface lan0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.0.100
    }
}
virtual_server 198.18.0.100 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 5
            nb_get_retry 3
            delay_before_retry 3
            connect_port 80
        }
    }
    real_server 198.18.0.12 80 {
        weight 2
        HTTP_GET {
            url {
              path /health
              status_code 200-204
            }
        }
    }
}
`

func parse(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.ParseString("test.conf", src, config.Options{})
	for _, d := range diags {
		if d.Severity == config.SeverityError {
			t.Fatalf("config error: %s", d)
		}
	}
	return cfg
}

func TestExpandServices(t *testing.T) {
	cfg := parse(t, scenarioConf+`
virtual_server_group web {
    198.18.0.101-102 443
    fwmark 7
}
virtual_server group web {
    lb_algo mh
    lb_kind TUN
    protocol TCP
    real_server 198.18.1.11 443 {
    }
}
virtual_server 198.18.0.103 53 {
    lb_kind NAT
    protocol UDP
    real_server 198.18.1.12 53 {
    }
}
virtual_server fwmark 9 {
    lb_kind DR
    real_server 198.18.1.13 80 {
    }
}
`)
	svcs, skipped := expandServices(cfg)
	var got []string
	for _, s := range svcs {
		got = append(got, netip.AddrPortFrom(s.addr, s.port).String()+"/"+s.proto.String()+"/"+string(s.sched))
	}
	want := "198.18.0.100:80/TCP/rr 198.18.0.101:443/TCP/mh 198.18.0.102:443/TCP/mh"
	if strings.Join(got, " ") != want {
		t.Errorf("services = %v, want %s", got, want)
	}
	joined := strings.Join(skipped, "\n")
	for _, w := range []string{"fwmark entry 7", "lb_kind NAT", "fwmark services"} {
		if !strings.Contains(joined, w) {
			t.Errorf("skipped reasons %q lack %q", joined, w)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	vss := checkConfig(parse(t, scenarioConf))
	if len(vss) != 1 || vss[0].Name != "198.18.0.100:80" || len(vss[0].RealServers) != 2 {
		t.Fatalf("check config = %+v", vss)
	}
	r1, r2 := vss[0].RealServers[0], vss[0].RealServers[1]
	if !r1.Inhibit || r1.Weight != 1 || r1.Addr.String() != "198.18.0.11:80" {
		t.Errorf("real server 1 = %+v", r1)
	}
	c := r1.Checkers[0]
	if c.Type != check.TCP || *c.Retry != 3 || c.DelayBeforeRetry.Seconds() != 3 || c.ConnectPort != 80 || c.ConnectTimeout.Seconds() != 5 || c.DelayLoop.Seconds() != 6 {
		t.Errorf("TCP_CHECK spec = %+v", c)
	}
	h := r2.Checkers[0]
	if h.Type != check.HTTP || len(h.URLs) != 1 || h.URLs[0].Path != "/health" || h.URLs[0].StatusCodes[0] != (check.StatusRange{Lo: 200, Hi: 204}) {
		t.Errorf("HTTP_GET spec = %+v", h)
	}
	if _, err := check.NewRunner(vss, check.Options{}); err != nil {
		t.Errorf("the health checker rejects the mapped configuration: %v", err)
	}
}

func TestDesiredState(t *testing.T) {
	cfg := parse(t, scenarioConf)
	svcs, _ := expandServices(cfg)
	mac1 := net.HardwareAddr{2, 0, 0, 0, 0, 0x11}
	neigh := map[netip.Addr]neighbour{netip.MustParseAddr("198.18.0.11"): {MAC: mac1, Ifindex: 3}}

	// Before the first health report: configured weights; unresolved reals wait.
	st, unresolved := desiredState(svcs, map[string][]state.Dest{}, neigh)
	if len(st.Services) != 1 {
		t.Fatalf("services = %+v", st.Services)
	}
	s := st.Services[0]
	if s.Scheduler != "rr" || s.PersistenceTimeout.Seconds() != 50 || s.PersistenceBits != 24 || s.Protocol != dataplane.TCP {
		t.Errorf("service = %+v", s)
	}
	if len(s.Reals) != 1 || s.Reals[0].Weight != 1 || s.Reals[0].Ifindex != 3 || s.Reals[0].Method != dataplane.DR {
		t.Errorf("reals = %+v", s.Reals)
	}
	if len(unresolved) != 1 || unresolved[0].String() != "198.18.0.12" {
		t.Errorf("unresolved = %v", unresolved)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("state does not validate: %v", err)
	}

	// A health report: the inhibited server stays with weight 0, a removed one goes.
	pools := map[string][]state.Dest{"198.18.0.100:80": {{Name: "198.18.0.11:80", Weight: 0}}}
	neigh[netip.MustParseAddr("198.18.0.12")] = neighbour{MAC: mac1, Ifindex: 3}
	st, unresolved = desiredState(svcs, pools, neigh)
	if len(unresolved) != 0 || len(st.Services[0].Reals) != 1 || st.Services[0].Reals[0].Weight != 0 {
		t.Errorf("after health report: reals %+v unresolved %v", st.Services[0].Reals, unresolved)
	}
}

func TestXDPInterfaces(t *testing.T) {
	cfg := parse(t, scenarioConf)
	svcs, _ := expandServices(cfg)
	got, err := xdpInterfaces(cfg, svcs)
	if err != nil || strings.Join(got, ",") != "lan0" {
		t.Errorf("xdpInterfaces = %v, %v", got, err)
	}

	orphan := parse(t, `virtual_server 198.18.0.50 80 {
    lb_kind DR
    real_server 198.18.0.11 80 {
    }
}`)
	svcs, _ = expandServices(orphan)
	if _, err := xdpInterfaces(orphan, svcs); err == nil || !strings.Contains(err.Error(), "198.18.0.50") {
		t.Errorf("orphan VIP: err = %v", err)
	}
}

func TestSameVRRPIgnoresPositions(t *testing.T) {
	a := parse(t, scenarioConf)
	b := parse(t, "\n\n# moved down\n"+scenarioConf)
	if !sameVRRP(a, b) {
		t.Error("moving blocks in the file counts as a VRRP change")
	}
	c := parse(t, strings.Replace(scenarioConf, "priority 100", "priority 101", 1))
	if sameVRRP(a, c) {
		t.Error("a priority change is not seen")
	}
	if sameVRRP(a, nil) || !sameVRRP(nil, nil) {
		t.Error("nil handling")
	}
}
