package director

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/vrrp"
)

// recordedStatics is the host's static addresses and routes, as strings,
// in the order they were set; pre are there before govs starts.
type recordedStatics struct {
	mu   sync.Mutex
	held []string
	log  []string
}

func (r *recordedStatics) add(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.held, s) {
		return false
	}
	r.held = append(r.held, s)
	r.log = append(r.log, "+"+s)
	return true
}

func (r *recordedStatics) remove(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.held = slices.DeleteFunc(r.held, func(h string) bool { return h == s })
	r.log = append(r.log, "-"+s)
}

func addrString(v vrrp.VIP) string { return fmt.Sprintf("addr %v dev %s", v.Prefix, v.Dev) }

func (r *recordedStatics) AddAddress(v vrrp.VIP) (bool, error) { return r.add(addrString(v)), nil }
func (r *recordedStatics) RemoveAddress(v vrrp.VIP) error      { r.remove(addrString(v)); return nil }
func (r *recordedStatics) AddRoute(rt vrrp.Route) (bool, error) {
	return r.add("route " + rt.String()), nil
}
func (r *recordedStatics) RemoveRoute(rt vrrp.Route) error {
	r.remove("route " + rt.String())
	return nil
}

func (r *recordedStatics) state() (held, log []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.held), slices.Clone(r.log)
}

// TestStaticAddressesAndRoutesFollowThePlan: static_ipaddress,
// static_routes and static_rules are set at start (addresses, then routes,
// then rules), a reload adds and removes only what changed, a clean stop
// removes what govs added (rules first) and leaves alone what was there
// before it.
func TestStaticAddressesAndRoutesFollowThePlan(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	file := func(statics string) string {
		return statics + "global_defs {\n    govs_xdp_interface eth0\n}\nvirtual_server 198.18.0.100 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n    }\n}\n"
	}
	writeConfig(t, conf, file(`static_ipaddress {
    198.18.0.200/24 dev eth0
    198.18.0.201/24 dev eth0
}
static_routes {
    203.0.113.0/25 via 198.18.0.1
    src 198.18.0.200 203.0.113.128/25 dev eth0
}
static_rules {
    from 198.18.0.200 table 100
}
`))
	pre := &recordedStatics{held: []string{"addr 198.18.0.201/24 dev eth0"}}
	f, err := startFakeWith(t, conf, healthy, func(f *fakeDirector) { f.statics = pre })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 }); !ok {
		t.Fatal("not programmed")
	}
	_, log := pre.state()
	if want := []string{"+addr 198.18.0.200/24 dev eth0", "+route 203.0.113.0/25 via 198.18.0.1", "+route 203.0.113.128/25 src 198.18.0.200 dev eth0", "+rule from 198.18.0.200/32 priority 16384 table 100"}; !slices.Equal(log, want) {
		t.Errorf("at start: %q, want %q", log, want)
	}
	writeConfig(t, conf, file(`static_ipaddress {
    198.18.0.200/24 dev eth0
    198.18.0.201/24 dev eth0
}
static_routes {
    203.0.113.0/25 via 198.18.0.1
    203.0.113.128/25 via 198.18.0.1 metric 10
}
static_rules {
    from 198.18.0.200 table 100
}
`))
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	_, log = pre.state()
	if want := []string{"-route 203.0.113.128/25 src 198.18.0.200 dev eth0", "+route 203.0.113.128/25 via 198.18.0.1 metric 10"}; !slices.Equal(log[4:], want) {
		t.Errorf("at the reload: %q, want %q", log[4:], want)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	held, log := pre.state()
	if want := []string{"-rule from 198.18.0.200/32 priority 16384 table 100", "-route 203.0.113.128/25 via 198.18.0.1 metric 10", "-route 203.0.113.0/25 via 198.18.0.1", "-addr 198.18.0.200/24 dev eth0"}; !slices.Equal(log[6:], want) {
		t.Errorf("at the stop: %q, want %q", log[6:], want)
	}
	if want := []string{"addr 198.18.0.201/24 dev eth0"}; !slices.Equal(held, want) {
		t.Errorf("after the stop the host holds %q, want only what it had before govs: %q", held, want)
	}
}

func (r *recordedStatics) AddRule(rl vrrp.Rule) (bool, error) {
	return r.add("rule " + rl.String()), nil
}
func (r *recordedStatics) RemoveRule(rl vrrp.Rule) error { r.remove("rule " + rl.String()); return nil }
