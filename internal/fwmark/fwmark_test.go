package fwmark

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/dpstate"
	"github.com/govs/govs/internal/netnstest"
)

// TestTCProgram: the tc program copies the packet's mark into bytes 2-5 of
// the destination MAC, in network order, changes nothing else and lets the
// packet go.
func TestTCProgram(t *testing.T) {
	netnstest.RequireRoot(t)
	var objs fwmarkObjects
	if err := loadFwmarkObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	frame := make([]byte, 60)
	for i := range frame {
		frame[i] = byte(i)
	}
	frame[12], frame[13] = 0x08, 0x00
	for _, mark := range []uint32{1, 0xa1b2c3d4} {
		// struct __sk_buff up to mark: len and pkt_type must be zero.
		opts := &ebpf.RunOptions{Data: bytes.Clone(frame), DataOut: make([]byte, len(frame)+256), Context: [3]uint32{0, 0, mark}}
		ret, err := objs.GovsFwmark.Run(opts)
		if err != nil {
			t.Fatalf("run tc program: %v", err)
		}
		if ret != 0 /* TC_ACT_OK */ {
			t.Fatalf("mark %#x: tc action %d, want TC_ACT_OK", mark, ret)
		}
		want := bytes.Clone(frame)
		copy(want[2:6], []byte{byte(mark >> 24), byte(mark >> 16), byte(mark >> 8), byte(mark)})
		if got := opts.DataOut[:len(frame)]; !bytes.Equal(got, want) {
			t.Fatalf("mark %#x: frame after tc:\n got %x\nwant %x", mark, got, want)
		}
	}
}

// TestCheck: forwarding must be on for each family a mark needs, and the
// error names the sysctl.
func TestCheck(t *testing.T) {
	tests := []struct {
		name       string
		v4, v6     string
		marks      []dpstate.Fwmark
		wantErrors []string
	}{
		{"v4 on", "1", "0", []dpstate.Fwmark{{Mark: 1}}, nil},
		{"v4 off", "0", "1", []dpstate.Fwmark{{Mark: 1}}, []string{"net.ipv4.ip_forward=1"}},
		{"v6 off", "1", "0", []dpstate.Fwmark{{Mark: 1}, {Mark: 2, IPv6: true}}, []string{"net.ipv6.conf.all.forwarding=1"}},
		{"both off", "0", "0", []dpstate.Fwmark{{Mark: 1}, {Mark: 1, IPv6: true}}, []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"}},
		{"no marks", "0", "0", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for key, v := range map[string]string{"net/ipv4/conf/all/forwarding": tt.v4, "net/ipv6/conf/all/forwarding": tt.v6} {
				p := filepath.Join(dir, key)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Plumbing{ProcSys: dir}.Check(tt.marks)
			if len(tt.wantErrors) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want errors naming %q", tt.wantErrors)
			}
			for _, w := range tt.wantErrors {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

// TestPrivilegedEnsureRemove: Ensure builds the veth pair, the tc program,
// a rule per mark and family ahead of the moved local rule, and is
// idempotent; a smaller mark set drops the others' rules; Remove leaves
// no rule and no device.
func TestPrivilegedEnsureRemove(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNS(t, "fwm")
	ns.Sysctl("net.ipv4.ip_forward", "1")
	ns.Sysctl("net.ipv6.conf.all.forwarding", "1")
	marks := []dpstate.Fwmark{{Mark: 1}, {Mark: 7}, {Mark: 1, IPv6: true}}
	do := func(fn func() error) {
		t.Helper()
		if err := ns.Do(fn); err != nil {
			t.Fatal(err)
		}
	}
	var ifindex int
	for range 2 {
		do(func() (err error) { ifindex, err = Plumbing{}.Ensure(marks); return err })
	}
	if ifindex == 0 {
		t.Fatal("no ifindex for the balance device")
	}
	rules4 := ns.MustRun("ip", "-4", "rule")
	rules6 := ns.MustRun("ip", "-6", "rule")
	for _, want := range []string{"90:\tfrom all fwmark 0x1 lookup 26486", "90:\tfrom all fwmark 0x7 lookup 26486", "100:\tfrom all lookup local"} {
		if strings.Count(rules4, want) != 1 {
			t.Errorf("ip -4 rule has %q %d times, want once:\n%s", want, strings.Count(rules4, want), rules4)
		}
	}
	if !strings.Contains(rules6, "fwmark 0x1 lookup 26486") || strings.Contains(rules6, "fwmark 0x7") || !strings.Contains(rules6, "100:\tfrom all lookup local") {
		t.Errorf("ip -6 rule:\n%s", rules6)
	}
	if strings.Contains(rules4, "0:\tfrom all lookup local") && !strings.Contains(rules4, "100:\tfrom all lookup local") {
		t.Errorf("local rule not moved:\n%s", rules4)
	}
	if strings.HasPrefix(rules4, "0:") {
		t.Errorf("a rule is still at priority 0, ahead of the fwmark rules:\n%s", rules4)
	}
	if out := ns.MustRun("ip", "route", "show", "table", "26486"); !strings.Contains(out, "default dev govs-fwm0") {
		t.Errorf("table 26486: %q", out)
	}
	if out := ns.MustRun("tc", "filter", "show", "dev", RouteDevice, "egress"); !strings.Contains(out, ProgramName) {
		t.Errorf("no tc egress program on %s:\n%s", RouteDevice, out)
	}
	if out := ns.MustRun("ip", "link", "show", RouteDevice); !strings.Contains(out, "NOARP") || !strings.Contains(out, "UP") {
		t.Errorf("%s: %s", RouteDevice, out)
	}
	if out := ns.MustRun("ethtool", "-k", RouteDevice); !strings.Contains(out, "tx-checksumming: off") {
		t.Errorf("%s keeps tx checksum offload:\n%s", RouteDevice, out)
	}

	do(func() error { _, err := Plumbing{}.Ensure(marks[:1]); return err })
	if rules := ns.MustRun("ip", "rule"); strings.Contains(rules, "fwmark 0x7") {
		t.Errorf("mark 7's rule survived:\n%s", rules)
	}
	if rules := ns.MustRun("ip", "-6", "rule"); strings.Contains(rules, "lookup 26486") {
		t.Errorf("the IPv6 rule survived:\n%s", rules)
	}

	do(Plumbing{}.Remove)
	if rules := ns.MustRun("ip", "rule") + ns.MustRun("ip", "-6", "rule"); strings.Contains(rules, "26486") {
		t.Errorf("rules left after Remove:\n%s", rules)
	}
	if _, err := ns.Run("ip", "link", "show", BalanceDevice); err == nil {
		t.Errorf("%s left after Remove", BalanceDevice)
	}
}

// TestPrivilegedEnsureNeedsForwarding: with forwarding off nothing is set up.
func TestPrivilegedEnsureNeedsForwarding(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.NewNS(t, "fwm")
	ns.Sysctl("net.ipv4.ip_forward", "0")
	err := ns.Do(func() error { _, err := Plumbing{}.Ensure([]dpstate.Fwmark{{Mark: 1}}); return err })
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.ip_forward=1") {
		t.Fatalf("Ensure with forwarding off: %v", err)
	}
	if _, err := ns.Run("ip", "link", "show", BalanceDevice); err == nil {
		t.Errorf("%s created although Ensure failed", BalanceDevice)
	}
}
