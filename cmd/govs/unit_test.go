package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies: systemd-analyze accepts the shipped unit (with
// the binary's path pointed at one that exists here), and the unit keeps
// what the service needs: readiness, reload, the runtime directory, and no
// keepalived beside it.
func TestSystemdUnitVerifies(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "govs.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{"Type=notify", "ExecReload=/usr/sbin/govs reload", "RuntimeDirectory=govs", "Conflicts=keepalived.service", "CAP_BPF", "CAP_NET_RAW"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	path := filepath.Join(t.TempDir(), "govs.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/sbin/govs", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || strings.Contains(string(out), "govs.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
