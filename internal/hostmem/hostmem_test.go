package hostmem

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := parse(strings.NewReader("MemFree:  100 kB\nMemTotal:       4028120 kB\n"))
	if err != nil || got != 4028120*1024 {
		t.Fatalf("parse = %d, %v", got, err)
	}
	if _, err := parse(strings.NewReader("MemFree: 1 kB\n")); err == nil {
		t.Error("no MemTotal accepted")
	}
	if n, err := Total(); err != nil || n == 0 {
		t.Errorf("Total() = %d, %v", n, err)
	}
}
