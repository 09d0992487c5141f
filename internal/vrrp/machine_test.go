package vrrp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ourIP  = netip.MustParseAddr("198.18.0.11")
	peerIP = netip.MustParseAddr("198.18.0.12")
	lowIP  = netip.MustParseAddr("198.18.0.10")
)

func testConfig(mod func(*InstanceConfig)) InstanceConfig {
	c := InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 100, Interval: time.Second,
		Version: 2, AuthPass: "s3cret", VIPs: []VIP{{Prefix: netip.MustParsePrefix("198.18.0.100/32")}}}
	if mod != nil {
		mod(&c)
	}
	return c
}

func newTestMachine(t *testing.T, mod func(*InstanceConfig)) *Machine {
	t.Helper()
	m, err := NewMachine(testConfig(mod), ourIP)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// advert builds a valid received advert for the machine's configuration.
func advert(m *Machine, src netip.Addr, prio uint8) Received {
	c := m.Config()
	p := &Packet{Version: c.Version, VRID: c.VRID, Priority: prio, Interval: c.Interval, Addresses: c.Addresses()}
	if c.Version == 2 && c.AuthPass != "" {
		p.AuthType, p.AuthData = AuthPass, PassAuth(c.AuthPass)
	}
	return Received{Packet: p, Src: src, Dst: MulticastIPv4, TTL: 255}
}

// newMaster returns a machine that has just become MASTER, and the time it did.
func newMaster(t *testing.T, mod func(*InstanceConfig)) (*Machine, time.Time) {
	t.Helper()
	m := newTestMachine(t, mod)
	now := t0
	m.Start(now)
	runUntil(m, &now, m.Deadline())
	if m.State() != StateMaster {
		t.Fatalf("state %v, want MASTER", m.State())
	}
	return m, now
}

// runUntil ticks the machine at each deadline up to end and returns every action.
func runUntil(m *Machine, now *time.Time, end time.Time) []Action {
	var acts []Action
	for {
		d := m.Deadline()
		if d.IsZero() || d.After(end) {
			*now = end
			return acts
		}
		*now = d
		acts = append(acts, m.Tick(d)...)
	}
}

// has returns the first action of type T in acts.
func has[T Action](acts []Action) (T, bool) {
	for _, a := range acts {
		if x, ok := a.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func TestMasterDownIntervalAndSkew(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*InstanceConfig)
		wantDown time.Duration
		wantSkew time.Duration
	}{
		{"v2 prio 100", nil, 3*time.Second + 609375*time.Microsecond, 609375 * time.Microsecond},
		{"v2 prio 254", func(c *InstanceConfig) { c.Priority = 254 }, 3*time.Second + 7812500*time.Nanosecond, 7812500 * time.Nanosecond},
		{"v2 advert 3s skew stays in seconds", func(c *InstanceConfig) { c.Interval = 3 * time.Second }, 9*time.Second + 609375*time.Microsecond, 609375 * time.Microsecond},
		{"v3 100ms prio 200", func(c *InstanceConfig) {
			c.Version, c.Interval, c.AuthPass, c.Priority = 3, 100*time.Millisecond, "", 200
		}, 300*time.Millisecond + 21875*time.Microsecond, 21875 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine(t, tt.mod)
			if got := m.SkewTime(); got != tt.wantSkew {
				t.Errorf("skew %v, want %v", got, tt.wantSkew)
			}
			if got := m.MasterDownInterval(); got != tt.wantDown {
				t.Errorf("Master_Down_Interval %v, want %v", got, tt.wantDown)
			}
			now := t0
			start := m.Start(now)
			if tr, _ := has[Transition](start); tr.To != StateBackup {
				t.Fatalf("start: %+v", tr)
			}
			if _, ok := has[RemoveVIPs](start); !ok {
				t.Errorf("start must clear addresses left by a crashed run: %v", start)
			}
			acts := runUntil(m, &now, t0.Add(tt.wantDown-time.Millisecond))
			if m.State() != StateBackup || len(acts) != 0 {
				t.Fatalf("before Master_Down_Interval: %v %v", m.State(), acts)
			}
			acts = runUntil(m, &now, t0.Add(tt.wantDown))
			if m.State() != StateMaster {
				t.Fatalf("after Master_Down_Interval: %v", m.State())
			}
			if _, ok := has[AddVIPs](acts); !ok {
				t.Errorf("no AddVIPs in %v", acts)
			}
			if g, ok := has[SendGARP](acts); !ok || g.Repeat != DefaultGARPRepeat {
				t.Errorf("no GARP burst in %v", acts)
			}
		})
	}
}

func TestBackupElection(t *testing.T) {
	tests := []struct {
		name       string
		mod        func(*InstanceConfig)
		src        netip.Addr
		prio       uint8
		wantMaster bool // after 10 s of adverts every second
	}{
		{"higher priority master keeps us backup", nil, peerIP, 150, false},
		{"equal priority keeps us backup", nil, lowIP, 100, false},
		{"lower priority master is preempted", nil, peerIP, 50, true},
		{"nopreempt accepts a lower priority master", func(c *InstanceConfig) { c.NoPreempt = true }, peerIP, 50, false},
		{"preempt_delay 20s still waiting", func(c *InstanceConfig) { c.PreemptDelay = 20 * time.Second }, peerIP, 50, false},
		{"preempt_delay 5s has passed", func(c *InstanceConfig) { c.PreemptDelay = 5 * time.Second }, peerIP, 50, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine(t, tt.mod)
			now := t0
			m.Start(now)
			for i := 1; i <= 10 && m.State() == StateBackup; i++ {
				runUntil(m, &now, t0.Add(time.Duration(i)*time.Second))
				if m.State() != StateBackup {
					break
				}
				if _, err := m.Receive(now, advert(m, tt.src, tt.prio)); err != nil {
					t.Fatal(err)
				}
			}
			if got := m.State() == StateMaster; got != tt.wantMaster {
				t.Fatalf("master=%v, want %v (state %v)", got, tt.wantMaster, m.State())
			}
		})
	}
}

// A returning higher-priority node with preempt_delay must not take over
// before the delay (loxilb's returning master reset clients before syncing).
func TestPreemptDelayWaitsThenTakesOver(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.Priority = 200; c.PreemptDelay = 10 * time.Second })
	now := t0
	m.Start(now)
	var masterAt time.Time
	for i := 1; i <= 20; i++ {
		acts := runUntil(m, &now, t0.Add(time.Duration(i)*time.Second-time.Millisecond))
		if _, ok := has[AddVIPs](acts); ok && masterAt.IsZero() {
			masterAt = now
		}
		if m.State() == StateMaster {
			break
		}
		now = t0.Add(time.Duration(i) * time.Second)
		if _, err := m.Receive(now, advert(m, peerIP, 100)); err != nil {
			t.Fatal(err)
		}
	}
	// First advert at 1 s starts the delay; preemption may happen only after
	// 11 s, then Master_Down_Interval after the last accepted advert.
	if masterAt.IsZero() || masterAt.Before(t0.Add(11*time.Second)) || masterAt.After(t0.Add(15*time.Second)) {
		t.Fatalf("became master at %v after start, want between 11 s and 15 s", masterAt.Sub(t0))
	}
}

func TestPriorityZeroTakeoverAfterSkew(t *testing.T) {
	m := newTestMachine(t, nil)
	now := t0
	m.Start(now)
	now = now.Add(time.Second)
	m.Receive(now, advert(m, peerIP, 150))
	now = now.Add(500 * time.Millisecond)
	if _, err := m.Receive(now, advert(m, peerIP, 0)); err != nil {
		t.Fatal(err)
	}
	if d := m.Deadline().Sub(now); d != m.SkewTime() {
		t.Fatalf("down timer %v after priority 0, want skew %v", d, m.SkewTime())
	}
	runUntil(m, &now, now.Add(m.SkewTime()))
	if m.State() != StateMaster {
		t.Fatalf("state %v", m.State())
	}
}

func TestMasterReceive(t *testing.T) {
	tests := []struct {
		name       string
		src        netip.Addr
		prio       uint8
		wantBackup bool
		wantAdvert bool
		wantGARP   bool
	}{
		{"higher priority", lowIP, 150, true, false, false},
		{"equal priority higher address", peerIP, 100, true, false, false},
		{"equal priority lower address", lowIP, 100, false, true, true},
		{"lower priority forces election", peerIP, 50, false, true, true},
		{"priority 0 answered at once", peerIP, 0, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, now := newMaster(t, nil)
			now = now.Add(300 * time.Millisecond)
			acts, err := m.Receive(now, advert(m, tt.src, tt.prio))
			if err != nil {
				t.Fatal(err)
			}
			if got := m.State() == StateBackup; got != tt.wantBackup {
				t.Fatalf("backup=%v want %v", got, tt.wantBackup)
			}
			if _, ok := has[RemoveVIPs](acts); ok != tt.wantBackup {
				t.Errorf("RemoveVIPs=%v in %v", ok, acts)
			}
			if _, ok := has[SendAdvert](acts); ok != tt.wantAdvert {
				t.Errorf("SendAdvert=%v in %v", ok, acts)
			}
			if _, ok := has[SendGARP](acts); ok != tt.wantGARP {
				t.Errorf("SendGARP=%v in %v", ok, acts)
			}
		})
	}
}

// keepalived 2.2.7 starts "state MASTER" in BACKUP and waits the full
// Master_Down_Interval; govs does the same so mixed pairs elect alike.
func TestInitialMasterWaits(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.InitialMaster = true })
	m.Start(t0)
	if m.State() != StateBackup || m.Deadline().Sub(t0) != m.MasterDownInterval() {
		t.Fatalf("state %v, deadline %v", m.State(), m.Deadline().Sub(t0))
	}
}

func TestOwnerIsMasterAtOnce(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.Priority = 255 })
	acts := m.Start(t0)
	if m.State() != StateMaster {
		t.Fatalf("state %v", m.State())
	}
	if a, _ := has[SendAdvert](acts); a.Priority != 255 {
		t.Fatalf("advert %+v", a)
	}
}

// Wrong packets are counted and dropped and never change state.
func TestReceiveRules(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Received)
		want error
	}{
		{"other VRID", func(r *Received) { r.Packet.VRID = 52 }, ErrOtherVRID},
		{"TTL 64", func(r *Received) { r.TTL = 64 }, ErrTTL},
		{"version 3", func(r *Received) { r.Packet.Version = 3 }, ErrWrongVersion},
		{"no auth", func(r *Received) { r.Packet.AuthType = AuthNone }, ErrAuthType},
		{"wrong password", func(r *Received) { r.Packet.AuthData = PassAuth("secret") }, ErrAuthPass},
		{"v2 interval mismatch", func(r *Received) { r.Packet.Interval = 2 * time.Second }, ErrInterval},
		{"unicast to multicast instance", func(r *Received) { r.Dst = ourIP }, ErrUnicast},
		{"own advert", func(r *Received) { r.Src = ourIP }, ErrOwnAdvert},
	}
	for _, state := range []State{StateBackup, StateMaster} {
		for _, tt := range tests {
			t.Run(state.String()+"/"+tt.name, func(t *testing.T) {
				m := newTestMachine(t, nil)
				now := t0
				m.Start(now)
				if state == StateMaster {
					m, now = newMaster(t, nil)
				}
				deadline := m.Deadline()
				for i := 0; i < 3; i++ {
					// A higher-priority advert would make a master back off, a
					// priority 0 one would shorten a backup's timer: neither may.
					for _, prio := range []uint8{254, 0} {
						r := advert(m, peerIP, prio)
						tt.mod(&r)
						acts, err := m.Receive(now, r)
						if !errors.Is(err, tt.want) {
							t.Fatalf("err %v, want %v", err, tt.want)
						}
						if len(acts) != 0 || m.State() != state || !m.Deadline().Equal(deadline) {
							t.Fatalf("dropped advert had effects: %v state %v", acts, m.State())
						}
					}
				}
				if n := m.Stats().Dropped[tt.want.Error()]; n != 6 {
					t.Fatalf("dropped count %d, want 6", n)
				}
			})
		}
	}
}

func TestV3FollowsMasterInterval(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.Version, c.AuthPass, c.Interval = 3, "", time.Second })
	m.Start(t0)
	r := advert(m, peerIP, 150)
	r.Packet.Interval = 200 * time.Millisecond
	acts, err := m.Receive(t0, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := has[Log](acts); !ok {
		t.Errorf("interval mismatch not logged: %v", acts)
	}
	if acts, _ := m.Receive(t0, r); len(acts) != 0 {
		t.Errorf("interval mismatch logged again: %v", acts)
	}
	if want := 600*time.Millisecond + 200*time.Millisecond*156/256; m.Deadline().Sub(t0) != want {
		t.Fatalf("down timer %v, want %v", m.Deadline().Sub(t0), want)
	}
}

func TestShutdownFromMaster(t *testing.T) {
	m, now := newMaster(t, nil)
	acts := m.Shutdown(now.Add(time.Second))
	if a, ok := has[SendAdvert](acts); !ok || a.Priority != 0 {
		t.Fatalf("no priority 0 advert: %v", acts)
	}
	if _, ok := has[RemoveVIPs](acts); !ok {
		t.Fatalf("VIPs kept: %v", acts)
	}
	if m.State() != StateStop || !m.Deadline().IsZero() {
		t.Fatalf("state %v deadline %v", m.State(), m.Deadline())
	}
}

// After a master comes back it must announce itself again (split brain and
// stale ARP caches after recovery); the second burst follows garp_master_delay.
func TestGARPOnEveryMasterEntry(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.GARP.MasterRefresh = 30 * time.Second })
	now := t0
	bursts := 0
	count := func(acts []Action) {
		for _, a := range acts {
			if _, ok := a.(SendGARP); ok {
				bursts++
			}
		}
	}
	count(m.Start(now))
	count(runUntil(m, &now, m.Deadline()))
	start := now
	count(runUntil(m, &now, start.Add(6*time.Second)))
	if bursts != 2 {
		t.Fatalf("%d GARP bursts in the first 6 s as MASTER, want 2 (at once and after 5 s)", bursts)
	}
	count(runUntil(m, &now, start.Add(36*time.Second)))
	if bursts != 3 {
		t.Fatalf("%d bursts after refresh, want 3", bursts)
	}
	acts, _ := m.Receive(now, advert(m, peerIP, 200))
	count(acts)
	count(runUntil(m, &now, now.Add(10*time.Second)))
	if m.State() != StateMaster || bursts != 5 {
		t.Fatalf("state %v bursts %d: a returning master must GARP again", m.State(), bursts)
	}
}

func TestTracking(t *testing.T) {
	m, now := newMaster(t, func(c *InstanceConfig) {
		c.TrackInterfaces = []Track{{Name: "eth1", Weight: 0}}
		c.TrackScripts = []Track{{Name: "chk_web", Weight: -60}, {Name: "bonus", Weight: 10}}
	})
	if m.Priority() != 110 {
		t.Fatalf("priority %d, want 100 + 10", m.Priority())
	}
	m.SetTrack(now, false, "chk_web", false)
	if m.Priority() != 50 || m.State() != StateMaster {
		t.Fatalf("priority %d state %v", m.Priority(), m.State())
	}
	acts := m.SetTrack(now, true, "eth1", false)
	if m.State() != StateFault {
		t.Fatalf("state %v", m.State())
	}
	if a, ok := has[SendAdvert](acts); !ok || a.Priority != 0 {
		t.Fatalf("leaving MASTER for FAULT must send priority 0: %v", acts)
	}
	if _, ok := has[RemoveVIPs](acts); !ok {
		t.Fatalf("VIPs kept in FAULT: %v", acts)
	}
	if _, err := m.Receive(now, advert(m, peerIP, 0)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("FAULT accepted an advert: %v", err)
	}
	m.SetTrack(now, true, "eth1", true)
	if m.State() != StateBackup {
		t.Fatalf("after recovery %v", m.State())
	}
	m.SetInterface(now, false)
	if m.State() != StateFault {
		t.Fatalf("interface down: %v", m.State())
	}
}

func TestTrackReverseAndInitFail(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) {
		c.TrackInterfaces = []Track{{Name: "standby0", Reverse: true}} // weight 0: FAULT while "down"
		c.TrackScripts = []Track{{Name: "chk", Weight: -20}}
	})
	// A reversed interface that is up counts as down.
	m.Start(t0)
	if m.State() != StateFault {
		t.Fatalf("reversed up interface: %v", m.State())
	}
	m.SetTrack(t0, true, "standby0", false)
	if m.State() != StateBackup {
		t.Fatalf("reversed down interface: %v", m.State())
	}
	// init_fail: the runner reports the script down before Start.
	m2 := newTestMachine(t, func(c *InstanceConfig) { c.TrackScripts = []Track{{Name: "chk", Weight: -20}} })
	if acts := m2.SetTrack(t0, false, "chk", false); len(acts) != 1 {
		t.Fatalf("before start: %v", acts)
	}
	m2.Start(t0)
	if m2.State() != StateBackup || m2.Priority() != 80 {
		t.Fatalf("state %v priority %d", m2.State(), m2.Priority())
	}
}

func TestSyncGroup(t *testing.T) {
	a := newTestMachine(t, func(c *InstanceConfig) { c.Name = "VI_A"; c.SyncGroup = "G" })
	b := newTestMachine(t, func(c *InstanceConfig) {
		c.Name, c.VRID, c.SyncGroup = "VI_B", 52, "G"
		c.VIPs = []VIP{{Prefix: netip.MustParsePrefix("203.0.113.10/32")}}
	})
	g := &Group{Name: "G", Members: []*Machine{a, b}}
	now := t0
	a.Start(now)
	b.Start(now)
	// A's timer fires first only because we tick A alone: B must follow.
	now = a.Deadline()
	acts := a.Tick(now)
	tr, _ := has[Transition](acts)
	if tr.To != StateMaster {
		t.Fatalf("A: %v", acts)
	}
	out := g.Follow(now, a, tr)
	if b.State() != StateMaster || len(out) != 1 {
		t.Fatalf("B did not follow to MASTER: %v %v", b.State(), out)
	}
	// A faulty member pulls the whole group into FAULT and back.
	acts = a.SetInterface(now, false)
	tr, _ = has[Transition](acts)
	g.Follow(now, a, tr)
	if b.State() != StateFault {
		t.Fatalf("B: %v", b.State())
	}
	acts = a.SetInterface(now, true)
	tr, _ = has[Transition](acts)
	g.Follow(now, a, tr)
	if a.State() != StateBackup || b.State() != StateBackup {
		t.Fatalf("after recovery A %v B %v", a.State(), b.State())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*InstanceConfig)
	}{
		{"VRID 0", func(c *InstanceConfig) { c.VRID = 0 }},
		{"priority 256", func(c *InstanceConfig) { c.Priority = 256 }},
		{"v2 fractional interval", func(c *InstanceConfig) { c.Interval = 100 * time.Millisecond }},
		{"v2 IPv6", func(c *InstanceConfig) { c.IPv6 = true }},
		{"AH", func(c *InstanceConfig) { c.AuthAH = true }},
		{"no VIPs", func(c *InstanceConfig) { c.VIPs = nil }},
		{"wrong family VIP", func(c *InstanceConfig) { c.VIPs = []VIP{{Prefix: netip.MustParsePrefix("2001:db8::1/128")}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewMachine(testConfig(tt.mod), ourIP); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// FuzzReceive feeds arbitrary adverts (built field by field, so they pass the
// checksum) to a BACKUP and a MASTER: nothing may panic, and an advert the
// rules drop must leave no trace.
func FuzzReceive(f *testing.F) {
	f.Add(uint8(2), uint8(51), uint8(150), uint8(AuthPass), uint16(1), "s3cret", uint8(1), uint8(255), false)
	f.Add(uint8(2), uint8(51), uint8(0), uint8(AuthPass), uint16(1), "s3cret", uint8(1), uint8(255), false)
	f.Add(uint8(3), uint8(51), uint8(50), uint8(0), uint16(100), "", uint8(3), uint8(64), true)
	f.Fuzz(func(t *testing.T, version, vrid, prio, authType uint8, interval uint16, pass string, naddr, ttl uint8, unicastDst bool) {
		dst := MulticastIPv4
		if unicastDst {
			dst = ourIP
		}
		pkt := Packet{Version: int(version), VRID: vrid, Priority: prio, AuthType: authType, AuthData: PassAuth(pass)}
		if version == 2 {
			pkt.Interval = time.Duration(interval) * time.Second
		} else {
			pkt.Interval = time.Duration(interval) * 10 * time.Millisecond
		}
		for i := 0; i < int(naddr%8); i++ {
			pkt.Addresses = append(pkt.Addresses, netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}))
		}
		b, err := pkt.Encode(peerIP, dst)
		if err != nil {
			return
		}
		p, err := Decode(b, peerIP, dst)
		if err != nil {
			t.Fatalf("own encoding does not decode: %v", err)
		}
		for _, master := range []bool{false, true} {
			m, err := NewMachine(testConfig(nil), ourIP)
			if err != nil {
				t.Fatal(err)
			}
			now := t0
			m.Start(now)
			if master {
				runUntil(m, &now, m.Deadline())
			}
			state, deadline := m.State(), m.Deadline()
			acts, err := m.Receive(now, Received{Packet: p, Src: peerIP, Dst: dst, TTL: int(ttl)})
			if err != nil && (len(acts) != 0 || m.State() != state || !m.Deadline().Equal(deadline)) {
				t.Fatalf("dropped advert (%v) changed the machine: %v", err, acts)
			}
			if err == nil && master && prio > 100 && m.State() != StateBackup {
				t.Fatalf("accepted higher-priority advert left us %v", m.State())
			}
			m.Tick(now.Add(time.Hour))
		}
	})
}

func TestCountDecodeError(t *testing.T) {
	m := newTestMachine(t, nil)
	_, err := Decode([]byte{0x21, 51, 100}, peerIP, MulticastIPv4)
	m.CountDecodeError(err)
	m.CountDecodeError(err)
	if n := m.Stats().Dropped["decode: "+ErrShort.Error()]; n != 2 {
		t.Fatalf("counted %d, want 2: %v", n, m.Stats().Dropped)
	}
}

// A unicast peer's min_ttl/max_ttl bound the TTL accepted from it; without
// them any TTL is (unicast adverts may cross routers).
func TestUnicastPeerTTL(t *testing.T) {
	for _, tc := range []struct {
		ttl  int
		rng  *TTLRange
		want error
	}{
		{64, nil, nil},
		{64, &TTLRange{Min: 60, Max: 64}, nil},
		{255, &TTLRange{Min: 60, Max: 64}, ErrTTL},
		{59, &TTLRange{Min: 60, Max: 64}, ErrTTL},
	} {
		m := newTestMachine(t, func(c *InstanceConfig) {
			c.UnicastPeers = []netip.Addr{peerIP}
			if tc.rng != nil {
				c.PeerTTL = map[netip.Addr]TTLRange{peerIP: *tc.rng}
			}
		})
		m.Start(t0)
		r := advert(m, peerIP, 100)
		r.Dst, r.TTL = ourIP, tc.ttl
		if _, err := m.Receive(t0, r); !errors.Is(err, tc.want) {
			t.Errorf("TTL %d, range %v: err %v, want %v", tc.ttl, tc.rng, err, tc.want)
		}
	}
}

// A unicast advert from an address that is no peer is taken, as keepalived
// takes it, unless check_unicast_src.
func TestCheckUnicastSrc(t *testing.T) {
	stranger := netip.MustParseAddr("198.18.0.99")
	for _, check := range []bool{false, true} {
		m := newTestMachine(t, func(c *InstanceConfig) { c.UnicastPeers = []netip.Addr{peerIP}; c.CheckUnicastSrc = check })
		m.Start(t0)
		r := advert(m, stranger, 100)
		r.Dst = ourIP
		_, err := m.Receive(t0, r)
		if check != errors.Is(err, ErrUnknownPeer) || (!check && err != nil) {
			t.Errorf("check_unicast_src %v: advert from a stranger: %v", check, err)
		}
	}
}

// A MASTER answers a flood of lower-priority adverts once per advert
// interval (advert, GARP, log line), not once per advert.
func TestLowerPriorityFloodIsRateLimited(t *testing.T) {
	m, now := newMaster(t, nil)
	count := func(from, to time.Time, n int) (adverts, garps int) {
		for i := 0; i < n; i++ {
			at := from.Add(time.Duration(i) * to.Sub(from) / time.Duration(n))
			acts, err := m.Receive(at, advert(m, peerIP, 50))
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := has[SendAdvert](acts); ok {
				adverts++
			}
			if _, ok := has[SendGARP](acts); ok {
				garps++
			}
		}
		return adverts, garps
	}
	// 2,000 adverts over 2.5 advert intervals: answered at 0, 1 s and 2 s.
	if a, g := count(now, now.Add(2500*time.Millisecond), 2000); a != 3 || g != 3 {
		t.Errorf("%d adverts and %d GARP bursts for 2,000 lower-priority adverts over 2.5 intervals, want 3 and 3", a, g)
	}
	if got := m.Stats().LowerPriorityIgnored; got != 1997 {
		t.Errorf("ignored %d, want 1997", got)
	}
	if m.State() != StateMaster {
		t.Errorf("state %v", m.State())
	}
}

// TestResume: a node restarted while MASTER keeps its VIPs and is MASTER
// again after one listening window when no master is heard, before a
// peer's Master_Down_Interval could end; an advert from a master that took
// over meanwhile, of any priority, makes it an ordinary BACKUP without the
// VIPs.
func TestResume(t *testing.T) {
	tests := []struct {
		name       string
		mod        func(*InstanceConfig)
		advertPrio int // -1: none
		wantState  State
		wantRemove bool
	}{
		{"nobody took over", nil, -1, StateMaster, false},
		{"a lower-priority peer took over", func(c *InstanceConfig) { c.NoPreempt = true }, 50, StateBackup, true},
		{"a higher-priority peer took over", nil, 200, StateBackup, true},
		{"lower-priority peer, preempt: waits Master_Down_Interval, not the window", nil, 50, StateBackup, true},
		{"the peer stops", nil, 0, StateMaster, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMachine(t, tt.mod)
			if m.ResumeWindow() >= m.MasterDownInterval()-2*m.Config().Interval {
				t.Fatalf("resume window %v does not end before a peer's Master_Down_Interval %v minus the advert it may have missed", m.ResumeWindow(), m.MasterDownInterval())
			}
			now := t0
			acts := m.Resume(now)
			if _, ok := has[RemoveVIPs](acts); ok {
				t.Fatal("Resume removed the VIPs")
			}
			if m.State() != StateBackup {
				t.Fatalf("state %v after Resume, want BACKUP", m.State())
			}
			if tt.advertPrio >= 0 {
				now = now.Add(m.ResumeWindow() / 2)
				got, err := m.Receive(now, advert(m, peerIP, uint8(tt.advertPrio)))
				if err != nil {
					t.Fatal(err)
				}
				acts = append(acts, got...)
			}
			// Past the window, before a Master_Down_Interval from the advert.
			acts = append(acts, runUntil(m, &now, t0.Add(m.ResumeWindow()+m.SkewTime()+10*time.Millisecond))...)
			if m.State() != tt.wantState {
				t.Errorf("state %v after the window, want %v", m.State(), tt.wantState)
			}
			if _, ok := has[RemoveVIPs](acts); ok != tt.wantRemove {
				t.Errorf("VIPs removed: %v, want %v", ok, tt.wantRemove)
			}
			if tt.wantState == StateMaster {
				if _, ok := has[SendAdvert](acts); !ok {
					t.Error("resumed MASTER sent no advert")
				}
			}
		})
	}
}

// TestResumeFallsBackToStart: an address owner is MASTER at once and a node
// with a tracked object down enters FAULT, as Start does.
func TestResumeFallsBackToStart(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.Priority = PriorityOwner })
	m.Resume(t0)
	if m.State() != StateMaster {
		t.Errorf("owner: state %v, want MASTER", m.State())
	}
	m = newTestMachine(t, func(c *InstanceConfig) { c.TrackInterfaces = []Track{{Name: "up0"}} })
	m.SetTrack(t0, true, "up0", false)
	m.Resume(t0)
	if m.State() != StateFault {
		t.Errorf("tracked interface down: state %v, want FAULT", m.State())
	}
}

// TestPreemptHold: a returning higher-priority node whose preemption is
// held stays BACKUP while the lower-priority master advertises, preempts
// once released, and still takes over when the master dies.
func TestPreemptHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release time.Duration // 0: never
		silent  time.Duration // the master stops advertising then (0: never)
		master  time.Duration // about when it becomes MASTER (0: not within the run)
	}{
		{name: "held throughout"},
		{name: "released after 5 s", release: 5 * time.Second, master: 5 * time.Second},
		{name: "held, master dies", silent: 3 * time.Second, master: 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMachine(t, func(c *InstanceConfig) { c.Priority = 150 })
			m.SetPreemptHold(true)
			m.Start(t0)
			var became time.Duration
			logged := 0
			for step := time.Duration(0); step <= 10*time.Second; step += 250 * time.Millisecond {
				now := t0.Add(step)
				if tc.release > 0 && step >= tc.release {
					m.SetPreemptHold(false)
				}
				var acts []Action
				if step%time.Second == 0 && (tc.silent == 0 || step < tc.silent) && m.State() == StateBackup {
					a, err := m.Receive(now, advert(m, peerIP, 100))
					if err != nil {
						t.Fatal(err)
					}
					acts = append(acts, a...)
				}
				acts = append(acts, m.Tick(now)...)
				for _, a := range acts {
					if l, ok := a.(Log); ok && strings.Contains(l.Msg, "not preempting until connection sync") {
						logged++
					}
				}
				if m.State() == StateMaster && became == 0 {
					became = step
				}
			}
			if logged != 1 {
				t.Errorf("the hold was logged %d times, want once", logged)
			}
			bound := tc.master + m.MasterDownInterval() + time.Second
			switch {
			case tc.master == 0 && became != 0:
				t.Errorf("became MASTER after %v, want BACKUP throughout", became)
			case tc.master != 0 && (became == 0 || became < tc.master || became > bound):
				t.Errorf("became MASTER after %v, want between %v and %v", became, tc.master, bound)
			}
		})
	}
}

// TestTrackFile: keepalived's reading of a track_file's value for each
// weight: value × weight added to the priority, -254 or less faulting;
// weight 0 faulting on a non-zero value (a zero one when reversed).
func TestTrackFile(t *testing.T) {
	for _, tt := range []struct {
		name      string
		track     Track
		value     int
		priority  int // 0: FAULT
		ownerPrio int // the address owner's: its priority never moves; 0: FAULT
	}{
		{"zero adds nothing", Track{Name: "f", Weight: 1}, 0, 100, 255},
		{"weight 1 adds the value", Track{Name: "f", Weight: 1}, 20, 120, 255},
		{"a negative value lowers", Track{Name: "f", Weight: 1}, -30, 70, 255},
		{"weight multiplies", Track{Name: "f", Weight: -5}, 4, 80, 255},
		{"reverse negates", Track{Name: "f", Weight: 5, Reverse: true}, 4, 80, 255},
		{"kept in 1..254", Track{Name: "f", Weight: 1}, 200, 254, 255},
		{"-254 faults", Track{Name: "f", Weight: 1}, -254, 0, 0},
		{"past -254 faults", Track{Name: "f", Weight: 2}, -200, 0, 0},
		{"-253 lowers to 1", Track{Name: "f", Weight: 1}, -253, 1, 255},
		{"weight 0: zero is fine", Track{Name: "f"}, 0, 100, 255},
		{"weight 0: non-zero faults", Track{Name: "f"}, 3, 0, 0},
		{"weight 0 reversed: zero faults", Track{Name: "f", Reverse: true}, 0, 0, 0},
		{"weight 0 reversed: non-zero is fine", Track{Name: "f", Reverse: true}, 1, 100, 255},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, prio := range []int{100, PriorityOwner} {
				// As the runner does: the file is read before Start.
				m := newTestMachine(t, func(c *InstanceConfig) { c.Priority = prio; c.TrackFiles = []Track{tt.track} })
				m.SetTrackFile(t0, "f", tt.value)
				m.SetTrackFile(t0, "other", -254) // not tracked: no effect
				now := t0
				m.Start(now)
				runUntil(m, &now, m.Deadline())
				want := tt.priority
				if prio == PriorityOwner {
					want = tt.ownerPrio
				}
				if want == 0 {
					if m.State() != StateFault {
						t.Errorf("priority %d: state %v, want FAULT", prio, m.State())
					}
					continue
				}
				if m.State() != StateMaster || m.Priority() != want {
					t.Errorf("priority %d: state %v priority %d, want MASTER at %d", prio, m.State(), m.Priority(), want)
				}
			}
		})
	}
	// Back from FAULT when the value changes.
	m, now := newMaster(t, func(c *InstanceConfig) { c.TrackFiles = []Track{{Name: "f"}} })
	m.SetTrackFile(now, "f", 1)
	if m.State() != StateFault || !strings.Contains(m.faultReason(), "file f holds 1") {
		t.Fatalf("state %v (%s)", m.State(), m.faultReason())
	}
	m.SetTrackFile(now, "f", 0)
	if m.State() != StateBackup {
		t.Fatalf("after the file went back to 0: %v", m.State())
	}
}

// TestAdvertRules: keepalived's down_timer_adverts, lower_prio_no_advert
// and higher_prio_send_advert.
func TestAdvertRules(t *testing.T) {
	t.Run("down_timer_adverts", func(t *testing.T) {
		for _, n := range []int{0, 1, 5} {
			m := newTestMachine(t, func(c *InstanceConfig) { c.DownTimerAdverts = n })
			want := 3 * m.Config().Interval
			if n > 0 {
				want = time.Duration(n) * m.Config().Interval
			}
			if got := m.MasterDownInterval() - m.SkewTime(); got != want {
				t.Errorf("down_timer_adverts %d: master down interval %v + skew, want %v + skew", n, got, want)
			}
		}
	})
	t.Run("a lower-priority advert is answered unless lower_prio_no_advert", func(t *testing.T) {
		for _, quiet := range []bool{false, true} {
			m, now := newMaster(t, func(c *InstanceConfig) { c.LowerPrioNoAdvert = quiet; c.GARP.LowerPrioRepeat = 2 })
			acts, err := m.Receive(now, advert(m, peerIP, 50))
			if err != nil {
				t.Fatal(err)
			}
			_, sent := has[SendAdvert](acts)
			_, garp := has[SendGARP](acts)
			if h, ok := has[HeardLowerPriority](acts); !ok || h.From != peerIP || h.Priority != 50 {
				t.Errorf("lower_prio_no_advert %v: no HeardLowerPriority for notify_master_rx_lower_pri: %v", quiet, acts)
			}
			if sent == quiet || !garp || m.State() != StateMaster {
				t.Errorf("lower_prio_no_advert %v: advert sent %v, GARP %v, state %v: %v", quiet, sent, garp, m.State(), acts)
			}
		}
	})
	t.Run("higher_prio_send_advert: one last advert before yielding", func(t *testing.T) {
		for _, last := range []bool{false, true} {
			m, now := newMaster(t, func(c *InstanceConfig) { c.HigherPrioSendAdvert = last })
			acts, err := m.Receive(now, advert(m, peerIP, 200))
			if err != nil {
				t.Fatal(err)
			}
			a, sent := has[SendAdvert](acts)
			if sent != last || (sent && int(a.Priority) != m.Config().Priority) || m.State() != StateBackup {
				t.Errorf("higher_prio_send_advert %v: advert %+v sent %v, state %v", last, a, sent, m.State())
			}
			if last {
				if _, ok := acts[0].(SendAdvert); !ok {
					t.Errorf("the advert is not first: %v", acts)
				}
			}
		}
	})
}

// An instance meant to be unicast without peers (unicast_fault_no_peer)
// stays in FAULT.
func TestFaultNoPeer(t *testing.T) {
	m := newTestMachine(t, func(c *InstanceConfig) { c.FaultNoPeer = true })
	m.Start(t0)
	now := t0
	runUntil(m, &now, t0.Add(time.Minute))
	if m.State() != StateFault || m.faultReason() != "no unicast peers (unicast_fault_no_peer)" {
		t.Fatalf("state %v (%s), want FAULT", m.State(), m.faultReason())
	}
}

// A tracked object moving a MASTER's priority is reported (for
// notify_priority_changes); one that leaves it unchanged is not.
func TestPriorityChanged(t *testing.T) {
	m, now := newMaster(t, func(c *InstanceConfig) { c.TrackScripts = []Track{{Name: "chk", Weight: -20}} })
	acts := m.SetTrack(now, false, "chk", false)
	if p, ok := has[PriorityChanged](acts); !ok || p.State != StateMaster || p.Priority != 80 {
		t.Fatalf("actions %v, want PriorityChanged MASTER 80", acts)
	}
	if acts := m.SetTrack(now, false, "chk", false); len(acts) != 0 {
		t.Fatalf("no change, yet %v", acts)
	}
}
