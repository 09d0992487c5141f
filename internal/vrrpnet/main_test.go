package vrrpnet_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// TestMain raises the default parallelism: the netns tests mostly wait on
// protocol timers (seconds of idle time each), so running four at a time keeps
// the package near a minute on a 2-core machine without loading it. The
// timing-critical fast-failover test is not parallel and runs alone.
// An explicit -parallel wins.
func TestMain(m *testing.M) {
	if path := os.Getenv(vrrpRunEnv); path != "" {
		os.Exit(runVRRPFile(path))
	}
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "4")
	}
	code := m.Run()
	if govsBin != "" {
		os.RemoveAll(filepath.Dir(govsBin))
	}
	os.Exit(code)
}
