package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// Connection-table timeouts used when Options leaves them zero; they
// match the BPF program's defaults (bpf/consts.h).
const (
	defaultTCPTimeout      = 900 * time.Second
	defaultTCPFinTimeout   = 120 * time.Second
	defaultUDPTimeout      = 300 * time.Second
	defaultFragmentTimeout = 30 * time.Second
	// embryoTimeout is how long an embryonic flow (a SYN, no handshake
	// completed) lives: EMBRYO_TIMEOUT_NS, IPVS's SYN_RECV timeout.
	embryoTimeout = 60 * time.Second
)

// ExpireConnections removes connection-table entries idle past their
// timeout and resynchronises the active-connection counts that lc and wlc
// use with the entries that remain (entries the LRU table evicted are
// found this way too). The daemon calls it periodically; it returns how
// many entries it removed.
func (d *Dataplane) ExpireConnections() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now, err := d.monotonicNanos()
	if err != nil {
		return 0, err
	}
	live := map[uint32]int64{}
	var stale, staleEmbryos []balancerFlow
	err = d.eachConn(func(k *balancerFlow, v *balancerConn, embryo bool) {
		if now > v.LastNs && now-v.LastNs > d.connTimeout(k.Proto, v.Flags) {
			if embryo {
				staleEmbryos = append(staleEmbryos, *k)
			} else {
				stale = append(stale, *k)
			}
			return
		}
		if v.Flags&connFlagActive != 0 {
			live[v.RealId]++
		}
	})
	if err != nil {
		return 0, err
	}
	for _, t := range []struct {
		m     *ebpf.Map
		flows []balancerFlow
	}{{d.objs.Conns, stale}, {d.objs.Embryos, staleEmbryos}} {
		for i := range t.flows {
			if err := t.m.Delete(&t.flows[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return 0, fmt.Errorf("delete expired connection: %w", err)
			}
		}
	}
	if err := d.expireFNAT(now); err != nil {
		return 0, err
	}
	for id := range d.realsSet {
		var active int64
		if err := d.objs.ActiveConns.Lookup(id, &active); err != nil {
			return 0, fmt.Errorf("read active connections of real %d: %w", id, err)
		}
		if err := d.objs.ExpiredConns.Put(id, active-live[id]); err != nil {
			return 0, fmt.Errorf("write expired connections of real %d: %w", id, err)
		}
	}
	return len(stale) + len(staleEmbryos), nil
}

// expireFNAT frees the local ports of FullNAT connections past their
// timeout: fnat_backs is not an LRU, so what the program does not take over
// when it meets a port again would stay. Each one's forward entry goes
// with it (its key is the client's flow the entry records).
func (d *Dataplane) expireFNAT(now uint64) error {
	var k balancerFlow
	var v balancerFnatBack
	var stale []balancerFlow
	var fwds []balancerFlow
	it := d.objs.FnatBacks.Iterate()
	for it.Next(&k, &v) {
		if now > v.LastNs && now-v.LastNs > d.connTimeout(k.Proto, v.Flags) {
			stale = append(stale, k)
			fwds = append(fwds, balancerFlow{Src: v.Caddr, Dst: v.Vaddr, Sport: v.Cport, Dport: v.Vport, Proto: k.Proto, Family: k.Family})
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read FullNAT ports: %w", err)
	}
	for i := range stale {
		if err := d.objs.FnatBacks.Delete(&stale[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("free expired FullNAT port: %w", err)
		}
		var fw balancerFnatFwd
		// Only if it still points at this port: the flow may have a
		// newer one.
		if d.objs.FnatFwds.Lookup(&fwds[i], &fw) == nil && fw.Lport == stale[i].Dport && fw.Laddr == stale[i].Dst {
			if err := d.objs.FnatFwds.Delete(&fwds[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("delete expired FullNAT flow: %w", err)
			}
		}
	}
	return nil
}

func (d *Dataplane) connTimeout(proto uint8, flags uint32) uint64 {
	idle := d.timeouts()
	t := idle.UDP
	if proto == uint8(TCP) && flags&connFlagEmbryo != 0 {
		return uint64(embryoTimeout.Nanoseconds())
	}
	if proto == uint8(TCP) {
		t = idle.TCP
		if flags&connFlagFin != 0 {
			t = idle.TCPFin
		}
	}
	return uint64(t.Nanoseconds())
}

// monotonicNanos reads the program's clock (bpf_ktime_get_ns) by running
// govs_clock once. CLOCK_MONOTONIC is the same clock on the host, but a
// time namespace offsets it for its processes and not for BPF: compared
// with it, the connection table's timestamps would be off by the offset
// (every entry expired, or none), under a container runtime that gives
// govs a time namespace.
func (d *Dataplane) monotonicNanos() (uint64, error) {
	frame := make([]byte, 64)
	opts := &ebpf.RunOptions{Data: frame, DataOut: frame}
	if _, err := d.objs.GovsClock.Run(opts); err != nil {
		return 0, fmt.Errorf("read the data plane's clock: %w", err)
	}
	if len(opts.DataOut) < 8 {
		return 0, errors.New("read the data plane's clock: short answer")
	}
	return binary.NativeEndian.Uint64(opts.DataOut), nil
}
