package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/internal/control"
)

// TestWeightAndDrain: the commands send what they are asked through the
// control socket (a reset sends no weight) and print the daemon's answer.
func TestWeightAndDrain(t *testing.T) {
	dir, err := os.MkdirTemp("", "govs-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "govs.sock")
	type call struct {
		vs   string
		real netip.Addr
		port uint16
		w    string
	}
	var got []call
	srv, err := control.Listen(control.Config{Path: path, Status: listSnapshot, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Weight: func(vs string, real netip.Addr, port uint16, w *uint32) (int, error) {
			c := call{vs, real, port, "reset"}
			if w != nil {
				c.w = string(rune('0' + *w))
			}
			got = append(got, c)
			return 2, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, tc := range []struct {
		args []string
		want call
		out  string
	}{
		{[]string{"weight", "--socket", path, "198.18.0.11", "3"}, call{"", netip.MustParseAddr("198.18.0.11"), 0, "3"}, "weight 3 for 2 real server(s)"},
		{[]string{"weight", "--socket", path, "--vs", "198.18.0.100:80", "198.18.0.11:8080", "reset"}, call{"198.18.0.100:80", netip.MustParseAddr("198.18.0.11"), 8080, "reset"}, "the configured weight"},
		{[]string{"drain", "--socket", path, "198.18.0.12"}, call{"", netip.MustParseAddr("198.18.0.12"), 0, "0"}, "weight 0"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 0 {
			t.Fatalf("%v: exit %d, %s", tc.args, code, stderr.String())
		}
		if last := got[len(got)-1]; last != tc.want {
			t.Errorf("%v: daemon got %+v, want %+v", tc.args, last, tc.want)
		}
		if !strings.Contains(stdout.String(), tc.out) {
			t.Errorf("%v: stdout %q", tc.args, stdout.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"weight", "--socket", path, "198.18.0.11", "lots"}, &stdout, &stderr); code != 2 {
		t.Errorf("a bad weight: exit %d, want 2", code)
	}
	if code := run([]string{"weight", "--socket", path, "nonsense", "1"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "want ADDR or ADDR:PORT") {
		t.Errorf("a bad address: exit %d, %s", code, stderr.String())
	}
}
