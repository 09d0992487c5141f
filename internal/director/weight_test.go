package director

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/dpstate"
)

// TestSetWeight: a weight set at run time reaches the data plane and the
// status view, drains a server with 0, survives a reload, and reset puts
// the configured weight back; an unknown real server is an error.
func TestSetWeight(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeConfig(t, conf, corpus.Files()[0].Src)
	f, err := startFake(t, conf, healthy)
	if err != nil {
		t.Fatal(err)
	}
	weightOf := func(st dpstate.State, addr netip.Addr) (uint32, bool) {
		for _, r := range st.Services[0].Reals {
			if r.Addr == addr {
				return r.Weight, true
			}
		}
		return 0, false
	}
	st, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { return len(st.Services) == 1 && len(st.Services[0].Reals) == 2 })
	if !ok {
		t.Fatal("configuration not programmed")
	}
	rs := st.Services[0].Reals[0].Addr
	configured := st.Services[0].Reals[0].Weight
	wait := func(what string, want uint32) {
		t.Helper()
		if _, ok := f.waitApplied(5*time.Second, func(st dpstate.State) bool { w, ok := weightOf(st, rs); return ok && w == want }); !ok {
			t.Fatalf("%s: the data plane never had weight %d for %s", what, want, rs)
		}
		for _, s := range f.d.Snapshot().Services {
			for _, r := range s.Reals {
				if r.Addr == rs && r.Weight != int(want) {
					t.Errorf("%s: status shows weight %d, want %d", what, r.Weight, want)
				}
			}
		}
	}
	zero, five := uint32(0), uint32(5)
	if n, err := f.d.SetWeight("", rs, 0, &five); err != nil || n != 1 {
		t.Fatalf("SetWeight 5: %d, %v", n, err)
	}
	wait("weight 5", 5)
	if _, err := f.d.SetWeight("", rs, 0, &zero); err != nil {
		t.Fatal(err)
	}
	wait("drained", 0)
	if err := f.d.Reload(); err != nil {
		t.Fatal(err)
	}
	wait("drained, after a reload", 0)
	if _, err := f.d.SetWeight("", rs, 0, nil); err != nil {
		t.Fatal(err)
	}
	wait("reset", configured)
	if _, err := f.d.SetWeight("", netip.MustParseAddr("198.18.99.99"), 0, &five); err == nil {
		t.Error("an unknown real server was accepted")
	}
}
