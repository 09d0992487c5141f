package metrics

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/govs/govs/internal/status"
)

// monitoring holds the alert rules and the dashboard the package ships.
var monitoring = filepath.Join("..", "..", "packaging", "monitoring")

// TestAlertRules checks the shipped alert rules with promtool and runs
// their unit tests (split brain, no master, a real server down, every real
// server down, a refused reload, BGP down, and that healthy series fire
// nothing).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool (Debian's prometheus) is not installed; scripts/deps.sh installs it")
	}
	for _, args := range [][]string{{"check", "rules", "govs-alerts.yml"}, {"test", "rules", "govs-alerts-test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = monitoring
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// scrapedNames are the metric names a daemon with every part running
// (services, VRRP, sync, BGP) exports.
func scrapedNames(t *testing.T) map[string]bool {
	t.Helper()
	s := snapshot()
	s.BGP = &status.BGP{LocalAS: 65001, RouterID: netip.MustParseAddr("198.18.0.2"),
		Peers:     []status.BGPPeer{{Addr: netip.MustParseAddr("198.18.0.1"), RemoteAS: 65000, State: "established", Established: true}},
		Announced: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/32")}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(func() status.Snapshot { return s }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\bgovs_[a-z0-9_]+`)

// TestDashboardAndRulesUseRealMetrics: the Grafana dashboard is valid JSON
// with queries, and every govs metric its queries and the alert rules name
// is one a daemon exports.
func TestDashboardAndRulesUseRealMetrics(t *testing.T) {
	names := scrapedNames(t)
	b, err := os.ReadFile(filepath.Join(monitoring, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) < 10 {
		t.Fatalf("dashboard %q has %d panels", dash.Title, len(dash.Panels))
	}
	check := func(where, expr string) {
		used := metricName.FindAllString(expr, -1)
		if len(used) == 0 {
			t.Errorf("%s: query %q names no govs metric", where, expr)
		}
		for _, m := range used {
			if !names[m] {
				t.Errorf("%s: %s is not a metric govs exports (query %q)", where, m, expr)
			}
		}
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok && metricName.MatchString(q) {
			check("variable", q)
		}
	}
	rules, err := os.ReadFile(filepath.Join(monitoring, "govs-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metricName.FindAllString(string(rules), -1) {
		if !names[m] {
			t.Errorf("alert rules: %s is not a metric govs exports", m)
		}
	}
}
