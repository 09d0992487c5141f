package check

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

var rsAddr = netip.MustParseAddrPort("198.18.0.2:8080")

func TestResolveDefaults(t *testing.T) {
	tests := []struct {
		spec       Spec
		vsLoop     time.Duration
		wantRetry  int
		wantDBR    time.Duration
		wantWarmup time.Duration
		wantLoop   time.Duration
		wantTarget string
	}{
		{Spec{Type: TCP}, 0, 1, time.Second, 60 * time.Second, 60 * time.Second, "198.18.0.2:8080"},
		{Spec{Type: TCP, ConnectPort: 80, ConnectIP: netip.MustParseAddr("198.18.0.9")}, 6 * time.Second, 1, time.Second, 6 * time.Second, 6 * time.Second, "198.18.0.9:80"},
		{Spec{Type: HTTP, URLs: []URL{{Path: "/"}}}, 6 * time.Second, 1, 3 * time.Second, 6 * time.Second, 6 * time.Second, "198.18.0.2:8080"},
		{Spec{Type: SSL, URLs: []URL{{}}, DelayLoop: 2 * time.Second}, 6 * time.Second, 1, 3 * time.Second, 2 * time.Second, 2 * time.Second, "198.18.0.2:8080"},
		{Spec{Type: DNS}, 10 * time.Second, 3, 10 * time.Second, 10 * time.Second, 10 * time.Second, "198.18.0.2:8080"},
		{Spec{Type: Misc, MiscPath: Script{Command: "/bin/true"}}, 5 * time.Second, 0, time.Second, 5 * time.Second, 5 * time.Second, "198.18.0.2:8080"},
		{Spec{Type: TCP, Retry: ptr(0), DelayBeforeRetry: ptr(7 * time.Second), Warmup: ptr(time.Duration(0))}, 5 * time.Second, 0, 7 * time.Second, 0, 5 * time.Second, "198.18.0.2:8080"},
	}
	for _, tt := range tests {
		r, err := resolve(tt.spec, rsAddr, tt.vsLoop)
		if err != nil {
			t.Errorf("%s: %v", tt.spec.Type, err)
			continue
		}
		if r.retry != tt.wantRetry || r.dbr != tt.wantDBR || r.warmup != tt.wantWarmup || r.DelayLoop != tt.wantLoop || r.target.String() != tt.wantTarget {
			t.Errorf("%s: retry %d dbr %v warmup %v loop %v target %v; want %d %v %v %v %v", tt.spec.Type,
				r.retry, r.dbr, r.warmup, r.DelayLoop, r.target, tt.wantRetry, tt.wantDBR, tt.wantWarmup, tt.wantLoop, tt.wantTarget)
		}
		if r.ConnectTimeout != 5*time.Second {
			t.Errorf("%s: connect_timeout %v, want 5s", tt.spec.Type, r.ConnectTimeout)
		}
	}
	r, err := resolve(Spec{Type: Misc, MiscPath: Script{Command: "/bin/true"}}, rsAddr, 9*time.Second)
	if err != nil || r.MiscTimeout != 9*time.Second {
		t.Errorf("misc_timeout default = %v (%v), want delay_loop 9s", r.MiscTimeout, err)
	}
	r, _ = resolve(Spec{Type: SMTP}, netip.MustParseAddrPort("198.18.0.2:0"), 0)
	if r.HELOName != DefaultHELO || r.target.Port() != 25 {
		t.Errorf("SMTP defaults: helo %q port %d", r.HELOName, r.target.Port())
	}
}

func TestResolveErrors(t *testing.T) {
	bad := []struct {
		spec Spec
		want string
	}{
		{Spec{Type: "FOO_CHECK"}, "unknown checker type"},
		{Spec{Type: HTTP}, "at least one url"},
		{Spec{Type: HTTP, URLs: []URL{{Digest: "xyz"}}}, "32 hex digits"},
		{Spec{Type: HTTP, URLs: []URL{{StatusCodes: []StatusRange{{Lo: 300, Hi: 200}}}}}, "bad status_code"},
		{Spec{Type: HTTP, URLs: []URL{{}}, HTTPProtocol: "2"}, "http_protocol"},
		{Spec{Type: DNS, DNSType: "PTR"}, "not A, NS"},
		{Spec{Type: Misc}, "misc_path"},
		{Spec{Type: Misc, MiscPath: Script{Command: `"unterminated`}}, "unterminated"},
		{Spec{Type: UDP, ReplyPattern: "zz"}, "bad digit"},
		{Spec{Type: TCP, Retry: ptr(-1)}, "negative"},
	}
	for _, tt := range bad {
		_, err := resolve(tt.spec, rsAddr, 0)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("resolve(%+v) = %v, want error containing %q", tt.spec, err, tt.want)
		}
	}
	if _, err := resolve(Spec{Type: TCP}, netip.MustParseAddrPort("198.18.0.2:0"), 0); err == nil {
		t.Error("TCP_CHECK without any port accepted")
	}
}

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/bin/check", []string{"/bin/check"}},
		{`/bin/check "a b" c`, []string{"/bin/check", "a b", "c"}},
		{`/bin/check 'it''s' x\ y`, []string{"/bin/check", "its", "x y"}},
		{`  /x   ""  `, []string{"/x", ""}},
	}
	for _, tt := range tests {
		got, err := SplitCommand(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "  ", `'open`, `end\`} {
		if _, err := SplitCommand(in); err == nil {
			t.Errorf("SplitCommand(%q) accepted", in)
		}
	}
}

func TestParseHex(t *testing.T) {
	// The example of keepalived.conf(5).
	got, err := ParseHex("Ab12f 3 456 546443123")
	want := []byte{0xAB, 0x12, 0x0F, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ParseHex = % x, %v; want % x", got, err, want)
	}
	v, m, err := parseHexPattern("1x x2")
	if err != nil || !bytes.Equal(v, []byte{0x10, 0x02}) || !bytes.Equal(m, []byte{0xf0, 0x0f}) {
		t.Fatalf("parseHexPattern wildcards = % x / % x, %v", v, m, err)
	}
	if _, err := ParseHex("1x"); err == nil {
		t.Fatal("ParseHex accepted a wildcard")
	}
}

// FuzzParseStrings feeds arbitrary script lines and hex strings to the
// parsers: they must return an error, never panic.
func FuzzParseStrings(f *testing.F) {
	for _, s := range []string{"/bin/check 'a b' \"c\"", "Ab12f 3 456 546443123", "x\\", "1x X2", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if words, err := SplitCommand(s); err == nil && len(words) == 0 {
			t.Fatalf("SplitCommand(%q) returned no words and no error", s)
		}
		if v, m, err := parseHexPattern(s); err == nil && len(v) != len(m) {
			t.Fatalf("parseHexPattern(%q): %d values, %d masks", s, len(v), len(m))
		}
	})
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{Type: TCP, ConnectPort: 80}, "TCP_CHECK 198.18.0.2:80 every 6s, retry 1 after 1s, timeout 5s"},
		{Spec{Type: HTTP, URLs: []URL{{Path: "/health", Digest: "9B3A0C85A887A256D6939DA88AABD8CD"}, {Path: "/", StatusCodes: []StatusRange{{Lo: 200, Hi: 200}, {Lo: 500, Hi: 599}}}}},
			"HTTP_GET 198.18.0.2:8080 GET /health (200-299, digest 9b3a0c85…) GET / (200 500-599) every 6s, retry 1 after 3s, timeout 5s"},
		{Spec{Type: Misc, MiscPath: Script{Command: "/usr/local/bin/chk"}, MiscDynamic: true, Alpha: true},
			"MISC_CHECK /usr/local/bin/chk dynamic every 6s, retry 0, timeout 6s, alpha"},
		{Spec{Type: DNS, DNSName: "example.test"}, "DNS_CHECK 198.18.0.2:8080 SOA example.test every 6s, retry 3 after 6s, timeout 5s"},
	}
	for _, tt := range tests {
		got, err := Describe(tt.spec, rsAddr, 6*time.Second)
		if err != nil || got != tt.want {
			t.Errorf("Describe = %q, %v\nwant       %q", got, err, tt.want)
		}
	}
	if _, err := Describe(Spec{Type: HTTP}, rsAddr, 0); err == nil {
		t.Error("Describe accepted an HTTP_GET without url")
	}
}
