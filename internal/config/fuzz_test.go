package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the whole pipeline (lexer, tree, model,
// summary); it must never panic or hang. Includes resolve against an
// in-memory file that includes itself, to exercise the depth cap.
func FuzzParse(f *testing.F) {
	f.Add("vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n}\n", "")
	f.Add("$A=${A}${A}\n$A\n@x include *\n", "x")
	f.Add("virtual_server_group G {\n 10.0.0.1-10.0.0.200 80\n 2001:db8::/120\n}\nvirtual_server group G {\n}\n", "")
	if dir := sharedDirOrEmpty(); dir != "" {
		for _, sub := range []string{"keepalived-samples", "fixtures"} {
			files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
			for _, file := range files {
				if data, err := os.ReadFile(file); err == nil {
					f.Add(string(data), "high")
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, src, id string) {
		fsys := MapFS{"/k/inc.conf": src}
		c, d := ParseString("/k/keepalived.conf", src, Options{FS: fsys, ConfigID: id, MaxIncludeDepth: 3})
		if c == nil {
			t.Fatal("nil config")
		}
		for _, x := range d {
			if !x.Pos.IsValid() && x.Pos.File == "" {
				t.Fatalf("diagnostic without position: %v", x)
			}
		}
		_ = WriteSummary(&bytes.Buffer{}, c)
	})
}

func sharedDirOrEmpty() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			shared := filepath.Join(dir, "..", "shared")
			if _, err := os.Stat(shared); err == nil {
				return shared
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
