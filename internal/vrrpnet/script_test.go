package vrrpnet

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/govs/govs/internal/vrrp"
	"github.com/vishvananda/netlink"
)

func TestNotifyCommands(t *testing.T) {
	n := vrrp.Notify{Master: "/bin/m.sh arg", Backup: "/bin/b.sh", Any: "/bin/n.sh"}
	tests := []struct {
		to   vrrp.State
		want []string
	}{
		{vrrp.StateMaster, []string{"/bin/m.sh arg", "/bin/n.sh 'INSTANCE' 'VI_1' 'MASTER' 150"}},
		{vrrp.StateBackup, []string{"/bin/b.sh", "/bin/n.sh 'INSTANCE' 'VI_1' 'BACKUP' 150"}},
		{vrrp.StateFault, []string{"/bin/n.sh 'INSTANCE' 'VI_1' 'FAULT' 150"}},
		{vrrp.StateStop, []string{"/bin/n.sh 'INSTANCE' 'VI_1' 'STOP' 150"}},
	}
	for _, tt := range tests {
		t.Run(tt.to.String(), func(t *testing.T) {
			if got := notifyCommands(n, "INSTANCE", "VI_1", tt.to, 150); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
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
	if err := runScript(context.Background(), cmds[0], 0); err != nil {
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
