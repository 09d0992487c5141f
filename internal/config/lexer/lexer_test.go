package lexer

import (
	"strings"
	"testing"

	"github.com/govs/govs/internal/config/diag"
)

// render prints lines as "LINE: tok tok ..." with quoted tokens in quotes,
// so expectations read like the input.
func render(lines []Line) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Pos.String())
		b.WriteString(":")
		for _, t := range l.Tokens {
			b.WriteByte(' ')
			if t.Quoted {
				b.WriteString(`"` + t.Text + `"`)
			} else {
				b.WriteString(t.Text)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func renderDiags(l diag.List) string {
	var out []string
	for _, d := range l {
		out = append(out, d.String())
	}
	return strings.Join(out, "\n")
}

func TestLexString(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		configID string
		want     string
		diags    string
	}{
		{
			name: "comments",
			src:  "! bang comment\n# hash comment\nweight 1 ! trailing\ninhibit_on_failure # also\n   \n",
			want: "f:3: weight 1\nf:4: inhibit_on_failure\n",
		},
		{
			name: "quoted strings keep spaces and comment characters",
			src:  `script "killall -0 sshd # not a comment" # comment` + "\n" + `notify "a \"b\" c"`,
			want: "f:1: script \"killall -0 sshd # not a comment\"\nf:2: notify \"a \"b\" c\"\n",
		},
		{
			name: "braces are tokens even when glued",
			src:  "group{\nVI_1\n}\ntrack_script { chk }",
			want: "f:1: group {\nf:2: VI_1\nf:3: }\nf:4: track_script { chk }\n",
		},
		{
			name: "CRLF line endings",
			src:  "a 1\r\nb 2\r\n",
			want: "f:1: a 1\nf:2: b 2\n",
		},
		{
			name:     "conditional lines",
			src:      "@high priority 170\n@low priority 85\n@^high weight 1\n@^low weight 2\nstate BACKUP",
			configID: "high",
			want:     "f:1: priority 170\nf:4: weight 2\nf:5: state BACKUP\n",
		},
		{
			name: "conditional lines without config id",
			src:  "@high priority 170\n@^high priority 1\n",
			want: "f:2: priority 1\n",
		},
		{
			name: "parameters",
			src:  "$PRIO=150\n$NET=10.2\npriority $PRIO\naddr ${NET}.0.1/24\nkeep $UNDEFINED ${ALSO}\ncost $PRIOx",
			want: "f:3: priority 150\nf:4: addr 10.2.0.1/24\nf:5: keep $UNDEFINED ${ALSO}\nf:6: cost $PRIOx\n",
		},
		{
			name: "substitution happens at use time and recursively",
			src:  "$BASE=10.2.${SUB}\n$SUB=0\n${BASE}.100/32\n$SUB=10\n${BASE}.100/32",
			want: "f:3: 10.2.0.100/32\nf:5: 10.2.10.100/32\n",
		},
		{
			name:     "conditional definitions",
			src:      "@main $P=240\n@backup $P=200\npriority $P",
			configID: "backup",
			want:     "f:3: priority 200\n",
		},
		{
			name:     "substituted conditional",
			src:      "$IF_MAIN=@main\n$IF_MAIN priority 240\n$IF_MAIN priority 241",
			configID: "main",
			want:     "f:2: priority 240\nf:3: priority 241\n",
		},
		{
			name: "predefined parameters",
			src:  "a ${_HASH}x ${_BANG}y\nb ${_PWD}/s.sh",
			want: "f:1: a #x !y\nf:2: b ./s.sh\n",
		},
		{
			name: "multi-line definition",
			src:  "$VI= \\\nvrrp_instance VI_${N} { \\\n\n  priority 1${N} \\\n}\n$N=0\n$VI\n$N=1\n$VI\n",
			want: "f:7: vrrp_instance VI_0 {\nf:7: priority 10\nf:7: }\nf:9: vrrp_instance VI_1 {\nf:9: priority 11\nf:9: }\n",
		},
		{
			name:     "conditional multi-line definition",
			src:      "@a $X= \\\nA 1 \\\nA 2\n@b $X= \\\nB 1\n$X\n",
			configID: "a",
			want:     "f:6: A 1\nf:6: A 2\n",
		},
		{
			name:  "self reference does not hang",
			src:   "$A=x $A \nv $A \n",
			diags: "f:2: parameter substitution does not terminate (self-referencing definition?)",
		},
		{
			name:  "unterminated quote",
			src:   `script "abc`,
			want:  "f:1: script \"abc\"\n",
			diags: "f:1: unterminated quoted string",
		},
		{
			name:  "unterminated multi-line definition",
			src:   "$X= \\\na \\\n",
			diags: "f:1: multi-line definition of $X is not terminated (last line ends with '\\')",
		},
		{
			name: "names are found up to the longest one defined",
			src:  "$LONG_NAME=v\n$LONG_NAME ${LONG_NAME} $LONG_NAMEX ${LONG_NAME_LONGER} $$$",
			want: "f:2: v v $LONG_NAMEX ${LONG_NAME_LONGER} $$$\n",
		},
		{
			name:  "sequence blocks are reported",
			src:   "~SEQ(N, 0, 3) ip_address 10.0.${N}.1",
			diags: "f:1: warning: ~SEQ blocks are not supported by govs; line ignored",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines, diags := LexString("f", tt.src, Options{FS: MapFS{}, ConfigID: tt.configID})
			if got := render(lines); got != tt.want {
				t.Errorf("lines:\n%s\nwant:\n%s", got, tt.want)
			}
			if got := renderDiags(diags); got != tt.diags {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", got, tt.diags)
			}
		})
	}
}

func TestInclude(t *testing.T) {
	fsys := MapFS{
		"/etc/k/keepalived.conf": "global_defs {\n}\ninclude conf.d/*.conf\ninclude /etc/k/abs.conf\ninclude none/*.conf\n",
		"/etc/k/conf.d/b.conf":   "vrrp_instance B {\n}\n",
		"/etc/k/conf.d/a.conf":   "vrrp_instance A {\n}\ninclude ../sub/x.conf\n",
		"/etc/k/conf.d/skip.txt": "not included\n",
		"/etc/k/sub/x.conf":      "x ${_PWD}\n",
		"/etc/k/abs.conf":        "abs 1\n",
	}
	lines, diags := LexFile("/etc/k/keepalived.conf", Options{FS: fsys})
	want := "/etc/k/keepalived.conf:1: global_defs {\n" +
		"/etc/k/keepalived.conf:2: }\n" +
		"/etc/k/conf.d/a.conf:1: vrrp_instance A {\n" +
		"/etc/k/conf.d/a.conf:2: }\n" +
		"/etc/k/sub/x.conf:1: x /etc/k/sub\n" +
		"/etc/k/conf.d/b.conf:1: vrrp_instance B {\n" +
		"/etc/k/conf.d/b.conf:2: }\n" +
		"/etc/k/abs.conf:1: abs 1\n"
	if got := render(lines); got != want {
		t.Errorf("lines:\n%s\nwant:\n%s", got, want)
	}
	wantDiags := `/etc/k/keepalived.conf:5: warning: include: no file matches "none/*.conf"`
	if got := renderDiags(diags); got != wantDiags {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", got, wantDiags)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name string
		fsys MapFS
		want string
	}{
		{
			name: "missing file",
			fsys: MapFS{"/k.conf": "a 1\ninclude other.conf\n"},
			want: "/k.conf:2: cannot read configuration file /other.conf: file does not exist",
		},
		{
			name: "missing name",
			fsys: MapFS{"/k.conf": "include\n"},
			want: "/k.conf:1: include: missing file name",
		},
		{
			name: "loop",
			fsys: MapFS{"/k.conf": "include k.conf\n"},
			want: "/k.conf:1: include: nested deeper than 3 files (include loop? /k.conf -> /k.conf -> /k.conf -> /k.conf)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := LexFile("/k.conf", Options{FS: tt.fsys, MaxIncludeDepth: 3})
			if got := renderDiags(diags); got != tt.want {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", got, tt.want)
			}
			if !diags.HasErrors() {
				t.Error("HasErrors() = false")
			}
		})
	}
}

func TestMissingTopFile(t *testing.T) {
	_, diags := LexFile("/nope.conf", Options{FS: MapFS{}})
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "/nope.conf") {
		t.Fatalf("diagnostics = %v", diags)
	}
}

// TestManyDollarsExpandInLinearTime: a definition that expands to a line of
// 64 Ki '$' (from a 147-byte file) is read at once; scanning to the end of
// the line after each '$' once took minutes.
func TestManyDollarsExpandInLinearTime(t *testing.T) {
	src := "$B=" + strings.Repeat("$", 32) + "\n$C=" + strings.Repeat("${B}", 8) + "\n$D=" + strings.Repeat("${C}", 8) +
		"\n$E=" + strings.Repeat("${D}", 8) + "\n$F=" + strings.Repeat("${E}", 4) + "\n$F\n"
	lines, _ := LexString("f", src, Options{FS: MapFS{}})
	if len(lines) != 1 || len(lines[0].Tokens) != 1 || len(lines[0].Tokens[0].Text) != 1<<16 {
		t.Fatalf("got %d lines", len(lines))
	}
}
