package dataplane

import (
	"testing"
	"time"

	"github.com/govs/govs/internal/sched"
)

// TestTimeoutsFollowTheState: lvs_timeouts reach the program's settings
// and the connection expiry, and go back to the defaults when a state no
// longer sets them.
func TestTimeoutsFollowTheState(t *testing.T) {
	udp := state(Service{Addr: vip4, Port: 53, Protocol: UDP, Scheduler: sched.Maglev, Reals: []Real{real4(1, 1)}})
	d := openDP(t, udp)
	settings := func() balancerConfig {
		t.Helper()
		var c balancerConfig
		if err := d.objs.Settings.Lookup(uint32(0), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := settings(); c.TcpTimeoutNs != uint64(900*time.Second) || c.TcpFinTimeoutNs != uint64(120*time.Second) || c.UdpTimeoutNs != uint64(300*time.Second) {
		t.Fatalf("default settings %+v", c)
	}
	short := udp
	short.Timeouts = Timeouts{TCP: 7200 * time.Second, UDP: 50 * time.Millisecond}
	if err := d.Apply(short); err != nil {
		t.Fatal(err)
	}
	if c := settings(); c.TcpTimeoutNs != uint64(7200*time.Second) || c.TcpFinTimeoutNs != uint64(120*time.Second) || c.UdpTimeoutNs != uint64(50*time.Millisecond) {
		t.Fatalf("settings after lvs_timeouts tcp 7200 udp 0.05: %+v", c)
	}
	p := flowN(1, 53)
	p.proto, p.syn = UDP, false
	if act, _ := runOut(t, d.program(), frame(t, p)); act != xdpTX {
		t.Fatalf("action %s", actionNames[act])
	}
	if n := mapLen(t, d.objs.Conns); n != 1 {
		t.Fatalf("%d connection entries, want 1", n)
	}
	// The 50 ms UDP timeout, not the default 300 s, ends the entry.
	for deadline := time.Now().Add(10 * time.Second); mapLen(t, d.objs.Conns) != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the UDP entry outlived its 50 ms timeout")
		}
		if _, err := d.ExpireConnections(); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Apply(udp); err != nil {
		t.Fatal(err)
	}
	if c := settings(); c.TcpTimeoutNs != uint64(900*time.Second) || c.UdpTimeoutNs != uint64(300*time.Second) {
		t.Fatalf("settings after lvs_timeouts went: %+v", c)
	}
	bad := udp
	bad.Timeouts.TCPFin = -time.Second
	if err := d.Apply(bad); err == nil {
		t.Fatal("a negative timeout was applied")
	}
}
