package check

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedPingDown checks both outcomes of PING_CHECK inside a fresh
// namespace: its loopback answers, then stops answering echo requests.
func TestPrivilegedPingDown(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNS(t, "ping")
	run := func(target string) (bool, error) {
		p, err := NewProber(Spec{Type: Ping, ConnectTimeout: 300 * time.Millisecond}, rsAddrFor(target), time.Second)
		if err != nil {
			return false, err
		}
		var ok bool
		var perr error
		if err := ns.Do(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			res := p.Probe(ctx)
			ok, perr = res.OK, res.Err
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ok, perr
	}
	for _, target := range []string{"127.0.0.1", "::1"} {
		if ok, err := run(target); !ok {
			t.Fatalf("ping %s in a new namespace: %v", target, err)
		}
	}
	ns.Sysctl("net.ipv4.icmp_echo_ignore_all", "1")
	ns.Sysctl("net.ipv6.icmp.echo_ignore_all", "1")
	for _, target := range []string{"127.0.0.1", "::1"} {
		ok, err := run(target)
		if ok || err == nil || !strings.Contains(err.Error(), "no echo reply") {
			t.Fatalf("ping %s with echo ignored: ok=%v err=%v", target, ok, err)
		}
	}
}
