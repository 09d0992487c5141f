package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func writeConf(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckCommand(t *testing.T) {
	good := writeConf(t, `global_defs {
  router_id d1
  govs_xdp_interface eth0
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    198.18.0.100/24 dev eth0
  }
@d2 priority 100
}
virtual_server 198.18.0.100 80 {
  lb_algo wrr
  lb_kind DR
  protocol TCP
  persistence_timeout 50
  real_server 198.18.0.21 80 {
    weight 3
    HTTP_GET {
      url {
        path /health
        status_code 200
      }
    }
  }
  real_server 198.18.0.22 80 {
    TCP_CHECK {
    }
  }
}
`)
	bad := writeConf(t, "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 300\n  wibble\n}\nvirtual_server 198.18.0.300 80 {\n}\n")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		stdoutNone bool
	}{
		{
			name: "valid configuration",
			args: []string{"check", "--any-host", "-f", good, "-i", "d1"},
			code: 0,
			stdout: []string{
				"global: router_id d1, VRRP version 2, XDP on eth0\n",
				"  VI_1: BACKUP on eth0, vrid 51, priority 150, advert 1s, version 2\n    VIP 198.18.0.100/24 dev eth0\n",
				"Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
					"TCP  198.18.0.100:80 wrr persistent 50\n" +
					"  -> 198.18.0.21:80               Route   3      0          0         \n" +
					"       HTTP_GET port 80 url /health status 200 timeout 5s retry 1 delay 3s every 60s\n" +
					"  -> 198.18.0.22:80               Route   1      0          0         \n" +
					"       TCP_CHECK port 80 timeout 5s retry 1 delay 1s every 60s\n",
			},
		},
		{
			name:   "config id selects conditional lines",
			args:   []string{"check", "--any-host", "--config-id", "d2", "-f", good},
			code:   0,
			stdout: []string{"vrid 51, priority 100,"},
		},
		{
			name:       "quiet",
			args:       []string{"check", "--any-host", "-q", "-f", good},
			code:       0,
			stdoutNone: true,
		},
		{
			name: "errors and warnings, all reported",
			args: []string{"check", "--any-host", "-f", bad},
			code: 1,
			stderr: []string{
				bad + ":1: vrrp_instance VI_1: instance VI_1: no virtual_ipaddress\n",
				bad + ":4: priority: number 300 outside range [1, 255]\n",
				bad + ":5: warning: unknown keyword 'wibble' in vrrp_instance; ignored\n",
				bad + ":7: virtual_server: invalid IP address '198.18.0.300'\n",
				bad + ": 3 error(s), 1 warning(s): govs run would refuse this file\n",
			},
			stdoutNone: true,
		},
		{
			name:       "missing file",
			args:       []string{"check", "-f", filepath.Join(t.TempDir(), "nope.conf")},
			code:       1,
			stderr:     []string{"nope.conf: file does not exist"},
			stdoutNone: true,
		},
		{
			name:   "usage error",
			args:   []string{"check", "-f", good, "extra"},
			code:   2,
			stderr: []string{`unexpected argument "extra"`},
		},
		{
			name:   "unknown flag",
			args:   []string{"check", "--frobnicate"},
			code:   2,
			stderr: []string{"unknown flag: --frobnicate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if tt.stdoutNone && stdout.Len() > 0 {
				t.Errorf("unexpected stdout:\n%s", stdout.String())
			}
		})
	}
}

// sharedDir finds ../shared beside the repository root or skips.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Skipf("repository root not found at %s", dir)
	}
	shared := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("%s absent (CI puts the shared test data beside the repository)", shared)
	}
	return shared
}

func TestCheckFixtures(t *testing.T) {
	shared := sharedDir(t)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "--any-host", "-f", filepath.Join(shared, "fixtures", "seed-keepalived.conf")}, &stdout, &stderr); code != 0 {
		t.Fatalf("seed: exit %d\n%s", code, stderr.String())
	}
	if want := "TCP  192.168.1.169:80 rr\n  -> 192.168.1.166:80             Route   1 "; !strings.Contains(stdout.String(), want) {
		t.Errorf("seed summary lacks %q:\n%s", want, stdout.String())
	}
	// keepalived -t flags the same lines (the one-member sync group;
	// nb_get_retry is not a TCP_CHECK keyword in keepalived 2.2) and runs
	// the file; govs adds that it sends no mail (four keywords).
	if got := stderr.String(); strings.Count(got, "warning: nb_get_retry") != 2 || !strings.Contains(got, "only one vrrp_instance") ||
		strings.Count(got, "govs sends no e-mail alerts") != 4 || !strings.Contains(got, "usable, 7 warning(s)") {
		t.Errorf("seed: diagnostics:\n%s", got)
	}

	stdout.Reset()
	stderr.Reset()
	scraped := filepath.Join(shared, "fixtures", "seed-keepalived-as-scraped.conf")
	if code := run([]string{"check", "--any-host", "-f", scraped}, &stdout, &stderr); code != 1 {
		t.Fatalf("scraped: exit %d, want 1", code)
	}
	for _, want := range []string{
		scraped + ":15: vrrp_instance VI_1 opened here is never closed",
		scraped + ":26: virtual_ipaddress: invalid IP address '1921681169'",
		scraped + ":28: virtual_server: invalid IP address '1921681169'",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("scraped: stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	stdout.Reset()
	stderr.Reset()
	routes := filepath.Join(shared, "keepalived-samples", "keepalived.conf.vrrp.routes")
	if code := run([]string{"check", "--any-host", "-f", routes}, &stdout, &stderr); code != 0 {
		t.Fatalf("routes sample: exit %d, want 0 (static and virtual routes are carried out)\n%s", code, stderr.String())
	}
	for _, want := range []string{
		"static route 192.168.209.0/24 src 192.168.100.1 via 192.168.200.254 dev eth0\n",
		"static route 192.168.212.0/24 dev eth3 scope site\n",
		"    route 192.168.113.0/24 via 192.168.100.252 or 192.168.100.253 (while MASTER)\n",
		"    route blackhole 192.168.113.1/32 (while MASTER)\n",
		"    route 0.0.0.0/0 via 192.168.0.1 table 100 (while MASTER)\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("routes sample: the plan lacks %q:\n%s", want, stdout.String())
		}
	}

	stdout.Reset()
	stderr.Reset()
	rules := filepath.Join(shared, "keepalived-samples", "keepalived.conf.vrrp.rules")
	if code := run([]string{"check", "--any-host", "-f", rules}, &stdout, &stderr); code != 1 {
		t.Fatalf("rules sample: exit %d, want 1 (its 'to' prefixes are written wrong)\n%s", code, stderr.String())
	}
	for _, want := range []string{
		rules + ":11: static_rules: invalid to prefix '192.168.100./24'",
		rules + ":26: virtual_rules: invalid to prefix '192.168.200./24'",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("rules sample: stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestCheckInterfaces: like keepalived -t, govs check requires the
// interfaces a file names to exist on this host (govs run does too);
// --any-host checks a file meant for another host.
func TestCheckInterfaces(t *testing.T) {
	conf := func(dev string) string {
		return writeConf(t, "vrrp_instance VI_1 {\n  interface "+dev+"\n  virtual_router_id 51\n  virtual_ipaddress {\n    198.18.0.100\n  }\n}\n")
	}
	for _, c := range []struct {
		dev  string
		args []string
		code int
		want string
	}{
		{"lo", nil, 0, ""},
		{"govs-nosuch0", nil, 1, "t.conf:2: interface: interface govs-nosuch0 does not exist on this host"},
		{"govs-nosuch0", []string{"--any-host"}, 0, ""},
	} {
		var stdout, stderr bytes.Buffer
		f := conf(c.dev)
		code := run(append(append([]string{"check"}, c.args...), "-f", f), &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), strings.Replace(c.want, "t.conf", f, 1)) {
			t.Errorf("%s %v: exit %d, stderr:\n%s\nwant exit %d and %q", c.dev, c.args, code, stderr.String(), c.code, c.want)
		}
	}
}

// TestVersionFromBuildInfo: the version comes from the build information:
// the module version when there is one, else the VCS revision, with
// -dirty for a modified tree.
func TestVersionFromBuildInfo(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}}, "devel 0123456789ab-dirty go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"}}}, "devel 0123456789ab go1.26.8"},
	} {
		if got := versionOf(&c.bi); got != c.want {
			t.Errorf("versionOf(%+v) = %q, want %q", c.bi.Main, got, c.want)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"--version"}, &out, &out); code != 0 || !strings.HasPrefix(out.String(), "govs ") {
		t.Errorf("govs --version: exit %d, %q", code, out.String())
	}
}

// TestHelpAndArguments: every command's --help exits 0, `govs help CMD`
// is CMD --help, and a stray argument is an error, not ignored.
func TestHelpAndArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--help"}, 0, "Usage:\n  govs run [-f FILE] [flags]"},
		{[]string{"help", "run"}, 0, "Usage:\n  govs run [-f FILE] [flags]"},
		{[]string{"help", "check"}, 0, "Usage:\n  govs check [-f FILE] [flags]"},
		{[]string{"help", "lab", "up"}, 0, "Usage:\n  govs lab up [flags]"},
		{[]string{"run", "-f", "x.conf", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"run", "--keep-dataplane"}, 2, "--keep-dataplane needs --pin-dir"},
		{[]string{"vrrp-run"}, 2, `unknown command "vrrp-run"`},
		{[]string{"help", "nosuch"}, 2, `unknown command "nosuch"`},
		{[]string{"nosuch"}, 2, `unknown command "nosuch"`},
		{nil, 2, "Available Commands:"},
		{[]string{"lab", "frobnicate"}, 2, `unknown subcommand "frobnicate"`},
		{[]string{"list", "-Ln", "--socket", "/nonexistent/govs.sock"}, 1, "no govs daemon at /nonexistent/govs.sock"},
		{[]string{"completion", "bash"}, 0, "bash completion V2 for govs"},
	} {
		var out bytes.Buffer
		if code := run(c.args, &out, &out); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("govs %v: exit %d, output %q; want exit %d with %q", c.args, code, out.String(), c.code, c.want)
		}
	}
}
