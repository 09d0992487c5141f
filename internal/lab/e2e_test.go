package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// TestPrivilegedLabEndToEnd is issue 6's acceptance: the whole scenario in
// namespaces, two directors running govs, driven by RunTest (what `govs lab
// test` prints), with every number asserted here.
func TestPrivilegedLabEndToEnd(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	govs := netnstest.BuildGovs(t)
	for _, mode := range []string{ModeDR, ModeNAT, ModeFNAT, ModeTUN, ModeGUE} {
		t.Run(mode, func(t *testing.T) { labEndToEnd(t, govs, mode) })
	}
}

// labEndToEnd runs the scenario in one forwarding mode: in DR the web
// servers' replies bypass the directors; in NAT (issue 10) they cross the
// master, whose XDP program rewrites each of them back to the VIP.
func labEndToEnd(t *testing.T, govs, mode string) {
	name := labName(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	cmd := strings.Fields("{govs} run -f {conf} --socket {state}/{dir}.sock")
	st := upForTest(t, Options{Name: name, StateDir: stateDir, Webs: 2, WebServer: WebNginx, Govs: govs, DirectorCmd: cmd, Mode: mode})
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range (Topology{}).DirectorRoles() {
				out, _ := os.ReadFile(filepath.Join(stateDir, d+".log"))
				t.Logf("%s log:\n%s", d, tail(string(out), 40))
			}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	rep, err := RunTest(ctx, TestOptions{Name: name, StateDir: stateDir, Requests: 1000, ExpectSync: true, Out: &out})
	t.Logf("report:\n%s", out.String())
	if err != nil {
		t.Fatalf("lab test: %v", err)
	}

	if rep.Failed != 0 || rep.Requests != 1000 {
		t.Errorf("%d of %d requests failed", rep.Failed, rep.Requests)
	}
	for _, w := range (Topology{Name: name, Webs: st.Webs}).WebRoles() {
		if share := float64(rep.PerServer[w]) / float64(rep.Requests); share < 0.45 || share > 0.55 {
			t.Errorf("rr gave %s %.1f%% of the requests, want 50%% ± 5%%", w, 100*share)
		}
	}
	switch mode {
	case ModeDR, ModeTUN, ModeGUE:
		if rep.RepliesAtDirector != 0 || rep.WebTx < uint64(rep.Requests) || rep.MasterInPkts < uint64(rep.Requests) || rep.MasterOutPkts != 0 {
			t.Errorf("replies did not bypass the directors: %d reached one's IP stack, %d its XDP; web servers sent %d, master forwarded %d",
				rep.RepliesAtDirector, rep.MasterOutPkts, rep.WebTx, rep.MasterInPkts)
		}
	case ModeNAT, ModeFNAT:
		// At least SYN-ACK, the answer and FIN per request were rewritten
		// by the master's XDP; none reached a director's IP stack.
		if rep.RepliesAtDirector != 0 || rep.MasterOutPkts < 3*uint64(rep.Requests) || rep.MasterInPkts < uint64(rep.Requests) {
			t.Errorf("NAT replies: master rewrote %d (want at least %d), %d reached a director's IP stack; master forwarded %d",
				rep.MasterOutPkts, 3*rep.Requests, rep.RepliesAtDirector, rep.MasterInPkts)
		}
	}
	if rep.PersistentSeen != 1 || rep.NonPersistSeen != 2 {
		t.Errorf("persistence: one client saw %d servers with it and %d without, want 1 and 2", rep.PersistentSeen, rep.NonPersistSeen)
	}
	if rep.BadReloadError == "" || rep.BadReloadFails != 0 {
		t.Errorf("bad reload: error %q, %d requests failed meanwhile", rep.BadReloadError, rep.BadReloadFails)
	}
	if rep.WebDownAfter > DetectionBound() || rep.WebLateFailures != 0 {
		t.Errorf("dead web server out after %s (bound %s), %d requests failed after that", rep.WebDownAfter, DetectionBound(), rep.WebLateFailures)
	}
	if rep.TakeoverAfter == 0 || rep.TakeoverAfter > TakeoverBound() {
		t.Errorf("backup took over after %s, bound %s", rep.TakeoverAfter, TakeoverBound())
	}
	if rep.LongLivedTotal == 0 || rep.LongLivedOK != rep.LongLivedTotal {
		t.Errorf("%d of %d long-lived connections survived the master's death", rep.LongLivedOK, rep.LongLivedTotal)
	}
	if !rep.OK() {
		t.Errorf("a check of the report failed")
	}

	// lab down removes every namespace and process (the cleanup asserts
	// Down's success; check the result here too).
	if err := Down(name, stateDir, nil); err != nil {
		t.Fatal(err)
	}
	if left, err := ExistingNamespaces(name); err != nil || len(left) > 0 {
		t.Errorf("namespaces left after lab down: %v (%v)", left, err)
	}
	for _, p := range st.Processes {
		if alive(p.PID, p.Marker) {
			t.Errorf("%s (pid %d) still runs after lab down", p.Role, p.PID)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestPrivilegedLabBGP is `govs lab up --directors 3 --bgp` (and
// --resilient) driven by RunTest: BIRD on the router routes the VIP over
// the three directors, new connections spread over all of them, and a
// drain, a rejoin and a director's link failing break none of the
// long-lived connections kept busy through them (each keeps its web
// server); the drain and the rejoin fail no new connection either.
func TestPrivilegedLabBGP(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skip("bird (Debian's bird2) is not installed")
	}
	govs := netnstest.BuildGovs(t)
	for _, resilient := range []bool{false, true} {
		t.Run(map[bool]string{false: "multipath", true: "resilient"}[resilient], func(t *testing.T) {
			name := labName(t)
			stateDir := filepath.Join(t.TempDir(), "state")
			cmd := strings.Fields("{govs} run -f {conf} --socket {state}/{dir}.sock")
			upForTest(t, Options{Name: name, StateDir: stateDir, Webs: 3, WebServer: WebNginx, Govs: govs, DirectorCmd: cmd,
				Directors: 3, BGP: true, Resilient: resilient})
			t.Cleanup(func() {
				if t.Failed() {
					for _, role := range []string{"dir1", "dir2", "dir3", "bird", "nexthops"} {
						out, _ := os.ReadFile(filepath.Join(stateDir, role+".log"))
						t.Logf("%s log:\n%s", role, tail(string(out), 30))
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			var out strings.Builder
			rep, err := RunTest(ctx, TestOptions{Name: name, StateDir: stateDir, Requests: 600, Out: &out})
			t.Logf("report:\n%s", out.String())
			if err != nil {
				t.Fatalf("lab test: %v", err)
			}
			if rep.Failed != 0 {
				t.Errorf("%d of %d requests failed", rep.Failed, rep.Requests)
			}
			for d, n := range rep.PerDirector {
				if n < rep.Requests/6 {
					t.Errorf("%s scheduled %d of %d new connections, want at least half its share", d, n, rep.Requests)
				}
			}
			if len(rep.PerDirector) != 3 || len(rep.BGPSteps) != 4 {
				t.Fatalf("%d directors counted, %d disruption steps", len(rep.PerDirector), len(rep.BGPSteps))
			}
			for i, st := range rep.BGPSteps {
				if st.Broken != 0 || st.RouteAfter < 0 {
					t.Errorf("%s: %d long-lived connections broken, route after %s", st.Name, st.Broken, st.RouteAfter)
				}
				if i != 2 && st.NewFailed != 0 { // the link failure waits for the router's hold timer
					t.Errorf("%s: %d new connections failed", st.Name, st.NewFailed)
				}
			}
			if st := rep.BGPSteps[2]; st.RouteAfter > 2*BGPHoldTime {
				t.Errorf("%s: the router dropped the director after %s, more than twice the hold time", st.Name, st.RouteAfter)
			}
			if !rep.OK() {
				t.Errorf("a check of the report failed")
			}
		})
	}
}
