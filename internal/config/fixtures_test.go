package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedDir finds ../shared beside the repository root (CI clones the repo
// with shared next to it) or skips the test.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
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

func TestSeedFixture(t *testing.T) {
	path := filepath.Join(sharedDir(t), "fixtures", "seed-keepalived.conf")
	c, d := ParseFile(path, Options{})
	// keepalived -t flags the same lines: the one-member sync group, and
	// nb_get_retry, which is not a TCP_CHECK keyword in keepalived 2.2.
	if d.HasErrors() || len(d) != 3 || d[0].Keyword != "vrrp_sync_group" || d[1].Keyword != "nb_get_retry" || d[2].Keyword != "nb_get_retry" {
		t.Fatalf("diagnostics:\n%s", strings.Join(diagStrings(d), "\n"))
	}
	if len(c.VirtualServers) != 1 {
		t.Fatalf("%d virtual servers, want 1", len(c.VirtualServers))
	}
	var out bytes.Buffer
	if err := WriteSummary(&out, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  VI_1: MASTER on eth0, vrid 51, priority 100, advert 1s, version 2, auth PASS, sync group VG1\n    VIP 192.168.1.169/32\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks\n%s\ngot:\n%s", want, out.String())
		}
	}
}

func TestScrapedFixture(t *testing.T) {
	path := filepath.Join(sharedDir(t), "fixtures", "seed-keepalived-as-scraped.conf")
	_, d := ParseFile(path, Options{})
	errs := d.Errors()
	wantSub := map[int]string{
		15: "vrrp_instance VI_1 opened here is never closed",
		26: "virtual_ipaddress: invalid IP address '1921681169'",
		28: "virtual_server: invalid IP address '1921681169'",
	}
	for line, sub := range wantSub {
		found := false
		for _, e := range errs {
			if e.Pos.Line == line && strings.Contains(e.Message, sub) && e.Pos.File == path {
				found = true
			}
		}
		if !found {
			t.Errorf("no error at line %d containing %q; got:\n%s", line, sub, strings.Join(diagStrings(d), "\n"))
		}
	}
	for _, e := range errs {
		if strings.Contains(e.Message, "syntax error") || e.Keyword == "" {
			t.Errorf("generic error: %s", e)
		}
	}
}

// sampleErrors are the mistakes in keepalived's own samples.
var sampleErrors = map[string][]string{
	"keepalived.conf.vrrp.rules": {
		":11: static_rules: invalid to prefix '192.168.100./24'",
		":26: virtual_rules: invalid to prefix '192.168.200./24'",
	},
}

func TestKeepalivedSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(sharedDir(t), "keepalived-samples", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, d := ParseFile(f, Options{})
			errs := diagStrings(otherErrors(d))
			for i := range errs {
				errs[i] = strings.TrimPrefix(errs[i], f)
			}
			if want := sampleErrors[filepath.Base(f)]; strings.Join(errs, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
			}
			if len(c.Instances)+len(c.VirtualServers) == 0 {
				t.Error("nothing parsed")
			}
			if err := WriteSummary(&bytes.Buffer{}, c); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestConditionalSample(t *testing.T) {
	path := filepath.Join(sharedDir(t), "keepalived-samples", "keepalived.conf.conditional_conf")
	for id, prio := range map[string]int{"high": 170, "low": 85, "": 100} {
		c, d := ParseFile(path, Options{ConfigID: id})
		if errs := otherErrors(d); len(errs) > 0 {
			t.Fatalf("id %q: %v", id, errs.Err())
		}
		eq(t, "priority for id "+id, c.Instance("VI_0").Priority, prio)
		if id != "" {
			eq(t, "script for id "+id, c.Script("check_VI_0").Cmd.Cmd, "/etc/keepalived/scripts/check_"+id+"_VI_0.sh")
		}
	}
}

// otherErrors are the errors that are not govs refusing a keepalived
// option it does not implement (those are intended: see harmless.go).
func otherErrors(d Diagnostics) Diagnostics {
	var out Diagnostics
	for _, e := range d.Errors() {
		if !strings.Contains(e.Message, "keepalived option not supported by govs; refused") {
			out = append(out, e)
		}
	}
	return out
}
