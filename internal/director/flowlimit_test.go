package director

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/govs/govs/internal/dpstate"
)

// TestNewFlowLimitFollowsTheConfiguration: govs_new_flow_limit reaches the
// data plane at start, and a reload changes or removes it.
func TestNewFlowLimitFollowsTheConfiguration(t *testing.T) {
	conf := func(global string) string {
		return "global_defs {\n    govs_xdp_interface eth0\n" + global + "}\n" +
			"virtual_server 198.18.0.100 80 {\n    lb_kind DR\n    lb_algo mh\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n    }\n}\n"
	}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, path, conf("    govs_new_flow_limit 100000\n"))
	f, err := startFake(t, path, healthy)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		global string
		want   uint32
	}{{"", 100000}, {"    govs_new_flow_limit 5000\n", 5000}, {"\n", 0}} {
		if step.global != "" {
			writeConfig(t, path, conf(step.global))
			if err := f.d.Reload(); err != nil {
				t.Fatal(err)
			}
		}
		st, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool {
			return len(st.Services) == 1 && st.NewFlowLimit == step.want
		})
		if !ok {
			t.Fatalf("new-flow limit %d applied, want %d", st.NewFlowLimit, step.want)
		}
	}
}
