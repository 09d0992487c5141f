package netnstest

import (
	"net"
	"strings"
	"testing"
)

func TestPrivilegedVethPing(t *testing.T) {
	RequireRoot(t)
	a, b := NewNS(t, "a"), NewNS(t, "b")
	Veth(t, a, "eth0", b, "eth0")
	a.Addr("eth0", "198.18.0.1/24")
	b.Addr("eth0", "198.18.0.2/24")
	out := a.MustRun("ping", "-c1", "-W2", "198.18.0.2")
	if !strings.Contains(out, "1 received") {
		t.Fatalf("ping output: %s", out)
	}
	// Do must switch Go code, not just child processes, into the namespace.
	var addrs []net.Addr
	if err := a.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		addrs, err = ifi.Addrs()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(addrs) == 0 || !strings.HasPrefix(addrs[0].String(), "198.18.0.1/") {
		t.Fatalf("addresses of eth0 in %s: %v", a.Name, addrs)
	}
}
