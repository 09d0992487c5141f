package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPages: `govs man DIR` writes a page per command from the command
// tree, with the flags --help shows, and none for hidden commands.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	root := newRootCmd(&out, &errb)
	root.SetArgs([]string{"man", dir})
	if err := root.Execute(); err != nil {
		t.Fatalf("govs man: %v (%s)", err, errb.String())
	}
	for page, want := range map[string]string{
		"govs.1":               ".SH NAME",
		"govs-run.1":           "--pin-dir",
		"govs-realserver-up.1": "--gue-port",
		"govs-list.1":          "connections",
	} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not contain %q", page, want)
		}
	}
	for _, hidden := range []string{"govs-man.1"} {
		if _, err := os.Stat(filepath.Join(dir, hidden)); err == nil {
			t.Errorf("%s written for a hidden command", hidden)
		}
	}
}
