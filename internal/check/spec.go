// Package check runs keepalived's health checkers (TCP_CHECK, HTTP_GET,
// SSL_GET, MISC_CHECK, DNS_CHECK, SMTP_CHECK, UDP_CHECK, PING_CHECK) against
// real servers and turns their results into pool changes.
//
// The probes here are thin: each one does a single attempt and reports a
// state.Result. Retries, alpha, quorum and the sorry server are decided by
// the pure state machines in internal/check/state; the Runner schedules the
// probes they ask for on a bounded worker pool and runs the notify scripts.
package check

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/checkspec"
)

// The checker descriptions live in the pure package checkspec, so the plan
// builds them without importing the probes; these names keep check's API.
type (
	// Type is a checker's keyword in keepalived.conf.
	Type = checkspec.Type
	// StatusRange is an inclusive range of HTTP status codes.
	StatusRange = checkspec.StatusRange
	// URL is one url block of HTTP_GET or SSL_GET.
	URL = checkspec.URL
	// TLSOptions are SSL_GET's TLS settings.
	TLSOptions = checkspec.TLSOptions
	// Script is a command to run.
	Script = checkspec.Script
	// Spec is one checker.
	Spec = checkspec.Spec
	// RealServer is a real server and its checkers.
	RealServer = checkspec.RealServer
	// SorryServer replaces the pool when quorum is lost.
	SorryServer = checkspec.SorryServer
	// VirtualServer is one virtual server's health configuration.
	VirtualServer = checkspec.VirtualServer
)

// Checker types and keepalived's defaults.
const (
	TCP  = checkspec.TCP
	HTTP = checkspec.HTTP
	SSL  = checkspec.SSL
	Misc = checkspec.Misc
	DNS  = checkspec.DNS
	SMTP = checkspec.SMTP
	UDP  = checkspec.UDP
	Ping = checkspec.Ping

	DefaultDelayLoop      = checkspec.DefaultDelayLoop
	DefaultConnectTimeout = checkspec.DefaultConnectTimeout
	DefaultHELO           = checkspec.DefaultHELO
	DefaultDNSType        = checkspec.DefaultDNSType
	DefaultDNSName        = checkspec.DefaultDNSName
	DefaultUDPMaxReply    = checkspec.DefaultUDPMaxReply
)

// resolved is a Spec with every default filled in.
type resolved struct {
	Spec
	target netip.AddrPort
	retry  int
	dbr    time.Duration
	warmup time.Duration
}

func resolve(s Spec, rs netip.AddrPort, vsDelayLoop time.Duration) (resolved, error) {
	r := resolved{Spec: s}
	if r.DelayLoop <= 0 {
		r.DelayLoop = vsDelayLoop
	}
	if r.DelayLoop <= 0 {
		r.DelayLoop = DefaultDelayLoop
	}
	if r.ConnectTimeout <= 0 {
		r.ConnectTimeout = DefaultConnectTimeout
	}
	def := checkspec.DefaultTiming(s.Type, r.DelayLoop)
	r.retry, r.dbr, r.warmup = def.Retry, def.DelayBeforeRetry, def.Warmup
	switch s.Type {
	case TCP, Ping, UDP, SMTP:
	case HTTP, SSL:
		if len(r.URLs) == 0 {
			return r, fmt.Errorf("%s needs at least one url", s.Type)
		}
		for i, u := range r.URLs {
			if u.Path == "" {
				r.URLs[i].Path = "/"
			}
			if u.Digest != "" {
				if len(u.Digest) != 32 || strings.Trim(strings.ToLower(u.Digest), "0123456789abcdef") != "" {
					return r, fmt.Errorf("%s url %s: digest %q is not 32 hex digits", s.Type, u.Path, u.Digest)
				}
			}
			if u.Regex != "" {
				if _, err := regexp.Compile(u.Regex); err != nil {
					return r, fmt.Errorf("%s url %s: regex %q: %w", s.Type, u.Path, u.Regex, err)
				}
			}
			for _, sr := range u.StatusCodes {
				if sr.Lo < 100 || sr.Hi > 999 || sr.Lo > sr.Hi {
					return r, fmt.Errorf("%s url %s: bad status_code range %d-%d", s.Type, u.Path, sr.Lo, sr.Hi)
				}
			}
		}
		switch r.HTTPProtocol {
		case "":
			r.HTTPProtocol = "1.0"
		case "1.0", "1.0C", "1.1":
		default:
			return r, fmt.Errorf("%s: http_protocol %q is not 1.0, 1.0C or 1.1", s.Type, r.HTTPProtocol)
		}
	case DNS:
		if r.DNSType == "" {
			r.DNSType = DefaultDNSType
		}
		if _, err := dnsType(r.DNSType); err != nil {
			return r, err
		}
		if r.DNSName == "" {
			r.DNSName = DefaultDNSName
		}
	case Misc:
		if strings.TrimSpace(r.MiscPath.Command) == "" {
			return r, fmt.Errorf("MISC_CHECK needs misc_path")
		}
		if _, err := SplitCommand(r.MiscPath.Command); err != nil {
			return r, fmt.Errorf("MISC_CHECK misc_path: %w", err)
		}
		if r.MiscTimeout <= 0 {
			r.MiscTimeout = r.DelayLoop
		}
	default:
		return r, fmt.Errorf("unknown checker type %q", s.Type)
	}
	if s.Type == SMTP && r.HELOName == "" {
		r.HELOName = DefaultHELO
	}
	if s.Type == UDP && r.MaxReplyLength == 0 {
		r.MaxReplyLength = DefaultUDPMaxReply
	}
	if s.Type == UDP && r.ReplyPattern != "" {
		if _, _, err := parseHexPattern(r.ReplyPattern); err != nil {
			return r, fmt.Errorf("UDP_CHECK require_reply: %w", err)
		}
	}
	if s.Retry != nil {
		r.retry = *s.Retry
	}
	if s.DelayBeforeRetry != nil {
		r.dbr = *s.DelayBeforeRetry
	}
	if s.Warmup != nil {
		r.warmup = *s.Warmup
	}
	if r.retry < 0 || r.dbr < 0 || r.warmup < 0 {
		return r, fmt.Errorf("%s: retry, delay_before_retry and warmup must not be negative", s.Type)
	}
	ip, port := rs.Addr(), rs.Port()
	if r.ConnectIP.IsValid() {
		ip = r.ConnectIP
	}
	if r.ConnectPort != 0 {
		port = r.ConnectPort
	}
	if port == 0 {
		port = defaultPort(s.Type)
	}
	if !ip.IsValid() {
		return r, fmt.Errorf("%s: no address to check", s.Type)
	}
	if port == 0 && s.Type != Ping && s.Type != Misc {
		return r, fmt.Errorf("%s: no port to check (set connect_port)", s.Type)
	}
	r.target = netip.AddrPortFrom(ip.Unmap(), port)
	return r, nil
}

func defaultPort(t Type) uint16 {
	switch t {
	case HTTP:
		return 80
	case SSL:
		return 443
	case DNS:
		return 53
	case SMTP:
		return 25
	}
	return 0
}

// name is how the checker appears in logs: "HTTP_GET 198.18.0.2:80".
func (r resolved) name() string {
	if r.Type == Misc {
		return fmt.Sprintf("%s %s", r.Type, r.MiscPath.Command)
	}
	if r.Type == Ping {
		return fmt.Sprintf("%s %s", r.Type, r.target.Addr())
	}
	return fmt.Sprintf("%s %s", r.Type, r.target)
}

func (r resolved) checkerConfig() state.CheckerConfig {
	return state.CheckerConfig{Name: r.name(), DelayLoop: r.DelayLoop, DelayBeforeRetry: r.dbr,
		Retry: r.retry, Warmup: r.warmup, Alpha: r.Alpha}
}

// SplitCommand splits a script line into words; quotes group words and are
// removed, a backslash escapes the next character outside single quotes.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, ch := range s {
		switch {
		case escaped:
			cur.WriteRune(ch)
			escaped = false
		case ch == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteRune(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(ch)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, fmt.Errorf("split %q: unterminated quote or escape", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("split %q: empty command", s)
	}
	return words, nil
}

// parseHexPattern reads keepalived's free-form hex strings ("Ab12f 3 456"
// is AB 12 0F 03 45 06): spaces separate groups, each group is read two
// digits at a time and a lone last digit is a byte of its own. An x or X
// digit matches anything (its mask nibble is 0).
func parseHexPattern(s string) (val, mask []byte, err error) {
	nibble := func(ch byte) (v, m byte, err error) {
		if ch == 'x' || ch == 'X' {
			return 0, 0, nil
		}
		n, perr := strconv.ParseUint(string(ch), 16, 8)
		if perr != nil {
			return 0, 0, fmt.Errorf("parse hex %q: bad digit %q", s, ch)
		}
		return byte(n), 0xf, nil
	}
	for _, group := range strings.Fields(s) {
		for i := 0; i < len(group); i += 2 {
			hi, lo := byte('0'), group[i]
			if i+1 < len(group) {
				hi, lo = group[i], group[i+1]
			}
			hv, hm, err := nibble(hi)
			if err != nil {
				return nil, nil, err
			}
			lv, lm, err := nibble(lo)
			if err != nil {
				return nil, nil, err
			}
			val, mask = append(val, hv<<4|lv), append(mask, hm<<4|lm)
		}
	}
	return val, mask, nil
}

// ParseHex reads a hex string in keepalived's free format (for payload).
func ParseHex(s string) ([]byte, error) {
	v, m, err := parseHexPattern(s)
	if err != nil {
		return nil, err
	}
	for _, b := range m {
		if b != 0xff {
			return nil, fmt.Errorf("parse hex %q: wildcards are only allowed in require_reply", s)
		}
	}
	return v, nil
}

// Describe is a one-line summary of the checker with every default
// resolved, for status displays such as `govs check`:
//
//	HTTP_GET 198.18.0.2:80 GET / (200-299, digest 9b3a0c85…) every 6s, retry 1 after 3s, timeout 5s
func Describe(s Spec, rs netip.AddrPort, vsDelayLoop time.Duration) (string, error) {
	r, err := resolve(s, rs, vsDelayLoop)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(r.name())
	switch r.Type {
	case HTTP, SSL:
		for _, u := range r.URLs {
			fmt.Fprintf(&b, " GET %s (%s", u.Path, formatRanges(u.StatusCodes))
			if u.Digest != "" {
				fmt.Fprintf(&b, ", digest %s…", strings.ToLower(u.Digest[:8]))
			}
			b.WriteString(")")
		}
	case DNS:
		fmt.Fprintf(&b, " %s %s", r.DNSType, r.DNSName)
	case SMTP:
		fmt.Fprintf(&b, " HELO %s", r.HELOName)
	case UDP:
		if r.RequireReply {
			b.WriteString(" require_reply")
		}
	case Misc:
		if r.MiscDynamic {
			b.WriteString(" dynamic")
		}
	}
	fmt.Fprintf(&b, " every %v, retry %d", r.DelayLoop, r.retry)
	if r.retry > 0 {
		fmt.Fprintf(&b, " after %v", r.dbr)
	}
	fmt.Fprintf(&b, ", timeout %v", r.timeout())
	if r.Alpha {
		b.WriteString(", alpha")
	}
	return b.String(), nil
}
