package check

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// endless serves each connection prefix followed by filler for as long as
// the client reads, at most limit bytes: a real server gone wrong.
func endless(t *testing.T, prefix, filler string, limit int) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := c.Write([]byte(prefix)); err != nil {
					return
				}
				chunk := []byte(strings.Repeat(filler, 64<<10/len(filler)))
				for sent := 0; sent < limit; sent += len(chunk) {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestHostileServersAreBounded: servers that send an endless header line,
// endless headers or an endless multi-line SMTP greeting fail the check
// with a reason, and the probe allocates a bounded amount (it would
// buffer the whole stream otherwise).
func TestHostileServersAreBounded(t *testing.T) {
	const stream = 512 << 20 // what each server is willing to send
	for _, c := range []struct {
		name           string
		spec           Spec
		prefix, filler string
		want           string
	}{
		{"endless header line", Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, "HTTP/1.0 200 OK\r\nX-Long: ", "a", "headers longer than"},
		{"endless headers", Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, "HTTP/1.0 200 OK\r\n", "X-A: b\r\n", "read response"},
		{"endless status line", Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, "HTTP/1.0 200 ", "O", "headers longer than"},
		{"endless SMTP greeting", Spec{Type: SMTP}, "", "220-still greeting\r\n", "reply too long"},
		{"endless SMTP line", Spec{Type: SMTP}, "220 ", "x", "reply too long"},
	} {
		t.Run(c.name, func(t *testing.T) {
			target := endless(t, c.prefix, c.filler, stream)
			c.spec.ConnectTimeout = 10 * time.Second
			p, err := NewProber(c.spec, target, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res := p.Probe(ctx)
			cancel()
			runtime.ReadMemStats(&after)
			if res.OK || res.Err == nil || !strings.Contains(res.Err.Error(), c.want) {
				t.Errorf("result %+v, want a failure saying %q", res, c.want)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
				t.Errorf("the probe allocated %d MiB", grew>>20)
			}
		})
	}
}
