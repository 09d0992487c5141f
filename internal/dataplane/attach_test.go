package dataplane

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
)

// TestPrivilegedAttachAndRedirect attaches in every mode to a veth in a
// fresh namespace, and checks that a real behind another interface is
// reached through the devmap (XDP_REDIRECT).
func TestPrivilegedAttachAndRedirect(t *testing.T) {
	netnstest.RequireRoot(t)
	a := netnstest.NewNS(t, "dpa")
	b := netnstest.NewNS(t, "dpb")
	netnstest.Veth(t, a, "eth0", b, "eth0")
	netnstest.Veth(t, a, "eth1", b, "eth1")
	d, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	for _, tc := range []struct {
		mode AttachMode
		want string
	}{{Native, "xdp "}, {Generic, "xdpgeneric"}, {Auto, "xdp "}} {
		var ifi *net.Interface
		err := a.Do(func() (err error) {
			if ifi, err = net.InterfaceByName("eth0"); err != nil {
				return err
			}
			return d.Attach(ifi.Index, tc.mode)
		})
		if err != nil {
			t.Fatalf("attach %s: %v", tc.mode, err)
		}
		if out := a.MustRun("ip", "link", "show", "eth0"); !strings.Contains(out, tc.want) {
			t.Errorf("attach %s: ip link shows %q", tc.mode, out)
		}
		if err := d.Attach(ifi.Index, tc.mode); err == nil {
			t.Errorf("second attach %s succeeded", tc.mode)
		}
		if err := d.Detach(ifi.Index); err != nil {
			t.Fatalf("detach %s: %v", tc.mode, err)
		}
		if out := a.MustRun("ip", "link", "show", "eth0"); strings.Contains(out, "xdp") {
			t.Errorf("after detach: %q", out)
		}
	}

	err = a.Do(func() error {
		eth1, err := net.InterfaceByName("eth1")
		if err != nil {
			return err
		}
		r := real4(1, 1)
		r.Ifindex = eth1.Index
		if err := d.Apply(state(svc4(sched.Maglev, 80, r))); err != nil {
			return err
		}
		in := frame(t, tcp4(1000, 80))
		act, out := runOut(t, d.program(), in)
		want := drOut(in, 1)
		copy(want[6:12], eth1.HardwareAddr) // source: the egress interface's MAC
		if act != xdpRedirect || !bytes.Equal(out, want) {
			t.Errorf("action %s, want REDIRECT\n got % x\nwant % x", actionNames[act], out, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Close detaches what is still attached.
	err = a.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return d.Attach(ifi.Index, Auto)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if out := a.MustRun("ip", "link", "show", "eth0"); strings.Contains(out, "xdp") {
		t.Errorf("after Close: %q", out)
	}
}
