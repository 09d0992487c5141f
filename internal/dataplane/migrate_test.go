package dataplane

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/sched"
	"github.com/vishvananda/netlink"
)

// layoutField is one member of a hand-made old-layout struct.
type layoutField struct {
	name string
	typ  btf.Type
	off  uint32 // bytes
}

func layoutStruct(name string, size uint32, fields ...layoutField) *btf.Struct {
	st := &btf.Struct{Name: name, Size: size}
	for _, f := range fields {
		st.Members = append(st.Members, btf.Member{Name: f.name, Type: f.typ, Offset: btf.Bits(f.off * 8)})
	}
	return st
}

// TestMigrationReadsAChangedLayout: pins of a layout whose structs differ
// from this build's (members reordered, one added, sizes changed) are read
// by member name. Flows keep their real servers through the id
// translation, and entries naming a real server the old layout does not
// know are dropped.
func TestMigrationReadsAChangedLayout(t *testing.T) {
	pin := bpffs(t)
	dir := filepath.Join(pin, "layout-0")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	u8 := &btf.Int{Name: "__u8", Size: 1}
	u16 := &btf.Int{Name: "__u16", Size: 2}
	u32 := &btf.Int{Name: "__u32", Size: 4}
	u64 := &btf.Int{Name: "__u64", Size: 8}
	a16 := &btf.Array{Index: u32, Type: u8, Nelems: 16}
	a6 := &btf.Array{Index: u32, Type: u8, Nelems: 6}
	svcKey := layoutStruct("svc_key", 20, layoutField{"family", u8, 0}, layoutField{"proto", u8, 1}, layoutField{"port", u16, 2}, layoutField{"addr", a16, 4})
	svcRef := layoutStruct("svc_ref", 12, layoutField{"gen", u32, 0}, layoutField{"id", u32, 4}, layoutField{"epoch", u32, 8})
	real := layoutStruct("real", 36, layoutField{"weight", u32, 0}, layoutField{"flags", u32, 4}, layoutField{"ifindex", u32, 8}, layoutField{"addr", a16, 12}, layoutField{"dst_mac", a6, 28})
	flow := layoutStruct("flow", 40, layoutField{"family", u8, 0}, layoutField{"proto", u8, 1}, layoutField{"sport", u16, 2}, layoutField{"dport", u16, 4}, layoutField{"src", a16, 8}, layoutField{"dst", a16, 24})
	conn := layoutStruct("conn", 24, layoutField{"last_ns", u64, 0}, layoutField{"real_id", u32, 8}, layoutField{"svc_id", u32, 12}, layoutField{"flags", u32, 16}, layoutField{"hint", u32, 20})
	pkey := layoutStruct("persist_key", 24, layoutField{"family", u32, 0}, layoutField{"svc_id", u32, 4}, layoutField{"addr", a16, 8})
	pval := layoutStruct("persist_val", 16, layoutField{"last_ns", u64, 0}, layoutField{"real_id", u32, 8})
	newMap := func(name string, typ ebpf.MapType, key btf.Type, ksize uint32, val *btf.Struct) *ebpf.Map {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: typ, KeySize: ksize, ValueSize: val.Size, MaxEntries: 64, Key: key, Value: val})
		if err != nil {
			t.Fatalf("make old map %s: %v", name, err)
		}
		t.Cleanup(func() { m.Close() })
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		return m
	}
	put := func(m *ebpf.Map, k, v []byte) {
		t.Helper()
		if err := m.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	clock := openDP(t, state())
	mono := monotonicBefore(t, clock, 0)

	services := newMap("services", ebpf.Hash, svcKey, 20, svcRef)
	k := make([]byte, 20)
	k[0], k[1] = 4, byte(TCP)
	binary.BigEndian.PutUint16(k[2:], 80)
	copy(k[4:], vip4.AsSlice())
	v := make([]byte, 12)
	binary.NativeEndian.PutUint32(v[4:], 3) // id 3
	put(services, k, v)

	reals := newMap("reals", ebpf.Array, u32, 4, real)
	for id, r := range map[uint32]Real{5: real4(2, 1), 6: real4(3, 1)} {
		v := make([]byte, 36)
		binary.NativeEndian.PutUint32(v[0:], 1)
		copy(v[12:], r.Addr.AsSlice())
		copy(v[28:], r.MAC)
		kb := binary.NativeEndian.AppendUint32(nil, id)
		put(reals, kb, v)
	}

	conns := newMap("conns", ebpf.LRUHash, flow, 40, conn)
	const flows = 20
	want := make([]int, flows)
	for i := range flows {
		p := flowN(i, 80)
		k := make([]byte, 40)
		k[0], k[1] = 4, byte(TCP)
		binary.BigEndian.PutUint16(k[2:], p.sport)
		binary.BigEndian.PutUint16(k[4:], p.dport)
		copy(k[8:], p.src.AsSlice())
		copy(k[24:], p.dst.AsSlice())
		v := make([]byte, 24)
		binary.NativeEndian.PutUint64(v[0:], mono)
		rid, real := uint32(5), 2
		if i%2 == 1 {
			rid, real = 6, 3
		}
		if i == flows-1 {
			rid = 42 // no such real server: dropped
		}
		want[i] = real
		binary.NativeEndian.PutUint32(v[8:], rid)
		binary.NativeEndian.PutUint32(v[12:], 3)
		put(conns, k, v)
	}
	newMap("persist", ebpf.LRUHash, pkey, 24, pval)

	d, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if got := len(d.AdoptedReals()); got != 2 {
		t.Errorf("%d real servers read from the old layout, want 2", got)
	}
	if err := d.Apply(state(svc4(sched.RoundRobin, 80, real4(1, 1), real4(2, 1), real4(3, 1)))); err != nil {
		t.Fatal(err)
	}
	got, err := d.Connections()
	if err != nil || len(got) != flows-1 {
		t.Fatalf("%d connections migrated (%v), want %d", len(got), err, flows-1)
	}
	for i, r := range sendFlows(t, d, flows-1, 80) {
		if r != want[i] {
			t.Errorf("flow %d went to real %d, the old table says %d", i, r, want[i])
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("old layout's pins left: %v", err)
	}
}

// TestPrivilegedMigrationTakesOverTheXDPLink: the old layout's XDP link
// stays attached (the old program forwarding) until the new build attaches
// the same interface: then that link is switched to the new program and
// pinned under the new layout, with no moment without XDP.
func TestPrivilegedMigrationTakesOverTheXDPLink(t *testing.T) {
	netnstest.RequireRoot(t)
	pin := bpffs(t)
	a := netnstest.NewNS(t, "mga")
	b := netnstest.NewNS(t, "mgb")
	netnstest.Veth(t, a, "eth0", b, "eth0")
	var ifindex int
	if err := a.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	old, err := Open(Options{PinPath: pin})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Do(func() error { return old.Attach(ifindex, Generic) }); err != nil {
		t.Fatal(err)
	}
	if err := old.Release(); err != nil {
		t.Fatal(err)
	}
	progID := func() ebpf.ProgramID {
		t.Helper()
		var id ebpf.ProgramID
		if err := a.Do(func() error {
			l, err := netlink.LinkByIndex(ifindex)
			if err != nil {
				return err
			}
			if x := l.Attrs().Xdp; x != nil && x.Attached {
				id = ebpf.ProgramID(x.ProgId)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	before := progID()
	if before == 0 {
		t.Fatal("no XDP program attached after Release")
	}

	d, err := Open(Options{PinPath: pin, layout: layoutVersion + 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if got := progID(); got != before {
		t.Fatalf("XDP program changed to %d before the new build attached (old %d)", got, before)
	}
	if err := d.Apply(state(svc4(sched.RoundRobin, 80, real4(1, 1)))); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(func() error { return d.Attach(ifindex, Generic) }); err != nil {
		t.Fatal(err)
	}
	info, err := d.program().Info()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := info.ID()
	if got := progID(); got != want {
		t.Errorf("XDP program %d after the takeover, want the new build's %d (old %d)", got, want, before)
	}
	if _, err := os.Stat(filepath.Join(d.layoutDir(), "link-"+strconv.Itoa(ifindex))); err != nil {
		t.Errorf("taken-over link not pinned under the new layout: %v", err)
	}
}
