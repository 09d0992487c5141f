package director

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/vrrp"
)

// recordedHooks records the scripts the director ran, with what had
// happened by then (data plane states applied, VRRP units stopped).
type recordedHooks struct {
	mu   sync.Mutex
	ran  []string
	when func() string
}

func (r *recordedHooks) run(_ context.Context, command string, _ vrrp.RunAs, timeout time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	at := ""
	if r.when != nil {
		at = r.when()
	}
	r.ran = append(r.ran, command+" ("+timeout.String()+") "+at)
	return nil
}

func (r *recordedHooks) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ran)
}

// TestStartupAndShutdownScripts: startup_script runs before the data plane
// is programmed or VRRP started, shutdown_script after VRRP stopped, each
// once, with its timeout; a reload runs neither.
func TestStartupAndShutdownScripts(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, `global_defs {
    startup_script /etc/govs/up.sh
    shutdown_script "/etc/govs/down.sh now"
    shutdown_script_timeout 3
    enable_script_security
    script_user root
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.100/24
    }
}
virtual_server 198.18.0.100 80 {
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
    }
}
`)
	f, err := startFakeWith(t, conf, healthy, func(fd *fakeDirector) {
		fd.hooks.when = func() string {
			fd.vrrp.mu.Lock()
			defer fd.vrrp.mu.Unlock()
			return "after " + itoa(len(fd.dp.Applied())) + " applies, " + itoa(len(fd.vrrp.started)) + " units started, " + itoa(fd.vrrp.stopped) + " stopped"
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 }); !ok {
		t.Fatal("not programmed")
	}
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	got := f.hooks.list()
	want := []string{"/etc/govs/up.sh (10s) after 0 applies, 0 units started, 0 stopped", "/etc/govs/down.sh now (3s) after "}
	if len(got) != 2 || got[0] != want[0] || got[1][:len(want[1])] != want[1] {
		t.Fatalf("scripts run: %q, want %q and the shutdown one", got, want)
	}
	if s := got[1]; !strings.HasSuffix(s, "1 units started, 1 stopped") {
		t.Errorf("shutdown_script ran before VRRP stopped: %q", s)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestVRRPStartupDelay: vrrp_startup_delay reaches the units started with
// govs; one a reload starts later gets what is left of it.
func TestVRRPStartupDelay(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	inst := func(vrid int) string {
		return "vrrp_instance VI_" + itoa(vrid) + " {\n    interface eth0\n    virtual_router_id " + itoa(vrid) + "\n    virtual_ipaddress {\n        198.18.0." + itoa(vrid) + "/24\n    }\n}\n"
	}
	writeConfig(t, conf, "global_defs {\n    vrrp_startup_delay 30\n}\n"+inst(51))
	clock := newManualClock()
	f, err := startFakeWith(t, conf, healthy, func(f *fakeDirector) { f.clock = clock })
	if err != nil {
		t.Fatal(err)
	}
	// The first unit has started (startFake may return before Run got there).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		f.vrrp.mu.Lock()
		n := len(f.vrrp.started)
		f.vrrp.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no VRRP unit started")
		}
	}
	clock.mu.Lock()
	clock.now = clock.now.Add(10 * time.Second)
	clock.mu.Unlock()
	writeConfig(t, conf, "global_defs {\n    vrrp_startup_delay 30\n}\n"+inst(51)+inst(52))
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	f.vrrp.mu.Lock()
	delays := slices.Clone(f.vrrp.delays)
	f.vrrp.mu.Unlock()
	if want := []time.Duration{30 * time.Second, 20 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("startup delays %v, want %v: 30 s, then what is left of it 10 s later", delays, want)
	}
}
