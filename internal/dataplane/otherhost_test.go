package dataplane

import (
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/govs/govs/internal/sched"
)

// xdpMD mirrors struct xdp_md, the context BPF_PROG_TEST_RUN accepts.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// TestOtherHostFramesPassed: a frame unicast to another MAC reaches XDP on a
// veth or a promiscuous NIC, but is not for this director; it must go to the
// kernel (which drops it) rather than be balanced, as IPVS would never see it.
// A broadcast or multicast frame reaches every director on the segment, so
// none may balance it (each would send the flow to a real server).
func TestOtherHostFramesPassed(t *testing.T) {
	d := openDP(t, state(svc4(sched.RoundRobin, 80, reals4(1)...)))
	// lo (ifindex 1) stands for the attached interface: test runs take
	// their ingress interface from the context. The MAC is found in its
	// array slot (the fast path), then, with the slot held by another
	// interface (ifindex 257 shares it), in the hash map.
	const ifindex = 1
	var own balancerIfMac
	copy(own.Addr[:], directorMAC)
	if err := d.objs.IfMacs.Put(uint32(ifindex), own); err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{"slot", "hash"} {
		switch via {
		case "slot":
			// Only the slot knows the MAC.
			if err := d.objs.IfMacs.Delete(uint32(ifindex)); err != nil {
				t.Fatal(err)
			}
			if err := d.setMACSlot(ifindex, directorMAC, 0); err != nil {
				t.Fatal(err)
			}
		case "hash":
			if err := d.objs.IfMacs.Put(uint32(ifindex), own); err != nil {
				t.Fatal(err)
			}
			other := balancerIfMacSlot{Ifindex: ifindex + ifMACSlots}
			copy(other.Addr[:], net.HardwareAddr{0x02, 0xee, 0, 0, 0, 0x01})
			if err := d.objs.IfMacSlots.Put(uint32(ifindex), other); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name string
			dst  net.HardwareAddr
			want uint32
		}{
			{"to the director", directorMAC, 3 /* XDP_TX */},
			{"to another host", net.HardwareAddr{0x02, 0xd2, 0, 0, 0, 0x02}, 2 /* XDP_PASS */},
			{"broadcast", net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2},
			{"multicast", net.HardwareAddr{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}, 2},
		}
		for _, tt := range tests {
			t.Run(via+"/"+tt.name, func(t *testing.T) {
				f := frame(t, tcp4(40000, 80))
				copy(f[0:6], tt.dst)
				opts := &ebpf.RunOptions{
					Data:    f,
					DataOut: make([]byte, len(f)+256),
					Context: xdpMD{DataEnd: uint32(len(f)), IngressIfindex: ifindex},
				}
				got, err := d.objs.GovsXdp.Run(opts)
				if err != nil {
					t.Fatalf("run program: %v", err)
				}
				if got != tt.want {
					t.Fatalf("action %s, want %s", actionNames[got], actionNames[tt.want])
				}
			})
		}
	}
	st, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Global.PassOtherHost != 6 {
		t.Errorf("PassOtherHost = %d, want 6", st.Global.PassOtherHost)
	}
}
