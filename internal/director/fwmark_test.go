package director

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/dpstate"
)

// recordedFwmarks is a Fwmarks that records what the director asks of it.
type recordedFwmarks struct {
	mu       sync.Mutex
	ifindex  int
	checkErr error
	ensured  [][]dpstate.Fwmark
	removed  int
}

func (r *recordedFwmarks) Check(marks []dpstate.Fwmark) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checkErr
}

func (r *recordedFwmarks) Ensure(marks []dpstate.Fwmark) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checkErr != nil {
		return 0, r.checkErr
	}
	r.ensured = append(r.ensured, slices.Clone(marks))
	return r.ifindex, nil
}

func (r *recordedFwmarks) Remove() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed++
	return nil
}

func (r *recordedFwmarks) counts() (ensured []dpstate.Fwmark, n, removed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ensured) > 0 {
		ensured = r.ensured[len(r.ensured)-1]
	}
	return ensured, len(r.ensured), r.removed
}

// TestFwmarkRoutingFollowsThePlan: a configuration with fwmark services
// gets its marks routed and the data plane attached to the fwmark
// interface, after the services are programmed; a reload that drops them
// detaches and removes the routing; one that cannot route (forwarding off)
// is refused with the running configuration kept; a clean stop removes it.
func TestFwmarkRoutingFollowsThePlan(t *testing.T) {
	fw := `virtual_server fwmark 1 {
    lb_kind DR
    persistence_timeout 300
    real_server 198.18.0.11 {
        weight 1
    }
}
virtual_server_group g {
    fwmark 2
}
virtual_server group g {
    lb_kind DR
    real_server 2001:db8::11 {
        weight 1
    }
}
`
	plain := "virtual_server 198.18.0.100 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n    }\n}\nglobal_defs {\n    govs_xdp_interface eth0\n}\n"
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, fw+plain)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 3 })
	if !ok {
		t.Fatalf("services not programmed: %+v", st.Services)
	}
	waitUntil(t, "fwmark interface attached", func() bool { return f.dp.FwmarkInterface() == 99 })
	want := []dpstate.Fwmark{{Mark: 1}, {Mark: 2, IPv6: true}}
	if got, _, _ := f.fwm.counts(); !slices.Equal(got, want) {
		t.Errorf("marks routed %+v, want %+v", got, want)
	}
	if got := st.Fwmarks(); !slices.Equal(got, want) {
		t.Errorf("data plane fwmark services %+v, want %+v", got, want)
	}

	// Forwarding turned off: the reload is refused before anything changes.
	f.fwm.mu.Lock()
	f.fwm.checkErr = errors.New("fwmark services need IP forwarding (sysctl net.ipv4.ip_forward=1)")
	f.fwm.mu.Unlock()
	writeConfig(t, conf, strings.Replace(fw, "fwmark 2", "fwmark 3", 1)+plain)
	if err := f.d.Reload(); err == nil || !strings.Contains(err.Error(), "ip_forward") {
		t.Fatalf("reload with forwarding off: %v", err)
	}
	if got, _, _ := f.fwm.counts(); !slices.Equal(got, want) || f.dp.FwmarkInterface() != 99 {
		t.Errorf("a refused reload changed the routing: %+v, interface %d", got, f.dp.FwmarkInterface())
	}
	f.fwm.mu.Lock()
	f.fwm.checkErr = nil
	f.fwm.mu.Unlock()

	// No fwmark services left: detached, routing removed.
	writeConfig(t, conf, plain)
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.dp.FwmarkInterface() != 0 {
		t.Error("still attached to the fwmark interface")
	}
	_, _, removed := f.fwm.counts()
	if removed == 0 {
		t.Error("routing not removed")
	}
	// Back again, then a clean stop removes it.
	writeConfig(t, conf, fw+plain)
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.dp.FwmarkInterface() != 99 {
		t.Fatal("not attached again")
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if _, _, r := f.fwm.counts(); r != removed+1 {
		t.Errorf("a clean stop removed the routing %d times, want once", r-removed)
	}
}

// recordedLocalAddrs is a LocalAddrs that records the addresses it holds.
type recordedLocalAddrs struct {
	mu   sync.Mutex
	held map[netip.Addr]string
}

func (r *recordedLocalAddrs) Add(l desired.LocalAddr) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.held[l.Addr]; ok {
		return false, nil
	}
	r.held[l.Addr] = l.Interface
	return true, nil
}

func (r *recordedLocalAddrs) Remove(l desired.LocalAddr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.held, l.Addr)
	return nil
}

func (r *recordedLocalAddrs) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for a, dev := range r.held {
		out = append(out, a.String()+"@"+dev)
	}
	slices.Sort(out)
	return out
}

// TestFNATLocalAddrsFollowThePlan: the local addresses a local_address_group
// puts on an interface are held while a FullNAT service uses them, given
// back when a reload drops them, and at a clean stop; the data plane is
// attached where the FullNAT real servers are, for their replies.
func TestFNATLocalAddrsFollowThePlan(t *testing.T) {
	fnat := func(group string) string {
		return "local_address_group L1 {\n    " + group + "\n}\nvirtual_server 198.18.0.100 80 {\n    lb_kind FNAT\n    laddr_group_name L1\n    protocol TCP\n    real_server 198.18.2.11 8080 {\n        weight 1\n    }\n}\nglobal_defs {\n    govs_xdp_interface eth0\n}\n"
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, fnat("198.18.2.201-202 int0"))
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 && len(st.Services[0].Reals) == 1 })
	if !ok {
		t.Fatalf("not programmed: %+v", st)
	}
	if got := st.Services[0].LocalAddrs; len(got) != 2 || st.Services[0].Reals[0].Method != dpstate.FNAT {
		t.Errorf("data plane service %+v", st.Services[0])
	}
	if got, want := f.laddrs.list(), []string{"198.18.2.201@int0", "198.18.2.202@int0"}; !slices.Equal(got, want) {
		t.Errorf("held %v, want %v", got, want)
	}
	// resolveAll puts every real server behind ifindex 7: attached for
	// the replies.
	if _, ok := f.dp.Attached()[7]; !ok {
		t.Errorf("not attached where the FullNAT real server is: %v", f.dp.Attached())
	}
	writeConfig(t, conf, fnat("198.18.2.202 int0"))
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.laddrs.list(), []string{"198.18.2.202@int0"}; !slices.Equal(got, want) {
		t.Errorf("after the reload held %v, want %v", got, want)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if got := f.laddrs.list(); len(got) != 0 {
		t.Errorf("after a clean stop held %v", got)
	}
}
