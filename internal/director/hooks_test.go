package director

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// TestVRRPNotifyFIFO: vrrp_notify_fifo is made at start and given to the
// VRRP units, its script starts with the FIFO as last argument, a reload
// that changes it is refused, and a stop removes the FIFO govs made.
func TestVRRPNotifyFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "vrrp.fifo")
	conf := filepath.Join(dir, "keepalived.conf")
	file := func(path string) string {
		return "global_defs {\n    vrrp_notify_fifo " + path + "\n    vrrp_notify_fifo_script /usr/local/bin/read-fifo\n    enable_script_security\n    script_user root\n}\n" +
			"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    virtual_ipaddress {\n        198.18.0.100/24\n    }\n}\n"
	}
	writeConfig(t, conf, file(fifo))
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	var write func(string)
	for deadline := time.Now().Add(5 * time.Second); write == nil; time.Sleep(time.Millisecond) {
		f.vrrp.mu.Lock()
		write = f.vrrp.fifo
		f.vrrp.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the VRRP unit got no FIFO")
		}
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("the FIFO is not there: %v", err)
	}
	defer r.Close()
	write(`INSTANCE "VI_1" MASTER 100`)
	buf := make([]byte, 100)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "INSTANCE \"VI_1\" MASTER 100\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	writeConfig(t, conf, file(filepath.Join(dir, "other.fifo")))
	if err := f.d.Reload(); err == nil || !strings.Contains(err.Error(), "only at a restart") {
		t.Errorf("a reload moving the FIFO: %v", err)
	}
	if err := f.stop(); err != nil {
		t.Fatal(err)
	}
	if got := f.hooks.list(); len(got) != 1 || !strings.HasPrefix(got[0], "/usr/local/bin/read-fifo '"+fifo+"' (0s)") {
		t.Errorf("scripts run: %q", got)
	}
	if _, err := os.Lstat(fifo); !os.IsNotExist(err) {
		t.Errorf("the FIFO govs made outlived it: %v", err)
	}
}
