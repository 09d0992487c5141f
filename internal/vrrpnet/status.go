package vrrpnet

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/vrrp"
)

// Status is a live view of the runner's instances for `govs list`, metrics
// and the control socket. Run updates it after every event; readers may call
// Snapshot from any goroutine. The zero value is ready to use.
type Status struct {
	mu    sync.Mutex
	insts []status.VRRPInstance
	stats map[string]vrrp.Stats
}

// Snapshot returns a copy of every instance's state, in configuration order.
func (s *Status) Snapshot() []status.VRRPInstance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]status.VRRPInstance, len(s.insts))
	for i, in := range s.insts {
		in.VIPs = append([]netip.Addr(nil), in.VIPs...)
		out[i] = in
	}
	return out
}

// Stats returns the advert and transition counters of an instance.
func (s *Status) Stats(instance string) (vrrp.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.stats[instance]
	return st, ok
}

func (s *Status) update(insts []*instance) {
	snap := make([]status.VRRPInstance, 0, len(insts))
	stats := make(map[string]vrrp.Stats, len(insts))
	for _, in := range insts {
		m := in.m
		v := status.VRRPInstance{Name: in.cfg.Name, Interface: in.cfg.Interface, VRID: in.cfg.VRID,
			State: m.State().String(), Priority: in.cfg.Priority, EffectivePriority: m.Priority(), VIPs: in.cfg.Addresses()}
		switch m.State() {
		case vrrp.StateMaster:
			v.Master = m.Primary()
		case vrrp.StateBackup:
			v.Master = m.MasterAddr()
		}
		st := m.Stats()
		v.Stats = status.VRRPStats{AdvertsSent: st.AdvertsSent, AdvertsReceived: st.AdvertsReceived,
			BecameMaster: st.BecomeMaster, ReleasedMaster: st.ReleaseMaster,
			PriorityZeroSent: st.PriorityZeroSent, PriorityZeroReceived: st.PriorityZeroReceived}
		for reason, n := range st.Dropped {
			if v.Stats.Dropped == nil {
				v.Stats.Dropped = map[string]uint64{}
			}
			v.Stats.Dropped[reasonLabel(reason)] += n
		}
		snap = append(snap, v)
		stats[in.cfg.Name] = st
	}
	s.mu.Lock()
	s.insts, s.stats = snap, stats
	s.mu.Unlock()
}

// reasonLabel turns a drop reason ("decode: bad checksum") into a metric
// label value (decode_bad_checksum).
func reasonLabel(reason string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(reason) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
			continue
		}
		if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimSuffix(b.String(), "_")
}
