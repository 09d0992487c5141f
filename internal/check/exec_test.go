package check

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/check/state"
)

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMiscProbe(t *testing.T) {
	dir := t.TempDir()
	exit := func(code int) string {
		return writeScript(t, dir, "exit"+strconv.Itoa(code), "exit "+strconv.Itoa(code)+"\n")
	}
	tests := []struct {
		name    string
		spec    Spec
		want    state.Result
		wantErr string
	}{
		{"exit 0 is up", Spec{Type: Misc, MiscPath: Script{Command: exit(0)}}, state.Result{OK: true}, ""},
		{"exit 1 is down", Spec{Type: Misc, MiscPath: Script{Command: exit(1)}}, state.Result{}, "exited with status 1"},
		{"exit 12 without misc_dynamic is down", Spec{Type: Misc, MiscPath: Script{Command: exit(12)}}, state.Result{}, "status 12"},
		{"misc_dynamic exit 12 is weight 10", Spec{Type: Misc, MiscDynamic: true, MiscPath: Script{Command: exit(12)}}, state.Result{OK: true, HasWeight: true, Weight: 10}, ""},
		{"misc_dynamic exit 2 is weight 0", Spec{Type: Misc, MiscDynamic: true, MiscPath: Script{Command: exit(2)}}, state.Result{OK: true, HasWeight: true, Weight: 0}, ""},
		{"misc_dynamic exit 255 is weight 253", Spec{Type: Misc, MiscDynamic: true, MiscPath: Script{Command: exit(255)}}, state.Result{OK: true, HasWeight: true, Weight: 253}, ""},
		{"misc_dynamic exit 1 is down", Spec{Type: Misc, MiscDynamic: true, MiscPath: Script{Command: exit(1)}}, state.Result{}, "status 1"},
		{"arguments are split and passed", Spec{Type: Misc, MiscPath: Script{Command: writeScript(t, dir, "args", `[ "$1" = "a b" ] && [ "$2" = c ] && exit 0; exit 1`+"\n") + ` "a b" c`}}, state.Result{OK: true}, ""},
		{"missing program is down", Spec{Type: Misc, MiscPath: Script{Command: filepath.Join(dir, "nope")}}, state.Result{}, "no such file"},
		{"killed by signal is down", Spec{Type: Misc, MiscPath: Script{Command: writeScript(t, dir, "selfkill", "kill -9 $$\n")}}, state.Result{}, "signal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewProber(tt.spec, rsAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Probe(context.Background())
			if got.OK != tt.want.OK || got.HasWeight != tt.want.HasWeight || got.Weight != tt.want.Weight {
				t.Fatalf("result %+v, want %+v", got, tt.want)
			}
			if tt.wantErr != "" && (got.Err == nil || !strings.Contains(got.Err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", got.Err, tt.wantErr)
			}
		})
	}
}

func TestMiscTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The script leaves a grandchild behind; a timeout must take it too.
	script := writeScript(t, dir, "hang", "sleep 30 &\necho $! > "+pidFile+"\nwait\n")
	p, err := NewProber(Spec{Type: Misc, MiscTimeout: 500 * time.Millisecond, MiscPath: Script{Command: script}}, rsAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := p.Probe(ctx)
	if res.OK || res.Err == nil || !strings.Contains(res.Err.Error(), "timed out") {
		t.Fatalf("result %+v, want a timeout", res)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(2 * time.Second)
	for {
		// Signal 0 only checks existence; a zombie would still answer,
		// but the orphan is reaped by init once killed.
		if err := syscall.Kill(pid, 0); err != nil {
			break
		}
		if data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(data), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScriptEnvironment(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	t.Setenv("GOVS_TEST_VAR", "kept")
	t.Setenv("LD_PRELOAD", "/nonexistent.so")
	t.Setenv("IFS", ":")
	script := writeScript(t, dir, "env", "env > "+out+"\n")
	if code, err := runScript(context.Background(), Script{Command: script}); code != 0 || err != nil {
		t.Fatalf("runScript = %d, %v", code, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	if !strings.Contains(env, "GOVS_TEST_VAR=kept") {
		t.Errorf("environment lacks GOVS_TEST_VAR:\n%s", env)
	}
	if strings.Contains(env, "LD_PRELOAD=") || strings.Contains(env, "IFS=:") {
		t.Errorf("environment keeps LD_PRELOAD or IFS:\n%s", env)
	}
}

func TestPrivilegedMiscRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	dir := t.TempDir()
	// t.TempDir and its parent are private to root; nobody must reach the script.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := writeScript(t, dir, "whoami", `[ "$(id -u)" = "`+nobody.Uid+`" ] && exit 0; exit 1`+"\n")
	for _, tc := range []struct {
		user string
		ok   bool
	}{{"nobody", true}, {"", false}} {
		p, err := NewProber(Spec{Type: Misc, MiscPath: Script{Command: script, User: tc.user}}, rsAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res := p.Probe(context.Background()); res.OK != tc.ok {
			t.Errorf("user %q: result %+v, want ok=%v", tc.user, res, tc.ok)
		}
	}
	if _, err := NewProber(Spec{Type: Misc, MiscPath: Script{Command: script, User: "no-such-user-govs"}}, rsAddr, time.Second); err == nil {
		t.Error("unknown user accepted")
	}
}
