package realserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
)

// Host observes and changes the network state of one host (or namespace).
type Host interface {
	// Observe reads the given devices (their state and addresses) and sysctls.
	Observe(devs, sysctls []string) (Observed, error)
	// ReadSysctl returns a sysctl's current value.
	ReadSysctl(key string) (string, error)
	// Apply makes one change.
	Apply(a Action) error
}

// Manager runs Up, Down and Status against a Host, keeping a Record at StatePath.
type Manager struct {
	Host      Host
	StatePath string
	Log       *slog.Logger
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

func observeSpec(h Host, spec Spec, extraKeys ...string) (Observed, error) {
	keys := make([]string, 0, len(spec.Sysctls)+len(extraKeys))
	for _, s := range spec.Sysctls {
		keys = append(keys, s.Key)
	}
	for _, k := range extraKeys {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return h.Observe(spec.Devices(), keys)
}

// Up configures the host for vips (added to those already recorded) and
// returns the actions it took; none when the host was ready already.
func (m *Manager) Up(vips []VIP) ([]Action, error) {
	if len(vips) == 0 {
		return nil, errors.New("realserver up: no VIP given")
	}
	if err := ValidateVIPs(vips); err != nil {
		return nil, fmt.Errorf("realserver up: %w", err)
	}
	rec, err := LoadRecord(m.StatePath)
	if err != nil {
		return nil, fmt.Errorf("realserver up: %w", err)
	}
	if rec == nil {
		rec = &Record{}
	}
	for _, v := range vips {
		if i := slices.IndexFunc(rec.VIPs, func(r VIP) bool { return r.Addr == v.Addr }); i >= 0 && rec.VIPs[i].Mode != v.Mode {
			return nil, fmt.Errorf("realserver up: VIP %s is configured in mode %s; run down first", v.Addr, rec.VIPs[i].Mode)
		}
	}
	before := rec.clone()
	all := slices.Clone(rec.VIPs)
	for _, v := range vips {
		if !slices.Contains(all, v) {
			all = append(all, v)
		}
	}
	spec := Desired(all)
	obs, err := observeSpec(m.Host, spec)
	if err != nil {
		return nil, fmt.Errorf("realserver up: %w", err)
	}
	plan := Plan(spec, obs)
	next := rec.clone()
	next.VIPs = all
	if next.Previous == nil {
		next.Previous = map[string]string{}
	}
	var done []Action
	var applyErr error
	for _, a := range plan {
		if a.Kind == SetSysctl {
			if _, seen := next.Previous[a.Setting.Key]; !seen {
				prev, err := m.Host.ReadSysctl(a.Setting.Key)
				if err != nil {
					applyErr = fmt.Errorf("realserver up: %w", err)
					break
				}
				next.Previous[a.Setting.Key] = prev
			}
		}
		if err := m.Host.Apply(a); err != nil {
			applyErr = fmt.Errorf("realserver up: %s: %w", a, err)
			break
		}
		m.log().Info("realserver up", "action", a.String())
		if a.Kind == LinkUp && !slices.Contains(next.LinksUp, a.Tunnel.Name) {
			next.LinksUp = append(next.LinksUp, a.Tunnel.Name)
		}
		done = append(done, a)
	}
	// Saved also after a failure, so that Down can undo the part that was done.
	if len(done) > 0 || !slices.Equal(before.VIPs, next.VIPs) {
		if err := SaveRecord(m.StatePath, next); err != nil {
			return done, errors.Join(applyErr, fmt.Errorf("realserver up: %w", err))
		}
	}
	return done, applyErr
}

// Down undoes Up for addrs (all recorded VIPs when addrs is empty). mode is
// used only for addresses the record does not know (or when it is lost).
func (m *Manager) Down(addrs []netip.Addr, mode Mode) ([]Action, error) {
	rec, err := LoadRecord(m.StatePath)
	if err != nil {
		return nil, fmt.Errorf("realserver down: %w", err)
	}
	remove := make([]VIP, 0, len(addrs))
	for _, a := range addrs {
		remove = append(remove, VIP{Addr: a, Mode: mode})
	}
	if err := ValidateVIPs(remove); err != nil {
		return nil, fmt.Errorf("realserver down: %w", err)
	}
	if rec == nil && len(remove) == 0 {
		return nil, fmt.Errorf("realserver down: no state file at %s; name the VIPs with --vip", m.StatePath)
	}
	// Observe everything either side might touch: the removed VIPs' spec and
	// the record's.
	var all []VIP
	if rec != nil {
		all = append(all, rec.VIPs...)
	}
	all = append(all, remove...)
	var extra []string
	if rec != nil {
		extra = sortedKeys(rec.Previous)
	}
	spec := Desired(all)
	if rec != nil {
		for _, l := range rec.LinksUp {
			if !slices.ContainsFunc(spec.Tunnels, func(t Tunnel) bool { return t.Name == l }) {
				spec.Tunnels = append(spec.Tunnels, Tunnel{Name: l})
			}
		}
	}
	obs, err := observeSpec(m.Host, spec, extra...)
	if err != nil {
		return nil, fmt.Errorf("realserver down: %w", err)
	}
	plan, next := PlanDown(rec, remove, obs)
	var done []Action
	for _, a := range plan {
		if err := m.Host.Apply(a); err != nil {
			return done, fmt.Errorf("realserver down: %s: %w", a, err)
		}
		m.log().Info("realserver down", "action", a.String())
		done = append(done, a)
	}
	if err := SaveRecord(m.StatePath, next); err != nil {
		return done, fmt.Errorf("realserver down: %w", err)
	}
	return done, nil
}

// Status checks whether the host is ready for vips (the recorded VIPs when
// vips is empty).
func (m *Manager) Status(vips []VIP) ([]VIPStatus, []Item, error) {
	if len(vips) == 0 {
		rec, err := LoadRecord(m.StatePath)
		if err != nil {
			return nil, nil, fmt.Errorf("realserver status: %w", err)
		}
		if rec == nil || len(rec.VIPs) == 0 {
			return nil, nil, fmt.Errorf("realserver status: no VIP given and none recorded in %s", m.StatePath)
		}
		vips = rec.VIPs
	}
	if err := ValidateVIPs(vips); err != nil {
		return nil, nil, fmt.Errorf("realserver status: %w", err)
	}
	spec := Desired(vips)
	obs, err := observeSpec(m.Host, spec)
	if err != nil {
		return nil, nil, fmt.Errorf("realserver status: %w", err)
	}
	var per []VIPStatus
	for _, v := range vips {
		per = append(per, VIPStatus{VIP: v, Items: Check(Desired([]VIP{v}), obs)})
	}
	return per, Check(spec, obs), nil
}

// VIPStatus is the readiness of one VIP: its address, device and settings.
type VIPStatus struct {
	VIP   VIP
	Items []Item
}
