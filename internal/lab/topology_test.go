package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/sched"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		topo Topology
		ok   bool
	}{
		{Topology{Name: "default", Webs: 2}, true},
		{Topology{Name: "t1a2b3", Webs: MaxWebs}, true},
		{Topology{Name: "", Webs: 2}, false},
		{Topology{Name: "a-b", Webs: 2}, false}, // would share a prefix with lab "a"
		{Topology{Name: "Upper", Webs: 2}, false},
		{Topology{Name: "averyveryverylongname", Webs: 2}, false},
		{Topology{Name: "x", Webs: 0}, false},
		{Topology{Name: "x", Webs: MaxWebs + 1}, false},
		{Topology{Name: "x", Webs: 3, Directors: 3, BGP: true}, true},
		{Topology{Name: "x", Webs: 3, Directors: 3, BGP: true, Resilient: true, Mode: ModeGUE}, true},
		{Topology{Name: "x", Webs: 3, Directors: 3}, false},                           // VRRP: a pair
		{Topology{Name: "x", Webs: 3, Directors: MaxDirectors + 1, BGP: true}, false}, // out of addresses
		{Topology{Name: "x", Webs: 3, Directors: 3, BGP: true, Mode: ModeNAT}, false}, // replies would need one master
		{Topology{Name: "x", Webs: 3, Resilient: true}, false},                        // resilient groups of BGP routes
	}
	for _, tt := range tests {
		if err := tt.topo.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.topo, err, tt.ok)
		}
	}
}

func TestNamesAndAddresses(t *testing.T) {
	topo := Topology{Name: "x", Webs: 3}
	if got := topo.NS("web2"); got != "govs-lab-x-web2" {
		t.Errorf("NS = %s", got)
	}
	want := map[string]string{"router": "198.18.0.1", "dir1": "198.18.0.11", "dir2": "198.18.0.12", "web1": "198.18.0.21", "web3": "198.18.0.23"}
	for role, addr := range want {
		a, ok := topo.LANAddr(role)
		if !ok || a.String() != addr {
			t.Errorf("LANAddr(%s) = %s %v, want %s", role, a, ok, addr)
		}
		if !LANNet.Contains(a) {
			t.Errorf("%s outside the LAN", a)
		}
	}
	if a, ok := topo.LANAddr6("web3"); !ok || a.String() != "2001:db8:18::23" || !LANNet6.Contains(a) {
		t.Errorf("LANAddr6(web3) = %s %v", a, ok)
	}
	for _, role := range []string{"client", "lan", "web4", "web0", "dir3", "webx"} {
		if a, ok := topo.LANAddr(role); ok {
			t.Errorf("LANAddr(%s) = %s, want none", role, a)
		}
	}
	if n := len(topo.Roles()); n != 3+2+3 {
		t.Errorf("%d roles", n)
	}
}

func TestKeepalivedConf(t *testing.T) {
	topo := Topology{Name: "x", Webs: 2}
	for _, d := range (Topology{}).DirectorRoles() {
		conf, err := topo.KeepalivedConf(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"interface eth0", "virtual_router_id 51", "198.18.0.100", "lb_algo rr", "lb_kind DR",
			"real_server 198.18.0.21 80", "real_server 198.18.0.22 80", "TCP_CHECK", "inhibit_on_failure", "lvs_sync_daemon eth0 VI_1",
			"virtual_server 2001:db8:18::100 80", "real_server 2001:db8:18::21 80", "real_server 2001:db8:18::22 80"} {
			if !strings.Contains(conf, want) {
				t.Errorf("%s conf lacks %q", d, want)
			}
		}
		if d == "dir1" && !strings.Contains(conf, "state MASTER") || d == "dir2" && !strings.Contains(conf, "state BACKUP") {
			t.Errorf("%s has the wrong initial state:\n%s", d, conf)
		}
		// The real keepalived must accept the file unchanged.
		if _, err := exec.LookPath("keepalived"); err == nil {
			path := filepath.Join(t.TempDir(), "keepalived.conf")
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("keepalived", "-t", "-f", path).CombinedOutput(); err != nil {
				t.Errorf("keepalived -t rejects the %s conf: %v\n%s\n%s", d, err, out, conf)
			}
		}
	}
	if _, err := topo.KeepalivedConf("web1"); err == nil {
		t.Error("KeepalivedConf(web1): want an error")
	}
}

func TestNftRuleset(t *testing.T) {
	rs := NftRuleset(NftTable)
	if !strings.Contains(rs, "dnat ip to 198.18.0.100:80") || !strings.Contains(rs, "dnat ip6 to [2001:db8:18::100]:80") || strings.Contains(rs, "masquerade") {
		t.Errorf("ruleset:\n%s", rs)
	}
}

func TestNginxConfIsAccepted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nginx -t wants root for its default paths")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "web1-nginx.conf")
	if err := os.WriteFile(conf, []byte(NginxConf("web1", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "web1-nginx-tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("nginx", "-t", "-c", conf).CombinedOutput(); err != nil {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

// TestBGPConfs: a BGP lab's directors get a keepalived.conf that govs
// plans with no error or warning (BGP sessions in both families, Maglev
// with the port, mesh sync), and the router a BIRD configuration that
// BIRD parses, with a session per director and family.
func TestBGPConfs(t *testing.T) {
	for _, resilient := range []bool{false, true} {
		topo := Topology{Name: "x", Webs: 3, Directors: 3, BGP: true, Resilient: resilient}
		for _, d := range topo.DirectorRoles() {
			conf, err := topo.KeepalivedConf(d)
			if err != nil {
				t.Fatal(err)
			}
			cfg, diags := config.ParseString(d+".conf", conf, config.Options{})
			plan := desired.Build(cfg, diags, desired.Options{NoDataplane: true})
			if len(plan.Diagnostics) > 0 {
				t.Errorf("%s: %v\n%s", d, plan.Diagnostics, conf)
			}
			addr, _ := topo.LANAddr(d)
			if plan.BGP == nil || plan.BGP.RouterID != addr || len(plan.BGP.Neighbors) != 2 || len(plan.BGP.VIPs) != 2 || strings.Contains(conf, "vrrp_instance") {
				t.Errorf("%s: BGP plan %+v", d, plan.BGP)
			}
			for _, s := range plan.Services {
				if s.Scheduler != sched.Maglev {
					t.Errorf("%s: %v schedules with %s, want mh (the same server on every director)", d, s.Key, s.Scheduler)
				}
			}
		}
		bird := topo.BirdConf()
		for _, want := range []string{"merge paths on", "protocol bgp dir3 from director_ipv4 { neighbor 198.18.0.13 as 65001; }",
			"protocol bgp dir1_v6 from director_ipv6 { neighbor 2001:db8:18::11 as 65001; }"} {
			if !strings.Contains(bird, want) {
				t.Errorf("BIRD conf lacks %q:\n%s", want, bird)
			}
		}
		if strings.Contains(bird, "kernel table") != resilient {
			t.Errorf("resilient %v: BIRD conf:\n%s", resilient, bird)
		}
		if _, err := exec.LookPath("bird"); err == nil {
			path := filepath.Join(t.TempDir(), "bird.conf")
			if err := os.WriteFile(path, []byte(bird), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("bird", "-p", "-c", path).CombinedOutput(); err != nil {
				t.Errorf("bird -p rejects the router's conf: %v\n%s\n%s", err, out, bird)
			}
		}
	}
}
