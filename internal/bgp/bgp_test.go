package bgp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/desired"
)

// TestPeerOfBFD: BFD is off unless a neighbor asks for it (GoBGP v4.8's BFD
// tore down healthy sessions after a 1 s pause; docs/bgp.md), and bfd's
// interval and multiplier reach GoBGP in its units (microseconds).
func TestPeerOfBFD(t *testing.T) {
	base := desired.BGPNeighbor{Addr: netip.MustParseAddr("198.18.0.1"), RemoteAS: 65000, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second}
	for _, tc := range []struct {
		name string
		bfd  *desired.BFD
		want uint32 // interval in µs; 0: no BFD
		mult uint32
	}{
		{"default", nil, 0, 0},
		{"on", &desired.BFD{Interval: 300 * time.Millisecond, Multiplier: 3}, 300_000, 3},
		{"fast", &desired.BFD{Interval: 50 * time.Millisecond, Multiplier: 5}, 50_000, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := base
			n.BFD = tc.bfd
			p := peerOf(n, 0, false)
			if tc.want == 0 {
				if p.Bfd != nil && p.Bfd.Enabled {
					t.Fatalf("BFD on by default: %v", p.Bfd)
				}
				return
			}
			if p.Bfd == nil || !p.Bfd.Enabled || p.Bfd.DesiredMinimumTxInterval != tc.want || p.Bfd.RequiredMinimumReceive != tc.want || p.Bfd.DetectionMultiplier != tc.mult {
				t.Fatalf("BFD %v, want enabled with %d µs × %d", p.Bfd, tc.want, tc.mult)
			}
		})
	}
}
