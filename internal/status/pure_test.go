package status

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPure keeps the status model free of OS glue, so every consumer (the
// CLI, the metrics exporter, tests) can use it without a kernel or root.
func TestPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/cilium/ebpf", "github.com/vishvananda/", "golang.org/x/sys/unix",
		"os/exec", "net/http", "github.com/prometheus/",
	}
	for dep := range strings.FieldsSeq(string(out)) {
		for _, bad := range forbidden {
			if strings.HasPrefix(dep, bad) {
				t.Errorf("internal/status depends on %s", dep)
			}
		}
	}
}
