package state

import (
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func chk(name string, alpha bool) CheckerConfig {
	// retry 0 keeps the scripts short: one failure takes a checker down.
	return CheckerConfig{Name: name, DelayLoop: 5 * time.Second, DelayBeforeRetry: time.Second, Alpha: alpha}
}

func rsCfg(name string, weight int, inhibit bool, checkers ...CheckerConfig) RealServerConfig {
	return RealServerConfig{Name: name, Weight: weight, Inhibit: inhibit, Checkers: checkers}
}

func half() float64 { return 0.5 }

func mustVS(t *testing.T, cfg VirtualServerConfig) *VirtualServer {
	t.Helper()
	vs, err := NewVirtualServer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func report(t *testing.T, vs *VirtualServer, s float64, rs, c int, ok bool) []Event {
	t.Helper()
	res := Result{OK: ok}
	if !ok {
		res.Err = errRefused
	}
	_, ev, err := vs.Report(at(s), rs, c, res)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// kinds summarises events as "kind:name" (name "" for the virtual server)
// with a "!" when a notify script is asked for.
func kinds(ev []Event) []string {
	var out []string
	for _, e := range ev {
		s := e.Kind.String() + ":" + e.RealServerName
		if e.Notify {
			s += "!"
		}
		out = append(out, s)
	}
	return out
}

func TestAllCheckersMustPass(t *testing.T) {
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", RealServers: []RealServerConfig{
		rsCfg("a", 1, false, chk("TCP_CHECK", false), chk("HTTP_GET", false)),
	}})
	ev, probes := vs.Start(t0, half)
	if got := kinds(ev); !reflect.DeepEqual(got, []string{"up:a"}) {
		t.Fatalf("start events %v", got)
	}
	if len(probes) != 2 {
		t.Fatalf("start probes %d, want 2", len(probes))
	}
	steps := []struct {
		c    int
		ok   bool
		want []string
	}{
		{0, false, []string{"down:a!", "quorum-down:!"}},
		{1, false, nil}, // already down: no event
		{0, true, nil},  // HTTP_GET still fails
		{1, true, []string{"up:a!", "quorum-up:!"}},
	}
	for i, s := range steps {
		if got := kinds(report(t, vs, float64(i+1), 0, s.c, s.ok)); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: events %v, want %v", i, got, s.want)
		}
	}
}

func TestInhibitOnFailureVersusRemoval(t *testing.T) {
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", RealServers: []RealServerConfig{
		rsCfg("inhibit", 3, true, chk("TCP_CHECK", false)),
		rsCfg("remove", 2, false, chk("TCP_CHECK", false)),
	}})
	vs.Start(t0, half)
	if got, want := vs.Dests(), []Dest{{Name: "inhibit", Weight: 3}, {Name: "remove", Weight: 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dests %v, want %v", got, want)
	}
	report(t, vs, 1, 0, 0, false)
	ev := report(t, vs, 1, 1, 0, false)
	want := []Dest{{Name: "inhibit", Weight: 0}}
	if got := vs.Dests(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after failures dests %v, want %v (inhibited at weight 0, other removed)", got, want)
	}
	if !reflect.DeepEqual(ev[len(ev)-1].Dests, want) {
		t.Fatalf("event carries dests %v, want %v", ev[len(ev)-1].Dests, want)
	}
	report(t, vs, 2, 0, 0, true)
	if got, want := vs.Dests(), []Dest{{Name: "inhibit", Weight: 3}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after recovery dests %v, want %v", got, want)
	}
}

func TestQuorumHysteresis(t *testing.T) {
	// Three servers of weight 1, quorum 2, hysteresis 1: quorum is gained at
	// a live weight of 3 and lost below 1.
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", Quorum: 2, Hysteresis: 1, RealServers: []RealServerConfig{
		rsCfg("a", 1, false, chk("c", false)), rsCfg("b", 1, false, chk("c", false)), rsCfg("c", 1, false, chk("c", false)),
	}})
	vs.Start(t0, half)
	if !vs.QuorumUp() {
		t.Fatal("quorum down at start with all servers up")
	}
	steps := []struct {
		rs     int
		ok     bool
		quorum bool
		want   []string
	}{
		{0, false, true, []string{"down:a!"}},
		{1, false, true, []string{"down:b!"}},
		{2, false, false, []string{"down:c!", "quorum-down:!"}},
		{0, true, false, []string{"up:a!"}},
		{1, true, false, []string{"up:b!"}},
		{2, true, true, []string{"up:c!", "quorum-up:!"}},
	}
	for i, s := range steps {
		got := kinds(report(t, vs, float64(i+1), s.rs, 0, s.ok))
		if !reflect.DeepEqual(got, s.want) || vs.QuorumUp() != s.quorum {
			t.Fatalf("step %d: events %v quorum %v, want %v quorum %v", i, got, vs.QuorumUp(), s.want, s.quorum)
		}
	}
}

func TestSorryServer(t *testing.T) {
	tests := []struct {
		name         string
		inhibitRS    bool
		sorryInhibit bool
		// dests after: start, a down (quorum lost), a back (quorum regained)
		want [3][]Dest
	}{
		{
			name: "plain",
			want: [3][]Dest{
				{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}},
				{{Name: "sorry", Weight: 5, Sorry: true}},
				{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}},
			},
		},
		{
			name:         "inhibit_on_failure and sorry_server_inhibit",
			inhibitRS:    true,
			sorryInhibit: true,
			want: [3][]Dest{
				{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "sorry", Weight: 0, Sorry: true}},
				{{Name: "a", Weight: 0}, {Name: "b", Weight: 0}, {Name: "sorry", Weight: 5, Sorry: true}},
				{{Name: "a", Weight: 1}, {Name: "b", Weight: 1}, {Name: "sorry", Weight: 0, Sorry: true}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := mustVS(t, VirtualServerConfig{Name: "vip:80", Quorum: 2,
				Sorry: &SorryServerConfig{Name: "sorry", Weight: 5, Inhibit: tt.sorryInhibit},
				RealServers: []RealServerConfig{
					rsCfg("a", 1, tt.inhibitRS, chk("c", false)), rsCfg("b", 1, tt.inhibitRS, chk("c", false)),
				}})
			vs.Start(t0, half)
			if got := vs.Dests(); !reflect.DeepEqual(got, tt.want[0]) {
				t.Fatalf("start dests %v, want %v", got, tt.want[0])
			}
			ev := report(t, vs, 1, 0, 0, false)
			if got := kinds(ev); !reflect.DeepEqual(got, []string{"down:a!", "quorum-down:!"}) || !vs.SorryServerActive() {
				t.Fatalf("events %v sorry %v", got, vs.SorryServerActive())
			}
			if got := vs.Dests(); !reflect.DeepEqual(got, tt.want[1]) {
				t.Fatalf("quorum lost dests %v, want %v", got, tt.want[1])
			}
			report(t, vs, 2, 0, 0, true)
			if got := vs.Dests(); !reflect.DeepEqual(got, tt.want[2]) || vs.SorryServerActive() {
				t.Fatalf("quorum regained dests %v sorry %v, want %v", got, vs.SorryServerActive(), tt.want[2])
			}
		})
	}
}

func TestAlphaStartsDownWithSorryServer(t *testing.T) {
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", Sorry: &SorryServerConfig{Name: "sorry", Weight: 1},
		RealServers: []RealServerConfig{rsCfg("a", 2, false, chk("c", true))}})
	ev, _ := vs.Start(t0, half)
	if got := kinds(ev); !reflect.DeepEqual(got, []string{"down:a", "quorum-down:!"}) {
		t.Fatalf("start events %v", got)
	}
	if got, want := vs.Dests(), []Dest{{Name: "sorry", Weight: 1, Sorry: true}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("start dests %v, want %v", got, want)
	}
	// The first failure confirms the alpha state once (notify_down), later ones are silent.
	if got := kinds(report(t, vs, 1, 0, 0, false)); !reflect.DeepEqual(got, []string{"down:a!"}) {
		t.Fatalf("first failure events %v", got)
	}
	if got := kinds(report(t, vs, 6, 0, 0, false)); got != nil {
		t.Fatalf("second failure events %v", got)
	}
	if got := kinds(report(t, vs, 11, 0, 0, true)); !reflect.DeepEqual(got, []string{"up:a!", "quorum-up:!"}) {
		t.Fatalf("success events %v", got)
	}
	if got, want := vs.Dests(), []Dest{{Name: "a", Weight: 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dests %v, want %v", got, want)
	}
}

func TestMiscDynamicWeight(t *testing.T) {
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", RealServers: []RealServerConfig{
		rsCfg("a", 5, true, chk("MISC_CHECK", false)),
	}})
	vs.Start(t0, half)
	steps := []struct {
		res    Result
		want   []string
		weight int
	}{
		{Result{OK: true, HasWeight: true, Weight: 10}, []string{"weight:a"}, 10},
		{Result{OK: true, HasWeight: true, Weight: 10}, nil, 10},
		{Result{OK: true, HasWeight: true, Weight: 253}, []string{"weight:a"}, 253},
		{Result{OK: true}, []string{"weight:a"}, 5}, // exit 0: configured weight again
		{Result{OK: true, HasWeight: true, Weight: 0}, []string{"weight:a", "quorum-down:!"}, 0},
		{Result{Err: errors.New("exit status 1")}, []string{"weight:a", "down:a!"}, 5},
		{Result{OK: true, HasWeight: true, Weight: 7}, []string{"weight:a", "up:a!", "quorum-up:!"}, 7},
	}
	for i, s := range steps {
		_, ev, err := vs.Report(at(float64(i)), 0, 0, s.res)
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(ev); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: events %v, want %v", i, got, s.want)
		}
		if got := vs.Status()[0].Weight; got != s.weight {
			t.Fatalf("step %d: weight %d, want %d", i, got, s.weight)
		}
	}
}

func TestMiscDynamicSumsOverCheckers(t *testing.T) {
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", RealServers: []RealServerConfig{
		rsCfg("a", 10, false, chk("m1", false), chk("m2", false)),
	}})
	vs.Start(t0, half)
	vs.Report(at(1), 0, 0, Result{OK: true, HasWeight: true, Weight: 15}) // +5
	vs.Report(at(1), 0, 1, Result{OK: true, HasWeight: true, Weight: 8})  // -2
	if got := vs.Status()[0].Weight; got != 13 {
		t.Fatalf("weight %d, want 13", got)
	}
}

func TestStopOmega(t *testing.T) {
	for _, omega := range []bool{false, true} {
		vs := mustVS(t, VirtualServerConfig{Name: "vip:80", Omega: omega, RealServers: []RealServerConfig{
			rsCfg("a", 1, false, chk("c", false)), rsCfg("b", 1, false, chk("c", false)),
		}})
		vs.Start(t0, half)
		report(t, vs, 1, 1, 0, false)
		stopEvents := vs.Stop()
		for _, e := range stopEvents {
			if !e.Shutdown {
				t.Errorf("stop event %+v not marked Shutdown", e)
			}
		}
		got := kinds(stopEvents)
		want := []string{"down:a", "quorum-down:"}
		if omega {
			want = []string{"down:a!", "quorum-down:!"}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("omega %v: stop events %v, want %v", omega, got, want)
		}
	}
}

func TestTransitionsAreLoggedWithReason(t *testing.T) {
	var buf bytes.Buffer
	vs, err := NewVirtualServer(VirtualServerConfig{Name: "vip:80", RealServers: []RealServerConfig{
		rsCfg("198.18.0.2:80", 1, true, CheckerConfig{Name: "HTTP_GET 198.18.0.2:80", DelayLoop: time.Second}),
	}}, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	vs.Start(t0, half)
	if _, _, err := vs.Report(at(1), 0, 0, Result{Err: errors.New("status 503 not in 200-299")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"disabling real server", "rs=198.18.0.2:80", "HTTP_GET 198.18.0.2:80 failed: status 503 not in 200-299", "lost quorum"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestBadInput(t *testing.T) {
	bad := []VirtualServerConfig{
		{Name: "q", Quorum: -1},
		{Name: "w", RealServers: []RealServerConfig{rsCfg("a", -1, false)}},
		{Name: "w", RealServers: []RealServerConfig{rsCfg("a", MaxWeight+1, false)}},
		{Name: "d", RealServers: []RealServerConfig{rsCfg("a", 1, false, CheckerConfig{Name: "c"})}},
		{Name: "r", RealServers: []RealServerConfig{rsCfg("a", 1, false, CheckerConfig{Name: "c", DelayLoop: time.Second, Retry: -1})}},
	}
	for _, cfg := range bad {
		if _, err := NewVirtualServer(cfg, nil); err == nil {
			t.Errorf("NewVirtualServer(%+v) accepted bad input", cfg)
		}
	}
	vs := mustVS(t, VirtualServerConfig{Name: "v", RealServers: []RealServerConfig{rsCfg("a", 1, false, chk("c", false))}})
	vs.Start(t0, half)
	for _, idx := range [][2]int{{-1, 0}, {1, 0}, {0, 1}, {0, -1}} {
		if _, _, err := vs.Report(t0, idx[0], idx[1], Result{OK: true}); err == nil {
			t.Errorf("Report(%d, %d) accepted a missing checker", idx[0], idx[1])
		}
	}
}

func TestAlphaWithRetriesDoesNotNotifyOnFirstFailure(t *testing.T) {
	c := chk("c", true)
	c.Retry = 2
	vs := mustVS(t, VirtualServerConfig{Name: "vip:80", RealServers: []RealServerConfig{rsCfg("a", 1, false, c)}})
	vs.Start(t0, half)
	next, ev, err := vs.Report(at(1), 0, 0, Result{Err: errRefused})
	if err != nil || ev != nil || !next.Equal(at(6)) {
		t.Fatalf("first failure: next %v events %v err %v; want delay_loop, no events", next.Sub(t0), kinds(ev), err)
	}
}
