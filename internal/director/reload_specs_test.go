package director

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/govs/govs/internal/desired"
)

// TestCheckConfigIsStable: the health checker keeps a real server's state
// across a reload only when its translated checker specs are equal, so
// loading the same file twice must give equal specs for every sample.
func TestCheckConfigIsStable(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(sharedTestData(t), "keepalived-samples", "*"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a, err := Load(f, "", desired.Options{}, nil)
			if err != nil {
				t.Skipf("sample does not load: %v", err)
			}
			b, err := Load(f, "", desired.Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ca, cb := a.Checks, b.Checks
			if !reflect.DeepEqual(ca, cb) {
				t.Errorf("two loads of the same file give different checks:\n%+v\n%+v", ca, cb)
			}
			for _, v := range ca {
				for _, rs := range v.RealServers {
					checked += len(rs.Checkers)
				}
			}
		})
	}
	if checked == 0 {
		t.Skip("no sample declares a checker")
	}
	t.Logf("%d checkers compared", checked)
}

// sharedTestData finds ../shared beside the repository (as CI lays it out).
func sharedTestData(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found above the test directory")
		}
		dir = parent
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("%s absent (CI puts the shared test data beside the repository): %v", shared, err)
	}
	return shared
}
