package desired

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/checkspec"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/config/diag"
	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/status"
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
            retry 3
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

// plan builds the plan of src and fails on any error.
func plan(t *testing.T, src string) *Plan {
	t.Helper()
	cfg, diags := config.ParseString("test.conf", src, config.Options{})
	p := Build(cfg, diags, Options{})
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServices(t *testing.T) {
	p := plan(t, scenarioConf+`
virtual_server_group web {
    198.18.0.101-102 443
}
virtual_server group web {
    lb_algo mh
    lb_kind TUN
    protocol TCP
    real_server 198.18.1.11 443 {
    }
}
global_defs {
    govs_xdp_interface lan1
}
`)
	var got []string
	for _, s := range p.Services {
		got = append(got, netip.AddrPortFrom(s.Key.Addr, s.Key.Port).String()+"/"+s.Key.Proto.String()+"/"+string(s.Scheduler)+"/"+s.Pool)
	}
	want := "198.18.0.100:80/TCP/rr/198.18.0.100:80 198.18.0.101:443/TCP/mh/group web 198.18.0.102:443/TCP/mh/group web"
	if strings.Join(got, " ") != want {
		t.Errorf("services = %v, want %s", got, want)
	}
}

// What the data plane cannot forward as IPVS would is an error at the
// keyword that asks for it, never a service silently left out.
// TestSchedulerFlags: the flags IPVS's sh and mh read (flag-1 and flag-2
// are their fallback and port flags) and ops reach the data plane; a flag
// the scheduler does not read is a warning, as IPVS ignores it.
func TestSchedulerFlags(t *testing.T) {
	for _, tc := range []struct {
		name, algo, flag, proto string
		hashPort, ops           bool
		warning                 bool
	}{
		{"sh-port", "sh", "sh-port", "TCP", true, false, false},
		{"flag-2 under sh", "sh", "flag-2", "TCP", true, false, false},
		{"mh-port", "mh", "mh-port", "TCP", true, false, false},
		{"flag-2 under mh", "mh", "flag-2", "TCP", true, false, false},
		{"mh-fallback", "mh", "mh-fallback", "TCP", false, false, false},
		{"flag-1 under sh", "sh", "flag-1", "TCP", false, false, false},
		{"sh-port under mh", "mh", "sh-port", "TCP", false, false, true},
		{"flag-3", "sh", "flag-3", "TCP", false, false, true},
		{"ops", "rr", "ops", "UDP", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("virtual_server 198.18.0.100 53 {\n lb_algo %s\n %s\n lb_kind DR\n protocol %s\n real_server 198.18.1.13 53 {\n }\n}\nglobal_defs {\n govs_xdp_interface eth0\n}\n",
				tc.algo, tc.flag, tc.proto)
			cfg, diags := config.ParseString("t.conf", src, config.Options{})
			p := Build(cfg, diags, Options{})
			if errs := p.Diagnostics.Errors(); len(errs) != 0 || len(p.Services) != 1 {
				t.Fatalf("errors %v, %d services", errs, len(p.Services))
			}
			s := p.Services[0]
			if s.HashPort != tc.hashPort || s.OnePacket != tc.ops {
				t.Errorf("hash port %v, one packet %v; want %v, %v", s.HashPort, s.OnePacket, tc.hashPort, tc.ops)
			}
			warned := slices.ContainsFunc(p.Diagnostics, func(d config.Diagnostic) bool { return d.Keyword == tc.flag && d.Line == 3 })
			if warned != tc.warning {
				t.Errorf("warning at %s: %v, want %v (%v)", tc.flag, warned, tc.warning, p.Diagnostics)
			}
			if flags := s.Status(nil).SchedFlags; (len(flags) == 1 && flags[0] == tc.algo+"-port") != tc.hashPort {
				t.Errorf("status flags %v", flags)
			}
			st, _ := p.Dataplane(nil, nil)
			if len(st.Services) != 1 || st.Services[0].HashPort != tc.hashPort || st.Services[0].OnePacket != tc.ops {
				t.Errorf("data plane service %+v", st.Services)
			}
		})
	}
}

// TestTableSizes: the tables get the configured sizes or the defaults,
// and sizes that would take more than half of the host's memory are an
// error at the keyword.
func TestTableSizes(t *testing.T) {
	parse := func(global string) (*config.Config, diag.List) {
		return config.ParseString("t.conf", "global_defs {\n"+global+"\n}\n", config.Options{})
	}
	cfg, diags := parse("")
	if p := Build(cfg, diags, Options{}); p.Tables != (dpstate.TableSizes{Conns: dpstate.ConnTableSize, Embryos: dpstate.EmbryoTableSize}) {
		t.Errorf("default tables %+v", p.Tables)
	}
	cfg, diags = parse(" govs_conn_table_size 16777216")
	p := Build(cfg, diags, Options{MemTotal: 1 << 30})
	errs := p.Diagnostics.Errors()
	if len(errs) != 1 || errs[0].Line != 2 || errs[0].Keyword != "govs_conn_table_size" || !strings.Contains(errs[0].Message, "more than half") {
		t.Errorf("16 Mi entries on a 1 GiB host: %v", errs)
	}
	if p := Build(cfg, diags, Options{MemTotal: 64 << 30}); p.Diagnostics.HasErrors() || p.Tables.Conns != 1<<24 {
		t.Errorf("16 Mi entries on a 64 GiB host: %v, %+v", p.Diagnostics, p.Tables)
	}
}

// TestNewFlowLimitPlanned: govs_new_flow_limit reaches the data plane's
// state; without it there is no limit.
func TestNewFlowLimitPlanned(t *testing.T) {
	for _, tc := range []struct {
		global string
		want   uint32
	}{{"", 0}, {" govs_new_flow_limit 50000", 50000}} {
		cfg, diags := config.ParseString("t.conf", "global_defs {\n"+tc.global+"\n}\n", config.Options{})
		p := Build(cfg, diags, Options{})
		if p.Diagnostics.HasErrors() {
			t.Fatalf("%q: %v", tc.global, p.Diagnostics)
		}
		if st, _ := p.Dataplane(nil, nil); st.NewFlowLimit != tc.want {
			t.Errorf("%q: limit %d, want %d", tc.global, st.NewFlowLimit, tc.want)
		}
	}
}

// TestLVSTimeoutsPlanned: lvs_timeouts reach the data plane's state; the
// ones not given stay zero (the data plane's defaults).
func TestLVSTimeoutsPlanned(t *testing.T) {
	for _, tc := range []struct {
		global string
		want   dpstate.Timeouts
	}{{"", dpstate.Timeouts{}}, {" lvs_timeouts tcp 7200 udp 30", dpstate.Timeouts{TCP: 7200 * time.Second, UDP: 30 * time.Second}}} {
		cfg, diags := config.ParseString("t.conf", "global_defs {\n"+tc.global+"\n}\n", config.Options{})
		p := Build(cfg, diags, Options{})
		if p.Diagnostics.HasErrors() {
			t.Fatalf("%q: %v", tc.global, p.Diagnostics)
		}
		if st, _ := p.Dataplane(nil, nil); st.Timeouts != tc.want {
			t.Errorf("%q: timeouts %+v, want %+v", tc.global, st.Timeouts, tc.want)
		}
	}
}

// TestNATPlanned: NAT (keepalived's default method) reaches the data
// plane's state with each real server's own port, also for a real server
// that sets it alone and for a sorry server.
func TestNATPlanned(t *testing.T) {
	src := `global_defs {
 govs_xdp_interface eth0
}
virtual_server 198.18.0.100 80 {
 protocol TCP
 sorry_server 198.18.1.20 8090
 real_server 198.18.1.12 8080 {
 }
 real_server 198.18.1.13 80 {
  lvs_method DR
 }
}
virtual_server 2001:db8::100 53 {
 lb_kind NAT
 protocol UDP
 real_server 2001:db8:1::12 5353 {
 }
}
`
	cfg, diags := config.ParseString("t.conf", src, config.Options{})
	p := Build(cfg, diags, Options{})
	if p.Diagnostics.HasErrors() {
		t.Fatalf("errors: %v", p.Diagnostics.Errors())
	}
	neigh := map[netip.Addr]Neighbour{}
	for _, a := range p.RealAddrs {
		neigh[a] = Neighbour{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Ifindex: 3}
	}
	st, unresolved := p.Dataplane(nil, neigh)
	if len(unresolved) != 0 {
		t.Fatalf("unresolved %v", unresolved)
	}
	type real struct {
		addr   string
		port   uint16
		method dpstate.Method
	}
	var got []real
	for _, s := range st.Services {
		for _, r := range s.Reals {
			got = append(got, real{r.Addr.String(), r.Port, r.Method})
		}
	}
	want := []real{{"198.18.1.12", 8080, dpstate.NAT}, {"198.18.1.13", 80, dpstate.DR}, {"2001:db8:1::12", 5353, dpstate.NAT}}
	if !slices.Equal(got, want) {
		t.Errorf("reals %+v, want %+v", got, want)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("state invalid: %v", err)
	}
}

// TestFwmarkServices: fwmark virtual servers and group entries become
// fwmark services of their family (ip_family, else the real servers'),
// with no interface of their own to attach to, and the plan lists the
// marks the kernel must route to the balancer.
func TestFwmarkServices(t *testing.T) {
	src := `virtual_server fwmark 1 {
 lb_kind DR
 lb_algo rr
 persistence_timeout 300
 real_server 198.18.1.12 {
 }
}
virtual_server fwmark 2 {
 lb_kind DR
 real_server 2001:db8:1::12 {
 }
}
virtual_server fwmark 3 {
 ip_family inet6
 lb_kind TUN
 real_server 198.18.1.12 {
 }
}
virtual_server_group g {
 198.18.0.100 80
 fwmark 4
}
virtual_server group g {
 lb_kind DR
 protocol TCP
 real_server 198.18.1.13 80 {
 }
}
global_defs {
 govs_xdp_interface eth0
}
`
	cfg, diags := config.ParseString("t.conf", src, config.Options{})
	p := Build(cfg, diags, Options{})
	if p.Diagnostics.HasErrors() {
		t.Fatalf("errors: %v", p.Diagnostics.Errors())
	}
	want := []dpstate.Fwmark{{Mark: 1}, {Mark: 2, IPv6: true}, {Mark: 3, IPv6: true}, {Mark: 4}}
	if got := p.Fwmarks(); !slices.Equal(got, want) {
		t.Errorf("Fwmarks %+v, want %+v", got, want)
	}
	if !slices.Equal(p.Interfaces, []string{"eth0"}) {
		t.Errorf("interfaces %v, want [eth0]", p.Interfaces)
	}
	neigh := map[netip.Addr]Neighbour{}
	for _, a := range p.RealAddrs {
		neigh[a] = Neighbour{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Ifindex: 3, Src: netip.MustParseAddr("198.18.1.1")}
	}
	st, _ := p.Dataplane(nil, neigh)
	st.TunnelSource4 = netip.MustParseAddr("198.18.1.1")
	if err := st.Validate(); err != nil {
		t.Fatalf("state invalid: %v", err)
	}
	s := st.Services[0]
	if s.Fwmark != 1 || !s.Addr.IsUnspecified() || !s.Addr.Is4() || s.Port != 0 || s.Protocol != 0 || s.PersistenceTimeout == 0 {
		t.Errorf("fwmark 1 service %+v", s)
	}
	var b strings.Builder
	if err := status.FormatTable(&b, p.StatusServices(nil), status.FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"FWM  1 rr persistent 300", "FWM  2 IPv6 wlc", "FWM  4 wlc"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("list has no %q:\n%s", line, b.String())
		}
	}
}

// TestFNATServices: lb_kind FNAT takes its local addresses from the
// laddr_group_name's group (ranges expanded), translates ports like NAT,
// and the addresses written with an interface are for govs to hold.
func TestFNATServices(t *testing.T) {
	src := `local_address_group L1 {
 198.18.1.201-203 eth1
 198.18.1.210
}
virtual_server 198.18.0.100 80 {
 lb_kind FNAT
 laddr_group_name L1
 protocol TCP
 real_server 198.18.1.12 8080 {
 }
}
global_defs {
 govs_xdp_interface eth0
}
`
	cfg, diags := config.ParseString("t.conf", src, config.Options{})
	p := Build(cfg, diags, Options{})
	if p.Diagnostics.HasErrors() {
		t.Fatalf("errors: %v", p.Diagnostics.Errors())
	}
	want := []netip.Addr{netip.MustParseAddr("198.18.1.201"), netip.MustParseAddr("198.18.1.202"), netip.MustParseAddr("198.18.1.203"), netip.MustParseAddr("198.18.1.210")}
	if got := p.Services[0].LocalAddrs; !slices.Equal(got, want) {
		t.Errorf("local addresses %v, want %v", got, want)
	}
	var held []string
	for _, l := range p.LocalAddrs {
		held = append(held, l.Addr.String()+"@"+l.Interface)
	}
	if w := []string{"198.18.1.201@eth1", "198.18.1.202@eth1", "198.18.1.203@eth1"}; !slices.Equal(held, w) {
		t.Errorf("addresses govs holds %v, want %v", held, w)
	}
	neigh := map[netip.Addr]Neighbour{}
	for _, a := range p.RealAddrs {
		neigh[a] = Neighbour{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Ifindex: 3}
	}
	st, _ := p.Dataplane(nil, neigh)
	if err := st.Validate(); err != nil {
		t.Fatalf("state invalid: %v", err)
	}
	if r := st.Services[0].Reals[0]; r.Method != dpstate.FNAT || r.Port != 8080 || len(st.Services[0].LocalAddrs) != 4 {
		t.Errorf("data plane service %+v", st.Services[0])
	}
	if m := p.Services[0].Status(nil).Reals[0].Method; m != status.FullNat {
		t.Errorf("status method %v, want FullNat", m)
	}
}

func TestServicesNotCarriedOut(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
		line            int
	}{
		{"NAT to two ports of one address", "virtual_server 198.18.0.100 80 {\n lb_kind NAT\n protocol TCP\n real_server 198.18.1.12 8080 {\n }\n real_server 198.18.1.12 8081 {\n }\n}\n", "two ports of one address", 6},
		{"fwmark NAT", "virtual_server fwmark 9 {\n lb_kind NAT\n real_server 198.18.1.13 80 {\n }\n}\n", "lb_kind NAT is not supported for fwmark services", 2},
		{"fwmark group entry NAT", "virtual_server_group g {\n 198.18.0.100 80\n fwmark 7\n}\nvirtual_server group g {\n protocol TCP\n real_server 198.18.1.13 80 {\n  lb_kind NAT\n }\n}\n", "lb_kind NAT is not supported for fwmark services", 8},
		{"fwmark NAT by default", "virtual_server fwmark 9 {\n real_server 198.18.1.13 80 {\n }\n}\n", "keepalived's default", 1},
		{"FNAT without laddr_group_name", "virtual_server 198.18.0.100 80 {\n lb_kind FNAT\n protocol TCP\n real_server 198.18.1.13 80 {\n }\n}\n", "needs laddr_group_name", 2},
		{"FNAT with an unknown group", "virtual_server 198.18.0.100 80 {\n lb_kind FNAT\n laddr_group_name L\n protocol TCP\n real_server 198.18.1.13 80 {\n }\n}\n", "no local_address_group", 3},
		{"FNAT local address of the other family", "local_address_group L {\n 2001:db8::201\n}\nvirtual_server 198.18.0.100 80 {\n lb_kind FNAT\n laddr_group_name L\n protocol TCP\n real_server 198.18.1.13 80 {\n }\n}\n", "not of the family", 2},
		{"FNAT with too many local addresses", "local_address_group L {\n 198.18.1.1-20\n}\nvirtual_server 198.18.0.100 80 {\n lb_kind FNAT\n laddr_group_name L\n protocol TCP\n real_server 198.18.1.13 80 {\n }\n}\n", "holds 16 per service", 6},
		{"FNAT with ops", "local_address_group L {\n 198.18.1.201\n}\nvirtual_server 198.18.0.100 53 {\n lb_kind FNAT\n laddr_group_name L\n protocol UDP\n ops\n real_server 198.18.1.13 53 {\n }\n}\n", "ops", 8},
		{"FNAT fwmark", "local_address_group L {\n 198.18.1.201\n}\nvirtual_server fwmark 3 {\n lb_kind FNAT\n laddr_group_name L\n real_server 198.18.1.13 80 {\n }\n}\n", "FNAT is not supported for fwmark", 6},
		{"fwmark DR of the other family", "virtual_server fwmark 9 {\n ip_family inet6\n lb_kind DR\n real_server 198.18.1.13 80 {\n }\n}\n", "is not IPv6 like the fwmark service", 4},
		{"SCTP", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol SCTP\n real_server 198.18.1.13 80 {\n }\n}\n", "SCTP", 3},
		{"uthreshold", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.1.13 80 {\n  uthreshold 100\n }\n}\n", "uthreshold", 5},
		{"orphan VIP", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.1.13 80 {\n }\n}\n", "govs_xdp_interface", 1},
		{"AH", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n authentication {\n  auth_type AH\n }\n virtual_ipaddress {\n  198.18.0.100\n }\n}\n", "AH", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if tc.name != "orphan VIP" && strings.HasPrefix(src, "virtual_server") {
				// Give the VIP an interface, so only the case's own problem remains.
				src += "global_defs {\n govs_xdp_interface eth0\n}\n"
			}
			cfg, diags := config.ParseString("t.conf", src, config.Options{})
			p := Build(cfg, diags, Options{})
			errs := p.Diagnostics.Errors()
			if len(errs) == 0 {
				t.Fatalf("no error; plan has %d services", len(p.Services))
			}
			found := false
			for _, d := range errs {
				found = found || strings.Contains(d.Message, tc.want) && d.Line == tc.line
			}
			if !found {
				t.Errorf("errors %v: none names %q at line %d", errs, tc.want, tc.line)
			}
			if tc.name != "AH" && tc.name != "orphan VIP" && len(p.Services) != 0 {
				t.Errorf("refused virtual server still planned: %+v", p.Services)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	vss := plan(t, scenarioConf).Checks
	if len(vss) != 1 || vss[0].Name != "198.18.0.100:80" || len(vss[0].RealServers) != 2 {
		t.Fatalf("check config = %+v", vss)
	}
	r1, r2 := vss[0].RealServers[0], vss[0].RealServers[1]
	if !r1.Inhibit || r1.Weight != 1 || r1.Addr.String() != "198.18.0.11:80" {
		t.Errorf("real server 1 = %+v", r1)
	}
	c := r1.Checkers[0]
	if c.Type != checkspec.TCP || *c.Retry != 3 || c.DelayBeforeRetry.Seconds() != 3 || c.ConnectPort != 80 || c.ConnectTimeout.Seconds() != 5 || c.DelayLoop.Seconds() != 6 {
		t.Errorf("TCP_CHECK spec = %+v", c)
	}
	h := r2.Checkers[0]
	if h.Type != checkspec.HTTP || len(h.URLs) != 1 || h.URLs[0].Path != "/health" || h.URLs[0].StatusCodes[0] != (checkspec.StatusRange{Lo: 200, Hi: 204}) {
		t.Errorf("HTTP_GET spec = %+v", h)
	}
}

func TestDataplaneState(t *testing.T) {
	p := plan(t, scenarioConf)
	mac1 := net.HardwareAddr{2, 0, 0, 0, 0, 0x11}
	neigh := map[netip.Addr]Neighbour{netip.MustParseAddr("198.18.0.11"): {MAC: mac1, Ifindex: 3}}

	// Before the first health report: configured weights; unresolved reals wait.
	st, unresolved := p.Dataplane(Pools{}, neigh)
	if len(st.Services) != 1 {
		t.Fatalf("services = %+v", st.Services)
	}
	s := st.Services[0]
	if s.Scheduler != "rr" || s.PersistenceTimeout.Seconds() != 50 || s.PersistenceBits != 24 || s.Protocol != dpstate.TCP {
		t.Errorf("service = %+v", s)
	}
	if len(s.Reals) != 1 || s.Reals[0].Weight != 1 || s.Reals[0].Ifindex != 3 || s.Reals[0].Method != dpstate.DR {
		t.Errorf("reals = %+v", s.Reals)
	}
	if len(unresolved) != 1 || unresolved[0].String() != "198.18.0.12" {
		t.Errorf("unresolved = %v", unresolved)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("state does not validate: %v", err)
	}

	// A health report: the inhibited server stays with weight 0, a removed one goes.
	pools := Pools{"198.18.0.100:80": {{Name: "198.18.0.11:80", Weight: 0}}}
	neigh[netip.MustParseAddr("198.18.0.12")] = Neighbour{MAC: mac1, Ifindex: 3}
	st, unresolved = p.Dataplane(pools, neigh)
	if len(unresolved) != 0 || len(st.Services[0].Reals) != 1 || st.Services[0].Reals[0].Weight != 0 {
		t.Errorf("after health report: reals %+v unresolved %v", st.Services[0].Reals, unresolved)
	}
}

func TestInterfaces(t *testing.T) {
	if got := plan(t, scenarioConf).Interfaces; strings.Join(got, ",") != "lan0" {
		t.Errorf("interfaces = %v", got)
	}
}

// The VRRP part of a plan holds no positions: moving a block in the file
// restarts nothing on reload, changing a priority does.
func TestVRRPPlanIgnoresPositions(t *testing.T) {
	a := plan(t, scenarioConf).VRRP
	b := plan(t, "\n\n# moved down\n"+scenarioConf).VRRP
	if !reflect.DeepEqual(a, b) {
		t.Error("moving blocks in the file changes the VRRP plan")
	}
	c := plan(t, strings.Replace(scenarioConf, "priority 100", "priority 101", 1)).VRRP
	if reflect.DeepEqual(a, c) {
		t.Error("a priority change is not seen")
	}
	d := plan(t, "global_defs {\n notification_email {\n  ops@example.org\n }\n}\n"+scenarioConf).VRRP
	if !reflect.DeepEqual(a, d) {
		t.Error("notification_email changes the VRRP plan")
	}
}

// TestHASuspendPlan: a virtual server with ha_suspend is suspended unless
// an instance holding its address (advertised or excluded) is MASTER; with
// no such instance govs says its checks always run.
func TestHASuspendPlan(t *testing.T) {
	vs := "virtual_server 198.18.0.100 80 {\n ha_suspend\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 198.18.1.13 80 {\n }\n}\n"
	inst := func(name, vrid, vip string) string {
		return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id " + vrid + "\n virtual_ipaddress {\n  " + vip + "\n }\n}\n"
	}
	src := inst("VI_1", "51", "198.18.0.100") + inst("VI_2", "52", "198.18.0.101") + vs
	cfg, diags := config.ParseString("t.conf", src, config.Options{})
	p := Build(cfg, diags, Options{})
	if !p.OK() {
		t.Fatal(p.Err())
	}
	want := []Suspension{{VirtualServer: "198.18.0.100:80", Instances: []string{"VI_1"}}}
	if !reflect.DeepEqual(p.Suspensions, want) {
		t.Fatalf("suspensions %+v, want %+v", p.Suspensions, want)
	}
	master := map[string]bool{}
	if !p.Suspensions[0].Suspended(func(in string) bool { return master[in] }) {
		t.Error("not suspended with no instance MASTER")
	}
	master["VI_2"] = true
	if !p.Suspensions[0].Suspended(func(in string) bool { return master[in] }) {
		t.Error("not suspended when only another instance is MASTER")
	}
	master["VI_1"] = true
	if p.Suspensions[0].Suspended(func(in string) bool { return master[in] }) {
		t.Error("suspended while the holder is MASTER")
	}

	cfg, diags = config.ParseString("t.conf", vs+"global_defs {\n govs_xdp_interface eth0\n}\n", config.Options{})
	p = Build(cfg, diags, Options{})
	if len(p.Suspensions) != 0 || len(p.Diagnostics.Warnings()) != 1 || !strings.Contains(p.Diagnostics.Warnings()[0].Message, "checks always run") {
		t.Errorf("without a holder: suspensions %+v, diagnostics %v", p.Suspensions, p.Diagnostics)
	}
}

// TestDataPlaneLimits: what the data plane cannot hold is refused by the
// plan, at its virtual server, instead of failing every apply at run time.
func TestDataPlaneLimits(t *testing.T) {
	reals := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, " real_server 198.18.%d.%d 80 {\n }\n", 10+i/200, 1+i%200)
		}
		return b.String()
	}
	vs := func(head, algo, body string) string {
		return head + " {\n lb_algo " + algo + "\n lb_kind DR\n protocol TCP\n" + body + "}\n"
	}
	const iface = "global_defs {\n govs_xdp_interface eth0\n}\n"
	for _, c := range []struct {
		name, src, want string
	}{
		{"services", "virtual_server_group g {\n 198.18.0.1-200 80\n 198.18.1.1-100 80\n}\n" + vs("virtual_server group g", "rr", reals(1)), "at most 256 services"},
		{"lc reals", vs("virtual_server 198.18.0.100 80", "lc", reals(65)), "lc balances at most 64 real servers, this one has 65"},
		{"real ids", "virtual_server_group g {\n 198.18.0.1-100 80\n}\n" + vs("virtual_server group g", "rr", reals(41)), "at most 4095 real servers over all services"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := config.ParseString("t.conf", c.src+iface, config.Options{})
			p := Build(cfg, diags, Options{})
			found := false
			for _, d := range p.Diagnostics.Errors() {
				found = found || strings.Contains(d.Message, c.want)
			}
			if !found {
				t.Errorf("no error %q; diagnostics %v", c.want, p.Diagnostics)
			}
		})
	}
	// At the limits themselves the plan is fine.
	cfg, diags := config.ParseString("t.conf", vs("virtual_server 198.18.0.100 80", "wlc", reals(64))+iface, config.Options{})
	if p := Build(cfg, diags, Options{}); !p.OK() {
		t.Errorf("64 reals under wlc refused: %v", p.Err())
	}
}
