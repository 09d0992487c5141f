package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// layoutVersion names what the pinned maps' contents mean. A data plane
// whose layout differs from the pinned one does not adopt the maps: it
// migrates their connection and persistence tables by BTF member name
// (migrate.go) and drops the rest, rather than misread them. Change it
// whenever a map's key or value changes meaning, even if its size stays
// the same (the kernel's compatibility check covers sizes), and rename a
// member whose meaning changes.
const layoutVersion = 3 // 3: reals is an array

// layoutDir is where this build's layout's pins live under pinPath.
func layoutDir(pinPath string) string { return layoutDirOf(pinPath, layoutVersion) }

func layoutDirOf(pinPath string, version int) string {
	return filepath.Join(pinPath, "layout-"+strconv.Itoa(version))
}

// layout is this data plane's layout version: layoutVersion, unless a test
// plays a build of another layout (Options.layout).
func (d *Dataplane) layout() int {
	if d.opts.layout != 0 {
		return d.opts.layout
	}
	return layoutVersion
}

// layoutDir is where this data plane's pins live.
func (d *Dataplane) layoutDir() string { return layoutDirOf(d.opts.PinPath, d.layout()) }

// preparePins makes the pin directory of this layout and removes those of
// other layouts. It reports whether pinned maps of this layout exist.
func (d *Dataplane) preparePins(pinPath string) (bool, error) {
	entries, err := os.ReadDir(pinPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read pin directory: %w", err)
	}
	own := filepath.Base(d.layoutDir())
	for _, e := range entries {
		if e.Name() == own {
			continue
		}
		old := filepath.Join(pinPath, e.Name())
		// One old layout is migrated (the newest one, if several were
		// left); the others are dropped.
		if d.migration == nil && e.IsDir() && strings.HasPrefix(e.Name(), "layout-") {
			m, err := openMigration(old)
			if err != nil {
				d.log.Warn("pinned data plane state of another layout cannot be migrated: its connections are lost", "path", old, "layout", d.layout(), "err", err)
			} else {
				d.migration, d.migrated = m, true
				d.log.Info("pinned data plane state of another layout: migrating its connection and persistence tables", "path", old, "layout", d.layout(), "xdp_links", len(m.links))
			}
		} else {
			d.log.Warn("dropping pinned data plane state of another layout: its connections are lost", "path", old, "layout", d.layout())
		}
		// What migration uses stays open; the pins go.
		if err := os.RemoveAll(old); err != nil {
			return false, fmt.Errorf("remove old pinned state: %w", err)
		}
	}
	dir := d.layoutDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("make pin directory: %w", err)
	}
	_, err = os.Stat(filepath.Join(dir, "services"))
	return err == nil, nil
}

// linkPin is where the XDP link of an interface is pinned.
func (d *Dataplane) linkPin(ifindex int) string {
	return filepath.Join(d.layoutDir(), "link-"+strconv.Itoa(ifindex))
}

// adoptLink takes over the pinned XDP link of ifindex, if there is one,
// and points it at this data plane's program: frames keep flowing through
// the swap.
func (d *Dataplane) adoptLink(ifindex int) (link.Link, bool, error) {
	if d.opts.PinPath == "" {
		return nil, false, nil
	}
	if l, ok, err := d.takeOldLink(ifindex); ok || err != nil {
		return l, ok, err
	}
	l, err := link.LoadPinnedLink(d.linkPin(ifindex), nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load pinned link: %w", err)
	}
	if err := l.Update(d.objs.GovsXdp); err != nil {
		_ = l.Close()
		return nil, false, fmt.Errorf("update pinned link to the new program: %w", err)
	}
	return l, true, nil
}

// Adopted reports whether Open took over pinned state (maps and the
// connections in them) left by an earlier govs, of this layout or, by
// migration, of another.
func (d *Dataplane) Adopted() bool { return d.adopted || d.migrated }

// AdoptedReals lists the real servers of adopted state with where their
// frames went (MAC, egress interface), so a restarted director can keep
// forwarding to them before its neighbour table answers.
func (d *Dataplane) AdoptedReals() []Real {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.adopted {
		if d.migration != nil {
			return d.migration.reals(d.log)
		}
		return nil
	}
	var out []Real
	for key, id := range d.ids.real {
		e, ok := d.realsSet[id]
		if !ok {
			continue
		}
		out = append(out, Real{Addr: key.addr, MAC: net.HardwareAddr(slices.Clone(e.DstMac[:])), Ifindex: int(e.Ifindex), Weight: e.Weight})
	}
	return out
}

// Release closes this process's handles but leaves the pinned maps and
// XDP links in place, so forwarding goes on with the last applied state
// until a later Open adopts it (a restart or an upgrade). Without a
// PinPath it is Close.
func (d *Dataplane) Release() error {
	if d.opts.PinPath == "" {
		return d.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	d.closeMigration()
	for ifi, l := range d.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release xdp link of ifindex %d: %w", ifi, err))
		}
		delete(d.links, ifi)
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close balancer objects: %w", err))
	}
	return errors.Join(errs...)
}

// RemovePinned removes everything pinned under pinPath: XDP links detach
// and the maps go once no program uses them (`govs cleanup`).
func RemovePinned(pinPath string) error {
	if err := os.RemoveAll(pinPath); err != nil {
		return fmt.Errorf("remove pinned data plane: %w", err)
	}
	return nil
}

// reconstruct rebuilds the bookkeeping of the adopted maps: which id each
// service and real server has, each service's live slot and content, the
// real entries and devmap ports. The next Apply then changes only what
// differs, and established connections keep their real servers' ids.
func (d *Dataplane) reconstruct() error {
	reals := map[uint32]balancerReal{}
	var rid uint32
	var re balancerReal
	it := d.objs.Reals.Iterate()
	for it.Next(&rid, &re) {
		if re.Addr != ([16]byte{}) || re.Ifindex != 0 {
			reals[rid] = re
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read real servers: %w", err)
	}
	used := map[uint32]bool{}
	var key balancerSvcKey
	var ref balancerSvcRef
	sit := d.objs.Services.Iterate()
	for sit.Next(&key, &ref) {
		slot := ref.Id*2 + ref.Gen
		var meta balancerSvcMeta
		if err := d.objs.SvcMetas.Lookup(slot, &meta); err != nil {
			return fmt.Errorf("read service %d metadata: %w", ref.Id, err)
		}
		table, err := d.readTable(slot, meta.TableLen)
		if err != nil {
			return err
		}
		sk := serviceKeyOf(key)
		d.applied[ref.Id] = appliedService{key: key, gen: ref.Gen, meta: meta, table: table, name: fmt.Sprintf("%s:%d/%s", sk.Addr, sk.Port, sk.Proto)}
		d.ids.svc[sk] = ref.Id
		ids := table
		for i := uint32(0); i < min(meta.Nreals, uint32(len(meta.Reals))); i++ {
			ids = append(ids, meta.Reals[i].Id)
		}
		for _, id := range ids {
			if e, ok := reals[id]; ok && id != 0 {
				v6 := sk.Addr.Is6() // DR: the VIP's family
				if e.Flags&realFlagTUN != 0 {
					v6 = e.Flags&realFlagV6 != 0
				}
				d.ids.real[realKey{svc: sk, addr: addrOf(e.Addr, familyOf(v6))}] = id
				used[id] = true
			}
		}
	}
	if err := sit.Err(); err != nil {
		return fmt.Errorf("read services: %w", err)
	}
	d.ids.last = map[uint32]balancerReal{}
	for id, e := range reals {
		d.realsSet[id] = e
		d.ids.last[id] = e
		if !used[id] {
			// Connections may still use it: keep it, recycle it last.
			v6 := [12]byte(e.Addr[4:]) != [12]byte{}
			d.ids.retired = append(d.ids.retired, retiredReal{key: realKey{addr: addrOf(e.Addr, familyOf(v6))}, id: id, entry: e})
		}
	}
	var port, val uint32
	pit := d.objs.TxPorts.Iterate()
	for pit.Next(&port, &val) {
		d.ports[port] = true
	}
	if err := pit.Err(); err != nil {
		return fmt.Errorf("read devmap: %w", err)
	}
	return nil
}

// readTable reads the first n entries of a slot's lookup table.
func (d *Dataplane) readTable(slot, n uint32) ([]uint32, error) {
	if n == 0 {
		return nil, nil
	}
	var inner *ebpf.Map
	if err := d.objs.Tables.Lookup(slot, &inner); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read table of slot %d: %w", slot, err)
	}
	defer inner.Close()
	out := make([]uint32, n)
	for i := range out {
		if err := inner.Lookup(uint32(i), &out[i]); err != nil {
			return nil, fmt.Errorf("read table of slot %d entry %d: %w", slot, i, err)
		}
	}
	return out, nil
}

// serviceKeyOf is svcKeyOf's inverse.
func serviceKeyOf(k balancerSvcKey) serviceKey {
	if k.Proto == 0 {
		unspec := netip.IPv4Unspecified()
		if k.Family == 6 {
			unspec = netip.IPv6Unspecified()
		}
		return serviceKey{Addr: unspec, Fwmark: binary.BigEndian.Uint32(k.Addr[:4])}
	}
	return serviceKey{Addr: addrOf(k.Addr, k.Family), Port: htons(k.Port), Proto: Protocol(k.Proto)}
}

// familyOf is family's value for an address that is IPv6 or not.
func familyOf(v6 bool) uint8 {
	if v6 {
		return 6
	}
	return 4
}
