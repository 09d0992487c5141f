package desired_test

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/desired"
)

var updateKeywords = flag.Bool("update", false, "rewrite the keyword table of docs/config.md from what govs does")

const (
	keywordDoc   = "../../docs/config.md"
	keywordBegin = "<!-- keywords:begin -->"
	keywordEnd   = "<!-- keywords:end -->"
)

// keywordRow is one row of the keyword table: where a keyword goes, an
// example line, and what govs does with it.
type keywordRow struct {
	context, keyword, example, verdict, why string
}

// context is a configuration with one block left open for the example:
// before + block lines + example + after. Block lines starting with the
// example's keyword are dropped, so an example replaces a required line
// (state, priority, ...) instead of repeating it.
type context struct {
	before string
	block  []string
	after  string
}

const instanceTail = `
virtual_server 198.18.0.100 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`

var instanceLines = []string{"state MASTER", "interface eth0", "virtual_router_id 51", "priority 100", "advert_int 1",
	"authentication {\n        auth_type PASS\n        auth_pass s3cret\n    }", "virtual_ipaddress {\n        198.18.0.100\n    }"}

const security = "global_defs {\n    enable_script_security\n    script_user root\n}\n"

// instance is VI_1's block and a vrrp_script it may track.
func instance(lines []string) string {
	return "vrrp_script chk {\n    script \"/bin/true\"\n}\nvrrp_instance VI_1 {\n    " + strings.Join(lines, "\n    ") + "\n}\n"
}

func vsContext(rsBlock []string, rsAfter string) context {
	return context{
		before: security + instance(instanceLines) +
			"virtual_server 198.18.0.100 80 {\n    delay_loop 6\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n",
		block: rsBlock,
		after: rsAfter + "    }\n}\n",
	}
}

// contexts are clean configurations (scripts allowed to run as root, as
// keepalived wants them) with one place for the example.
var contexts = map[string]context{
	"top": {before: security + instance(instanceLines) + instanceTail},
	// Without authentication, which VRRPv3 (vrrp_version 3) does not have.
	"global_defs": {before: "global_defs {\n", block: []string{"router_id lb1", "enable_script_security", "script_user root"},
		after: "}\n" + instance(slices.Delete(slices.Clone(instanceLines), 5, 6)) + instanceTail},
	// A BACKUP, so that nopreempt and preempt_delay apply.
	"vrrp_instance": {before: security + "vrrp_script chk {\n    script \"/bin/true\"\n}\nvrrp_instance VI_1 {\n",
		block: append([]string{"state BACKUP"}, instanceLines[1:]...), after: "}\n" + instanceTail},
	"authentication": {before: security + "vrrp_instance VI_1 {\n    " + strings.Join(instanceLines[:5], "\n    ") + "\n    virtual_ipaddress {\n        198.18.0.100\n    }\n    authentication {\n",
		block: []string{"auth_type PASS", "auth_pass s3cret"}, after: "}\n}\n" + instanceTail},
	"virtual_ipaddress": {before: security + "vrrp_instance VI_1 {\n    " + strings.Join(instanceLines[:6], "\n    ") + "\n    virtual_ipaddress {\n",
		after: "}\n}\n" + instanceTail},
	"vrrp_script": {before: security + "vrrp_script chk {\n", block: []string{`script "/bin/true"`, "interval 2"},
		after: "}\nvrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    track_script {\n        chk\n    }\n}\n" + instanceTail},
	"track_script": {before: security + "vrrp_script chk {\n    script \"/bin/true\"\n}\nvrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    track_script {\n",
		after: "}\n}\n" + instanceTail},
	"vrrp_sync_group": {before: security + instance(instanceLines) +
		"vrrp_instance VI_2 {\n    " + strings.ReplaceAll(strings.ReplaceAll(strings.Join(instanceLines, "\n    "), "51", "52"), "198.18.0.100", "198.18.0.101") + "\n}\n" +
		"vrrp_sync_group G1 {\n", block: []string{"group {\n        VI_1\n        VI_2\n    }"}, after: "}\n" + instanceTail},
	"virtual_server_group": {before: security + instance(instanceLines) + "virtual_server_group G1 {\n", block: []string{"198.18.0.100 80"},
		after: "}\n" + strings.Replace(instanceTail, "virtual_server 198.18.0.100 80", "virtual_server group G1", 1)},
	"govs_bgp": {before: security + instance(instanceLines) + instanceTail + "govs_bgp {\n",
		block: []string{"router_id 198.18.0.2", "local_as 65001", "neighbor 198.18.0.1 {\n        remote_as 65000\n    }"}, after: "}\n"},
	"neighbor": {before: security + instance(instanceLines) + instanceTail + "govs_bgp {\n    router_id 198.18.0.2\n    local_as 65001\n    neighbor 198.18.0.1 {\n",
		block: []string{"remote_as 65000"}, after: "    }\n}\n"},
	"local_address_group": {before: security + instance(instanceLines) + "local_address_group L1 {\n", block: []string{"198.18.1.201"},
		after: "}\n" + strings.Replace(instanceTail, "lb_kind DR", "lb_kind FNAT\n    laddr_group_name L1", 1)},
	"virtual_server FNAT": {before: security + instance(instanceLines) + "local_address_group L1 {\n    198.18.1.201\n}\nvirtual_server 198.18.0.100 80 {\n",
		block: append([]string{"delay_loop 6", "lb_algo rr", "lb_kind FNAT", "protocol TCP"}, vsLines[4]), after: "}\n"},
	"virtual_server": {before: security + instance(instanceLines) + "virtual_server 198.18.0.100 80 {\n",
		block: append(slices.Clone(vsLines), "real_server 198.18.0.12 80 {\n        weight 1\n    }"),
		after: "}\n"},
	// sorry_server's options need it first.
	"virtual_server with sorry_server": {before: security + instance(instanceLines) + "virtual_server 198.18.0.100 80 {\n",
		block: append(slices.Clone(vsLines), "sorry_server 198.18.0.13 80"), after: "}\n"},
	"real_server":     vsContext([]string{"weight 1", "TCP_CHECK {\n            connect_timeout 3\n        }"}, ""),
	"TCP_CHECK":       vsContext([]string{"TCP_CHECK {", "    connect_timeout 3"}, "        }\n"),
	"HTTP_GET":        vsContext([]string{"HTTP_GET {", "    url {\n                path /\n            }"}, "        }\n"),
	"url":             vsContext([]string{"HTTP_GET {", "    url {", "        path /"}, "            }\n        }\n"),
	"MISC_CHECK":      vsContext([]string{"MISC_CHECK {", "    misc_path /bin/true"}, "        }\n"),
	"DNS_CHECK":       vsContext([]string{"DNS_CHECK {"}, "        }\n"),
	"SMTP_CHECK":      vsContext([]string{"SMTP_CHECK {"}, "        }\n"),
	"UDP_CHECK":       vsContext([]string{"UDP_CHECK {"}, "        }\n"),
	"lvs_sync_daemon": {before: "global_defs {\n", after: "}\n" + instance(instanceLines) + instanceTail},
	"virtual_routes": {before: security + "vrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    virtual_routes {\n",
		block: []string{"203.0.113.0/24 via 198.18.0.1"}, after: "}\n}\n" + instanceTail},
	"static_routes": {before: security + instance(instanceLines) + instanceTail + "static_routes {\n",
		block: []string{"203.0.113.0/24 via 198.18.0.1"}, after: "}\n"},
	"track_file": {before: security + "track_file w {\n", block: []string{"file /run/govs/w"},
		after: "}\nvrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    track_file {\n        w\n    }\n}\n" + instanceTail},
	"vrrp_track_file": {before: security + "vrrp_track_file w {\n", block: []string{"file /run/govs/w"},
		after: "}\nvrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    track_file {\n        w\n    }\n}\n" + instanceTail},
	"vrrp_instance track_file": {before: security + "track_file w {\n    file /run/govs/w\n}\nvrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    track_file {\n",
		block: []string{"w"}, after: "}\n}\n" + instanceTail},
	"vrrp_sync_group track_file": {before: security + "track_file w {\n    file /run/govs/w\n}\n" + instance(instanceLines) +
		"vrrp_instance VI_2 {\n    " + strings.ReplaceAll(strings.ReplaceAll(strings.Join(instanceLines, "\n    "), "51", "52"), "198.18.0.100", "198.18.0.101") + "\n}\n" +
		"vrrp_sync_group G1 {\n    group {\n        VI_1\n        VI_2\n    }\n    track_file {\n", block: []string{"w"}, after: "}\n}\n" + instanceTail},
	"virtual_rules": {before: security + "vrrp_instance VI_1 {\n    " + strings.Join(instanceLines, "\n    ") + "\n    virtual_rules {\n",
		block: []string{"from 198.18.0.100 table 100"}, after: "}\n}\n" + instanceTail},
	"static_rules": {before: security + instance(instanceLines) + instanceTail + "static_rules {\n",
		block: []string{"from 198.18.0.200 table 100"}, after: "}\n"},
	"static_ipaddress": {before: security + instance(instanceLines) + instanceTail + "static_ipaddress {\n",
		block: []string{"198.18.0.200/24 dev eth0"}, after: "}\n"},
}

var vsLines = []string{"delay_loop 6", "lb_algo rr", "lb_kind DR", "protocol TCP",
	"real_server 198.18.0.11 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }"}

// render places example in the context. An example "KEYWORD ... { ... }"
// stands for the context's own block: the context is rendered as it is.
func (c context) render(example string) string {
	self := strings.HasSuffix(example, "{ ... }")
	first := strings.Fields(example)[0]
	var b strings.Builder
	b.WriteString(c.before)
	for _, l := range c.block {
		if f := strings.Fields(l); !self && len(f) > 0 && f[0] == first {
			continue
		}
		b.WriteString("    " + l + "\n")
	}
	if !self {
		b.WriteString("    " + example + "\n")
	}
	b.WriteString(c.after)
	return b.String()
}

// verdict is what govs does with a configuration compared with the
// context's own: the new diagnostics' messages, errors first.
func verdict(c context, example string) (string, string) {
	diags := func(src string) []config.Diagnostic {
		cfg, d := config.ParseString("k.conf", src, config.Options{})
		return desired.Build(cfg, d, desired.Options{}).Diagnostics
	}
	base := map[string]bool{}
	for _, d := range diags(c.render("router_id_placeholder_never_a_keyword")) {
		if !strings.Contains(d.Message, "router_id_placeholder_never_a_keyword") {
			base[d.Message] = true
		}
	}
	var errs, warns []string
	for _, d := range diags(c.render(example)) {
		if base[d.Message] {
			continue
		}
		m := strings.ReplaceAll(strings.ReplaceAll(d.Message, "|", `\|`), "\n", "; ")
		if d.Severity == config.SeverityError {
			errs = appendNew(errs, m)
		} else {
			warns = appendNew(warns, m)
		}
	}
	switch {
	case len(errs) > 0:
		return "error", strings.Join(errs, "; ")
	case len(warns) > 0:
		return "warning", strings.Join(warns, "; ")
	}
	return "acted on", ""
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// notKeywords are string cases of the parser that are values, not
// keywords (boolean spellings, lb_kind values).
var notKeywords = map[string]bool{"on": true, "true": true, "yes": true, "1": true, "off": true, "false": true,
	"no": true, "0": true, "DR": true, "TUN": true, "NAT": true}

// parserKeywords lists every keyword internal/config recognises: the string
// cases and comparisons of its builders and the entries of its keyword sets
// (the ignored and harmless ones).
func parserKeywords(t *testing.T) map[string]bool {
	t.Helper()
	fs := token.NewFileSet()
	files, err := filepath.Glob("../config/*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	add := func(e ast.Expr) {
		if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			if s, err := strconv.Unquote(bl.Value); err == nil && !notKeywords[s] {
				out[s] = true
			}
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fs, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				// The summary printer and model's String methods name
				// keywords too, but do not parse them.
				if n.Recv != nil {
					if star, ok := n.Recv.List[0].Type.(*ast.StarExpr); !ok || fmt.Sprint(star.X) != "builder" {
						return false
					}
				} else if !strings.HasPrefix(n.Name.Name, "parse") {
					return false
				}
			case *ast.CaseClause:
				for _, e := range n.List {
					add(e)
				}
			case *ast.BinaryExpr:
				if sel, ok := n.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "Keyword" && (n.Op == token.EQL || n.Op == token.NEQ) {
					add(n.Y)
				}
			case *ast.ValueSpec:
				// var ignoredX = set(...) and map literals of keywords.
				for i, name := range n.Names {
					if !strings.HasPrefix(name.Name, "ignored") && name.Name != "harmless" && name.Name != "checkerTypes" && name.Name != "schedulerFlags" {
						continue
					}
					if i >= len(n.Values) {
						continue
					}
					switch v := n.Values[i].(type) {
					case *ast.CallExpr:
						for _, a := range v.Args {
							add(a)
						}
					case *ast.CompositeLit:
						for _, el := range v.Elts {
							if kv, ok := el.(*ast.KeyValueExpr); ok {
								add(kv.Key)
							}
						}
					}
				}
			}
			return true
		})
	}
	return out
}

// readKeywordTable reads the generated table of docs/config.md and the
// text around it.
func readKeywordTable(t *testing.T) (before, after string, rows []keywordRow) {
	t.Helper()
	b, err := os.ReadFile(keywordDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, keywordBegin), strings.Index(doc, keywordEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no %s ... %s section", keywordDoc, keywordBegin, keywordEnd)
	}
	before, after = doc[:i+len(keywordBegin)], doc[j:]
	for _, line := range strings.Split(doc[i+len(keywordBegin):j], "\n") {
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| context") {
			continue
		}
		cells := splitRow(line)
		if len(cells) != 5 {
			t.Fatalf("keyword table row %q has %d cells, want 5", line, len(cells))
		}
		rows = append(rows, keywordRow{cells[0], strings.Trim(cells[1], "`"), strings.Trim(cells[2], "`"), cells[3], cells[4]})
	}
	return before, after, rows
}

// splitRow splits a markdown table row on unescaped pipes.
func splitRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' && i+1 < len(line) && line[i+1] == '|' {
			cur.WriteString(`\|`)
			i++
			continue
		}
		if line[i] == '|' {
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
			continue
		}
		cur.WriteByte(line[i])
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func formatKeywordTable(rows []keywordRow) string {
	var b strings.Builder
	b.WriteString("\n| context | keyword | example | govs | what govs says |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		ex := strings.ReplaceAll(r.example, "|", `\|`)
		fmt.Fprintf(&b, "| %s | `%s` | `%s` | %s | %s |\n", r.context, r.keyword, ex, r.verdict, r.why)
	}
	return b.String()
}

// TestKeywordTable checks docs/config.md's per-keyword table against the
// code: every keyword the parser knows has a row, and each row's verdict
// (acted on, warning, error) and message are what `govs check` gives for
// its example in its context. -update rewrites the verdicts and messages
// (and adds rows for new keywords, to be given an example by hand).
func TestKeywordTable(t *testing.T) {
	before, after, rows := readKeywordTable(t)
	known := parserKeywords(t)
	documented := map[string]bool{}
	for i, r := range rows {
		documented[r.keyword] = true
		c, ok := contexts[r.context]
		if !ok {
			t.Errorf("row %s %s: unknown context", r.context, r.keyword)
			continue
		}
		if r.example == "" || !strings.Contains(r.example, r.keyword) {
			t.Errorf("row %s %s: example %q does not use the keyword", r.context, r.keyword, r.example)
			continue
		}
		v, why := verdict(c, r.example)
		if *updateKeywords {
			rows[i].verdict, rows[i].why = v, why
			continue
		}
		if v != r.verdict || why != r.why {
			t.Errorf("%s `%s`: documented %s (%s), govs gives %s (%s)", r.context, r.example, r.verdict, r.why, v, why)
		}
	}
	var missing []string
	for k := range known {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	if *updateKeywords {
		for _, k := range missing {
			rows = append(rows, keywordRow{context: "top", keyword: k, example: k, verdict: "?", why: "needs a context and an example"})
		}
		if err := os.WriteFile(keywordDoc, []byte(before+formatKeywordTable(rows)+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if len(missing) > 0 {
		t.Errorf("keywords the parser knows without a row in %s: %v (go test ./internal/desired -run TestKeywordTable -update adds them)", keywordDoc, missing)
	}
	if len(rows) < 200 {
		t.Errorf("only %d keywords documented", len(rows))
	}
}
