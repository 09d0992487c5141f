package director

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/dpstate"
)

// TestReloadRestartsVRRPOnlyForItsChanges reloads a running director after
// edits: those no VRRP instance depends on (notification_email, a real
// server's weight, lvs_sync_daemon) keep the instances running, as keepalived
// users expect of a reload; an instance's own setting restarts them.
func TestReloadRestartsVRRPOnlyForItsChanges(t *testing.T) {
	base := corpus.Files()[0]
	if base.Name != "base" {
		t.Fatalf("corpus starts with %q, not the base file", base.Name)
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(base.Src)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 && len(st.Services[0].Reals) == 2 }); !ok {
		t.Fatal("base configuration not programmed")
	}
	edits := []struct {
		name, old, new string
		restart        bool
	}{
		{"notification_email", "router_id lb1", "router_id lb1\n    notification_email {\n        ops@example.org\n    }\n    notification_email_from lb@example.org", false},
		{"real server weight", "real_server 198.18.0.12 80 {\n        weight 1", "real_server 198.18.0.12 80 {\n        weight 3", false},
		{"lvs_sync_daemon", "router_id lb1", "router_id lb1\n    lvs_sync_daemon eth0 VI_1", false},
		{"priority", "priority 100", "priority 150", true},
		{"advert_int", "advert_int 1", "advert_int 2", true},
	}
	src := base.Src
	wantStarts := 1
	for _, e := range edits {
		if !strings.Contains(src, e.old) {
			t.Fatalf("%s: %q not in the configuration", e.name, e.old)
		}
		src = strings.Replace(src, e.old, e.new, 1)
		write(src)
		if err := f.d.Reload(); err != nil {
			t.Fatalf("%s: reload: %v", e.name, err)
		}
		if e.restart {
			wantStarts++
		}
		started, stopped := f.vrrp.counts()
		if started != wantStarts || stopped != wantStarts-1 {
			t.Errorf("after editing %s: VRRP started %d times, stopped %d; want %d and %d", e.name, started, stopped, wantStarts, wantStarts-1)
		}
	}
	if st, _ := f.waitApplied(0, func(dpstate.State) bool { return true }); st.Services[0].Reals[1].Weight != 3 {
		t.Errorf("weight edit not applied: %+v", st.Services[0].Reals)
	}
}
