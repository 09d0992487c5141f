package desired_test

import (
	"bytes"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/desired/corpus"
	"github.com/govs/govs/internal/netnstest"
)

// corpusFiles writes the generated corpus to a temporary directory and adds
// keepalived's samples and the scenario's fixtures from ../shared.
func corpusFiles(t *testing.T) []corpus.Path {
	t.Helper()
	files, err := corpus.Write(t.TempDir(), filepath.Join("..", "..", "..", "shared"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// refusal reports whether a diagnostic is govs declining something it does
// not implement (rather than finding the file wrong).
func refusal(d config.Diagnostic) bool {
	for _, s := range []string{"not supported by govs", "not balanced by the govs data plane", "not implemented by the govs data plane", "not implemented by govs", "not supported by the govs data plane",
		"is an IPVS scheduler govs does not implement", "govs does not act on", "govs does not know where to attach",
		"govs sends no e-mail alerts", "not every failed probe", "with or without fast_recovery"} {
		if strings.Contains(d.Message, s) {
			return true
		}
	}
	return false
}

// intended lists the files where govs and keepalived -t knowingly disagree,
// and why. Files where govs refuses a feature it does not implement (an
// error naming the keyword) while keepalived accepts it need no entry:
// refusal() recognises them.
var intended = map[string]string{
	// keepalived -t does not resolve conditional @id lines without -i and
	// warns about smtp_server names it cannot resolve; govs reads the file
	// as it would run it and finds nothing wrong.
	"struct-include-missing":                     "govs warns when an include matches no file; keepalived -t says nothing",
	"shared-keepalived.conf.vrrp":                "govs warns about a VIP listed twice in one instance; keepalived -t says nothing",
	"shared-keepalived.conf.misc_check":          "govs warns whenever scripts run as root without enable_script_security; keepalived 2.2.7 only for some script kinds",
	"shared-keepalived.conf.vrrp.scripts":        "as shared-keepalived.conf.misc_check",
	"vs-persistence_granularity_255.255.0":       "govs refuses a three-part netmask; keepalived reads it with inet_aton as 255.255.0.0",
	"global-lvs_sync_daemon_eth0_VI_9":           "govs warns that connection sync is off when its instance is missing; keepalived -t says nothing and runs without it too",
	"struct-group-undefined":                     "govs warns that a virtual_server naming an undefined group is ignored; keepalived -t says nothing and ignores it too",
	"instance-track_interface_eth0_weight":       "keepalived ignores tracking the instance's own interface; govs tracks it (its state is the instance's own)",
	"script-user_nobody":                         "keepalived 2.2.7's -t is killed by SIGTERM (exit 143, no message) when a vrrp_script has a user; govs runs the script as that user",
	"vs-flag-1":                                  "govs warns that flag-1 means nothing to rr (IPVS ignores it); keepalived -t says nothing",
	"instance-virtual_routes_203.0.113.0_24_via": "keepalived warns it cannot track a route without dev (tracking: a route removed by someone else faults the instance); govs never tracks its routes, with or without dev, as no_track asks",
	"struct-static-routes":                       "as instance-virtual_routes_203.0.113.0_24_via",
}

// TestPrivilegedDifferentialKeepalived runs `keepalived -t` and govs's plan
// on every file of the corpus and checks they agree: a file keepalived flags
// must not pass govs silently, and a file keepalived accepts may only be
// refused by govs for something govs says it does not implement. Both run in
// a namespace whose interfaces are eth0 and eth1, so the result does not
// depend on the host's interface names.
func TestPrivilegedDifferentialKeepalived(t *testing.T) {
	netnstest.RequireRoot(t)
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived not installed (scripts/deps.sh installs it)")
	}
	ns, peer := netnstest.NewNS(t, "kt"), netnstest.NewNS(t, "kp")
	netnstest.Veth(t, ns, "eth0", peer, "eth0")
	netnstest.Veth(t, ns, "eth1", peer, "eth1")
	exists := func(name string) bool {
		var ok bool
		if err := ns.Do(func() error {
			_, err := net.InterfaceByName(name)
			ok = err == nil
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	files := corpusFiles(t)
	if len(files) < 120 {
		t.Fatalf("corpus has %d files, want at least 120", len(files))
	}
	var agree, refused, known int
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := ns.Command(bin, "-t", "-f", f.Path)
			cmd.Stdout, cmd.Stderr = &out, &out
			kerr := cmd.Run()
			var exit *exec.ExitError
			if kerr != nil && !errors.As(kerr, &exit) {
				t.Fatalf("keepalived -t: %v", kerr)
			}
			kFlags := kerr != nil
			cfg, diags := config.ParseFile(f.Path, config.Options{})
			plan := desired.Build(cfg, diags, desired.Options{InterfaceExists: exists})
			var own []config.Diagnostic
			for _, d := range plan.Diagnostics {
				if !refusal(d) {
					own = append(own, d)
				}
			}
			gFlags := len(plan.Diagnostics) > 0
			if why, ok := intended[f.Name]; ok {
				known++
				t.Logf("intended difference: %s", why)
				return
			}
			switch {
			case kFlags && !gFlags:
				t.Errorf("keepalived -t flags the file, govs says nothing:\n%s", out.String())
			case !kFlags && len(own) > 0:
				t.Errorf("keepalived -t accepts the file, govs flags it:\n%v", own)
			case !kFlags && gFlags:
				refused++
			default:
				agree++
			}
		})
	}
	t.Logf("%d files: %d agree, %d refused by govs as not implemented, %d intended differences", len(files), agree, refused, known)
}
