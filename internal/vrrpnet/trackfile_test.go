package vrrpnet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/govs/govs/internal/vrrp"
)

func TestReadTrackFile(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content string
		want          int
	}{
		{"decimal", "42\n", 42},
		{"blanks and sign", "  \t-17 and then text", -17},
		{"hex", "0x1f", 31},
		{"octal", "017", 15},
		{"0x without digits is 0", "0xg", 0},
		{"no number", "up\n", 0},
		{"empty", "", 0},
		{"kept to 254", "100000", 254},
		{"kept to -254", "-99999999999999999999999", -254},
		{"plus", "+5", 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := readTrackFile(p); got != tt.want {
				t.Errorf("readTrackFile(%q) = %d, want %d", tt.content, got, tt.want)
			}
		})
	}
	if got := readTrackFile(filepath.Join(dir, "missing")); got != 0 {
		t.Errorf("a missing file reads %d, want 0", got)
	}
}

func TestInitTrackFile(t *testing.T) {
	dir := t.TempDir()
	seven, three := 7, 3
	p := filepath.Join(dir, "f")
	if err := initTrackFile(vrrp.TrackFile{Name: "f", Path: p, Init: &seven}); err != nil || readTrackFile(p) != 7 {
		t.Fatalf("init of a missing file: %v, reads %d", err, readTrackFile(p))
	}
	if err := initTrackFile(vrrp.TrackFile{Name: "f", Path: p, Init: &three}); err != nil || readTrackFile(p) != 7 {
		t.Fatalf("init without overwrite changed the file: %v, reads %d", err, readTrackFile(p))
	}
	if err := initTrackFile(vrrp.TrackFile{Name: "f", Path: p, Init: &three, InitOverwrite: true}); err != nil || readTrackFile(p) != 3 {
		t.Fatalf("init with overwrite: %v, reads %d", err, readTrackFile(p))
	}
	if err := initTrackFile(vrrp.TrackFile{Name: "f", Path: filepath.Join(dir, "g")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "g")); err == nil {
		t.Error("no init_file, yet the file was made")
	}
}
