package vrrpnet

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/vrrp"
	"github.com/vishvananda/netlink"
)

func TestNotifyCommands(t *testing.T) {
	n := vrrp.Notify{Master: "/bin/m.sh arg", Backup: "/bin/b.sh", Any: "/bin/n.sh",
		RunAs: map[string]vrrp.RunAs{"master": {User: "nobody"}, "notify": {User: "daemon", Group: "adm"}}}
	nobody, daemon := vrrp.RunAs{User: "nobody"}, vrrp.RunAs{User: "daemon", Group: "adm"}
	tests := []struct {
		to   vrrp.State
		want []notifyCommand
	}{
		{vrrp.StateMaster, []notifyCommand{{"/bin/m.sh arg", nobody}, {"/bin/n.sh 'INSTANCE' 'VI_1' 'MASTER' 150", daemon}}},
		{vrrp.StateBackup, []notifyCommand{{"/bin/b.sh", vrrp.RunAs{}}, {"/bin/n.sh 'INSTANCE' 'VI_1' 'BACKUP' 150", daemon}}},
		{vrrp.StateFault, []notifyCommand{{"/bin/n.sh 'INSTANCE' 'VI_1' 'FAULT' 150", daemon}}},
		{vrrp.StateStop, []notifyCommand{{"/bin/n.sh 'INSTANCE' 'VI_1' 'STOP' 150", daemon}}},
	}
	for _, tt := range tests {
		t.Run(tt.to.String(), func(t *testing.T) {
			if got := notifyCommands(n, "INSTANCE", "VI_1", tt.to, 150); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNotifyArgumentsReachScript(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "args")
	script := filepath.Join(dir, "n.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s|' \"$@\" > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmds := notifyCommands(vrrp.Notify{Any: script}, "INSTANCE", "it's odd", vrrp.StateMaster, 100)
	if err := RunScript(context.Background(), cmds[0].cmd, cmds[0].as, 0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "INSTANCE|it's odd|MASTER|100|"; got != want {
		t.Fatalf("script saw %q, want %q", got, want)
	}
}

func TestScope(t *testing.T) {
	tests := []struct {
		in      string
		want    netlink.Scope
		wantErr bool
	}{
		{"", netlink.SCOPE_UNIVERSE, false},
		{"global", netlink.SCOPE_UNIVERSE, false},
		{"host", netlink.SCOPE_HOST, false},
		{"link", netlink.SCOPE_LINK, false},
		{"site", netlink.SCOPE_SITE, false},
		{"200", 200, false},
		{"galaxy", 0, true},
		{"300", 0, true},
	}
	for _, tt := range tests {
		got, err := scope(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("scope(%q) = %v, %v", tt.in, got, err)
		}
	}
}

// TestPrivilegedScriptRunsAsUser: a VRRP script or notify command with a
// user runs with that user's uid, as keepalived runs it.
func TestPrivilegedScriptRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	// Not t.TempDir: its parent is closed to other users.
	dir, err := os.MkdirTemp("", "govs-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "id")
	for _, c := range []struct {
		as   vrrp.RunAs
		want string
	}{{vrrp.RunAs{}, "0"}, {vrrp.RunAs{User: "nobody"}, nobody.Uid}} {
		if err := RunScript(context.Background(), "id -u > "+out, c.as, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != c.want {
			t.Errorf("as %+v: uid %s, want %s", c.as, got, c.want)
		}
		os.Remove(out)
	}
	if err := RunScript(context.Background(), "true", vrrp.RunAs{User: "no-such-user-govs"}, time.Second); err == nil {
		t.Error("a script for an unknown user ran")
	}
}
