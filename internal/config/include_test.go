package config

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIncludeFromDisk reads testdata/include through the default OS file
// system: globs relative to the including file, includes inside a block,
// parameters defined in one file and used in others, @id lines.
func TestIncludeFromDisk(t *testing.T) {
	path := filepath.Join("testdata", "include", "keepalived.conf")
	for id, prio := range map[string]int{"director-a": 150, "director-b": 100} {
		c, d := ParseFile(path, Options{ConfigID: id})
		if len(d) != 0 {
			t.Fatalf("id %s: diagnostics:\n%s", id, strings.Join(diagStrings(d), "\n"))
		}
		in := c.Instance("VI_1")
		eq(t, "priority", in.Priority, prio)
		eq(t, "VIP", in.VIPs[0].Prefix, netip.MustParsePrefix("198.18.0.100/24"))
		eq(t, "track_script weight", in.TrackScripts[0].Weight, -20)
		eq(t, "VIP position", in.VIPs[0].Pos, Pos{File: filepath.Join("testdata", "include", "conf.d", "20-vrrp.conf"), Line: 13})
		vs := c.VirtualServers[0]
		eq(t, "real servers", len(vs.RealServers), 2)
		rs := vs.RealServers[1]
		eq(t, "rs", hostPort(rs.Addr, rs.Port), "198.18.0.22:80")
		eq(t, "rs position", rs.Pos, Pos{File: filepath.Join("testdata", "include", "rs", "web22.conf"), Line: 1})
		ch := rs.Checkers[0]
		eq(t, "checker timings", [3]time.Duration{ch.ConnectTimeout, ch.DelayLoop, ch.DelayBeforeRetry}, [3]time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second})
		eq(t, "XDPInterfaces", c.Global.XDPInterfaces, []string{"eth0"})
	}
}
