package config

import (
	"strings"
	"testing"

	"github.com/govs/govs/internal/config/diag"
	"github.com/govs/govs/internal/config/lexer"
)

func TestBuildTree(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  string
		diags []string
	}{
		{
			name: "nested blocks",
			src:  "vrrp_instance VI_1 {\n  state MASTER\n  virtual_ipaddress {\n    10.0.0.1/24 dev eth0\n  }\n}\n",
			want: "1 vrrp_instance VI_1 {\n  2 state MASTER\n  3 virtual_ipaddress {\n    4 10.0.0.1/24 dev eth0\n  }\n}\n",
		},
		{
			name: "brace on the next line",
			src:  "global_defs\n{\n  router_id r1\n}\n",
			want: "1 global_defs {\n  3 router_id r1\n}\n",
		},
		{
			name: "one-line and glued blocks",
			src:  "vrrp_sync_group G {\ngroup{ VI_1 VI_2 }\n}\n",
			want: "1 vrrp_sync_group G {\n  2 group {\n    2 VI_1 VI_2\n  }\n}\n",
		},
		{
			name:  "stray closing brace",
			src:   "global_defs {\n}\n}\nvrrp_script s {\n}\n",
			want:  "1 global_defs {\n}\n4 vrrp_script s {\n}\n",
			diags: []string{"t.conf:3: unexpected '}' with no block open"},
		},
		{
			name:  "stray opening brace",
			src:   "global_defs {\n router_id x {\n}\n",
			want:  "1 global_defs {\n  2 router_id x {\n  }\n}\n",
			diags: []string{"t.conf:1: global_defs opened here is never closed (missing '}' before end of file)"},
		},
		{
			name: "unclosed block recovered at next top-level keyword",
			src:  "vrrp_instance VI_1 {\n  state MASTER\n  virtual_ipaddress {\n    10.0.0.1\n  }\nvirtual_server 10.0.0.1 80 {\n  lb_algo rr\n}\n",
			want: "1 vrrp_instance VI_1 {\n  2 state MASTER\n  3 virtual_ipaddress {\n    4 10.0.0.1\n  }\n}\n6 virtual_server 10.0.0.1 80 {\n  7 lb_algo rr\n}\n",
			diags: []string{
				"t.conf:1: vrrp_instance VI_1 opened here is never closed (virtual_server at line 6 is only valid at top level; missing '}')",
			},
		},
		{
			name: "two unclosed blocks",
			src:  "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight 1\nvirtual_server 10.0.0.1 81 {\n}\n",
			want: "1 virtual_server 10.0.0.1 80 {\n  2 real_server 10.0.0.2 80 {\n    3 weight 1\n  }\n}\n4 virtual_server 10.0.0.1 81 {\n}\n",
			diags: []string{
				"t.conf:2: real_server 10.0.0.2 80 opened here is never closed (virtual_server at line 4 is only valid at top level; missing '}')",
				"t.conf:1: virtual_server 10.0.0.1 80 opened here is never closed (virtual_server at line 4 is only valid at top level; missing '}')",
			},
		},
		{
			name:  "quoted top-level word is not a keyword",
			src:   "vrrp_script s {\n  script \"virtual_server\"\n}\n",
			want:  "1 vrrp_script s {\n  2 script virtual_server\n}\n",
			diags: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, d := lexer.LexString("t.conf", tt.src, lexer.Options{FS: lexer.MapFS{}})
			tree := buildTree(lines, &d)
			var b strings.Builder
			dump(tree, "", &b)
			if b.String() != tt.want {
				t.Errorf("tree:\n%s\nwant:\n%s", b.String(), tt.want)
			}
			if got := diagStrings(d); strings.Join(got, "\n") != strings.Join(tt.diags, "\n") {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.diags, "\n"))
			}
		})
	}
}

func diagStrings(l diag.List) []string {
	var out []string
	for _, d := range l {
		out = append(out, d.String())
	}
	return out
}
