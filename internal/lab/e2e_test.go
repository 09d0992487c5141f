package lab

import (
	"context"
	"os"
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
			for _, d := range Directors {
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
