package director

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReloadWhileChecksReport reloads a running director whose health
// checks report: a runner emits events while it stops, and Reload stops it
// while holding the director's lock, which once deadlocked (the event
// handler waited for the same lock).
func TestReloadWhileChecksReport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(algo string) {
		t.Helper()
		text := fmt.Sprintf(`virtual_server 198.18.0.100 80 {
    delay_loop 1
    lb_algo %s
    lb_kind DR
    protocol TCP
    real_server 127.0.0.1 %d {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`, algo, port)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rr")
	d, err := New(Options{ConfigPath: conf, SocketPath: "-", NoDataplane: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // the first checks have run
	for i, algo := range []string{"wrr", "rr", "lc", "rr"} {
		write(algo)
		reloaded := make(chan error, 1)
		go func() { reloaded <- d.Reload() }()
		select {
		case err := <-reloaded:
			if err != nil {
				t.Fatalf("reload %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("reload %d hangs", i)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("director does not stop")
	}
}
