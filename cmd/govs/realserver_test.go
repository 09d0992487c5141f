package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedRealserverCLI runs the subcommand inside a namespace and
// checks its output and exit codes: status 1 before up, 0 after; a second up
// changes nothing; down restores the settings.
func TestPrivilegedRealserverCLI(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNS(t, "rscli")
	state := "--state=" + filepath.Join(t.TempDir(), "rs.json")
	govs := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := -1
		if err := ns.Do(func() error {
			code = run(append([]string{"realserver"}, args...), &out, &errOut)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return code, out.String() + errOut.String()
	}
	steps := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"status", "--vip", "198.18.0.100", state}, 1, "FAIL net.ipv4.conf.all.arp_ignore: have 0, want 1"},
		{[]string{"up", "--vip", "198.18.0.100", "--vip", "2001:db8::100", state}, 0, "add 198.18.0.100/32 to lo"},
		{[]string{"up", "--vip", "198.18.0.100,2001:db8::100", state}, 0, "nothing to change"},
		{[]string{"status", state}, 0, "host is ready"},
		{[]string{"down", state}, 0, "set net.ipv4.conf.all.arp_ignore = 0"},
		{[]string{"status", "--vip", "198.18.0.100", state}, 1, "host is NOT ready"},
		{[]string{"up", "--vip", "198.18.0.1000", state}, 2, "parse VIP"},
		{[]string{"up", "--mode", "sideways", "--vip", "198.18.0.100", state}, 2, "not dr or tun"},
		{[]string{"frobnicate", state}, 2, "unknown subcommand"},
		{nil, 2, "Usage:"},
		// NAT: nothing on the host changes; the default route is checked.
		{[]string{"up", "--mode", "nat", "--vip", "198.18.0.100", state}, 2, "holds no VIP"},
		{[]string{"up", "--mode", "nat", state}, 2, "needs --gateway"},
		{[]string{"status", "--mode", "nat", "--gateway", "198.18.0.1", state}, 1, "ip route replace default via 198.18.0.1"},
		{[]string{"up", "--mode", "nat", "--gateway", "198.18.0.1,2001:db8::1", state}, 1, "FAIL default route (IPv6): have none"},
	}
	check := func(steps []struct {
		args     []string
		code     int
		contains string
	}) {
		t.Helper()
		for _, s := range steps {
			code, out := govs(s.args...)
			if code != s.code || !strings.Contains(out, s.contains) {
				t.Errorf("govs realserver %s: exit %d, want %d; output lacks %q:\n%s", strings.Join(s.args, " "), code, s.code, s.contains, out)
			}
		}
	}
	check(steps)
	ns.MustRun("ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1")
	ns.MustRun("ip", "link", "set", "d0", "up")
	ns.MustRun("ip", "addr", "add", "198.18.0.2/24", "dev", "d0")
	ns.MustRun("ip", "route", "add", "default", "via", "198.18.0.254")
	check([]struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"status", "--mode", "nat", "--gateway", "198.18.0.1", state}, 1, "FAIL default route (IPv4): have via 198.18.0.254 dev d0"},
	})
	ns.MustRun("ip", "route", "replace", "default", "via", "198.18.0.1")
	check([]struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"up", "--mode", "nat", "--gateway", "198.18.0.1", state}, 0, "ok   default route (IPv4): have via 198.18.0.1 dev d0"},
		{[]string{"down", "--mode", "nat", "--gateway", "198.18.0.1", state}, 0, "nothing to change"},
	})
}
