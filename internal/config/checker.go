package config

import (
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var checkerTypes = map[string]CheckerType{
	"TCP_CHECK":  TCPCheck,
	"HTTP_GET":   HTTPGet,
	"SSL_GET":    SSLGet,
	"MISC_CHECK": MiscCheck,
	"DNS_CHECK":  DNSCheck,
	"SMTP_CHECK": SMTPCheck,
	"UDP_CHECK":  UDPCheck,
	"PING_CHECK": PingCheck,
	"ICMP_CHECK": PingCheck,
}

var ignoredChecker = set()

var dnsTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"}

// target handles the connection keywords shared by checkers and SMTP host
// blocks.
func (b *builder) target(n *node, t *Target) bool {
	switch n.Keyword {
	case "connect_ip":
		if a, ok := b.addrArg(n); ok {
			t.ConnectIP = a
		}
	case "connect_port":
		if p, ok := b.portArg(n); ok {
			t.ConnectPort = p
		}
	case "bindto":
		if a, ok := b.addrArg(n); ok {
			t.BindTo = a
		}
	case "bind_port":
		if p, ok := b.portArg(n); ok {
			t.BindPort = p
		}
	case "bind_if":
		if s, ok := b.stringArg(n); ok {
			if s, ok := b.interfaceName(n, s); ok {
				t.BindIf = s
			}
		}
	case "fwmark":
		if v, ok := b.intArg(n, 0, 1<<32-1); ok {
			t.Fwmark = uint32(v)
		}
	default:
		return false
	}
	return true
}

func (b *builder) checker(blk *node, typ CheckerType) *Checker {
	if !b.block(blk) {
		return nil
	}
	if len(blk.Args) > 0 {
		b.warnf(blk, "extra values '%s' ignored", joinArgs(blk, 0))
	}
	c := &Checker{Type: typ, Pos: blk.Pos}
	c.Target.Pos = blk.Pos
	switch typ {
	case HTTPGet, SSLGet:
		c.HTTP = &HTTPCheck{Protocol: "1.0"}
	case MiscCheck:
		c.Misc = &MiscCheckSpec{}
	case DNSCheck:
		c.DNS = &DNSCheckSpec{Type: "SOA", Name: "."}
	case SMTPCheck:
		c.SMTP = &SMTPCheckSpec{}
	case UDPCheck:
		c.UDP = &UDPCheckSpec{MaxReplyLength: 255}
	}
	where := blk.Keyword
	for _, n := range blk.Body {
		c.Keywords.add(n)
		// keepalived 2.2 knows nb_get_retry only in HTTP_GET and SSL_GET;
		// elsewhere it is an unknown keyword and retry keeps its default.
		if n.Keyword == "nb_get_retry" && typ != HTTPGet && typ != SSLGet {
			b.warnf(n, "keepalived 2.2 does not know nb_get_retry in %s and ignores it, so retry keeps its default; govs does the same (write 'retry %s' to retry)", where, n.arg(0))
			continue
		}
		if n.Keyword == "nb_get_retry" {
			b.warnf(n, "nb_get_retry is deprecated (keepalived says so too); use retry")
		}
		if b.checkDefault(n, &c.checks) || b.target(n, &c.Target) {
			continue
		}
		if n.Keyword == "log_all_failures" {
			c.LogAllFailures = b.boolArg(n)
			continue
		}
		handled := false
		switch typ {
		case HTTPGet, SSLGet:
			handled = b.httpKeyword(n, c.HTTP, typ)
		case MiscCheck:
			handled = b.miscKeyword(n, c.Misc)
		case DNSCheck:
			handled = b.dnsKeyword(n, c.DNS)
		case SMTPCheck:
			handled = b.smtpKeyword(n, c.SMTP)
		case UDPCheck:
			handled = b.udpKeyword(n, c.UDP)
		}
		if !handled {
			b.other(n, where, ignoredChecker)
		}
	}
	switch typ {
	case HTTPGet, SSLGet:
		if len(c.HTTP.URLs) == 0 {
			b.d.Errorf(blk.Pos, where, "%s: no url block", where)
		}
	case MiscCheck:
		if !c.Misc.Path.IsSet() {
			b.d.Errorf(blk.Pos, where, "%s: no misc_path", where)
		}
	case UDPCheck:
		if c.UDP.MinReplyLength > c.UDP.MaxReplyLength {
			b.d.Errorf(blk.Pos, where, "%s: min_reply_length %d above max_reply_length %d", where, c.UDP.MinReplyLength, c.UDP.MaxReplyLength)
		}
	}
	return c
}

func (b *builder) httpKeyword(n *node, h *HTTPCheck, typ CheckerType) bool {
	switch n.Keyword {
	case "url":
		if u, ok := b.url(n); ok {
			h.URLs = append(h.URLs, u)
		}
	case "http_protocol":
		if v, ok := b.enumArg(n, "1.0", "1.0C", "1.1"); ok {
			h.Protocol = v
		}
	case "virtualhost":
		if s, ok := b.stringArg(n); ok {
			h.VirtualHost = s
		}
	case "fast_recovery":
		h.FastRecovery = b.boolArg(n)
	case "enable_sni":
		if typ != SSLGet {
			b.warnf(n, "only meaningful for SSL_GET")
		}
		h.EnableSNI = b.boolArg(n)
	default:
		return false
	}
	return true
}

func (b *builder) url(blk *node) (URL, bool) {
	u := URL{Pos: blk.Pos}
	if !b.block(blk) {
		return u, false
	}
	ok := true
	for _, n := range blk.Body {
		switch n.Keyword {
		case "path":
			if s, good := b.stringArg(n); good {
				u.Path = s
			}
		case "digest":
			if s, good := b.stringArg(n); good {
				if _, err := hex.DecodeString(s); err != nil || len(s) != 32 {
					b.errorf(n, "invalid MD5 digest '%s' (want 32 hex digits)", s)
					ok = false
					continue
				}
				u.Digest = strings.ToLower(s)
			}
		case "status_code":
			if !b.leaf(n, 1, -1) {
				continue
			}
			for _, a := range n.Args {
				r, good := b.statusRange(n, a.Text)
				if !good {
					ok = false
					continue
				}
				u.StatusCodes = append(u.StatusCodes, r)
			}
		case "virtualhost":
			if s, good := b.stringArg(n); good {
				u.VirtualHost = s
			}
		case "regex":
			if s, good := b.stringArg(n); good {
				// Compiled here, as the checker will, so that a pattern
				// govs cannot run fails govs check, not govs run.
				if _, err := regexp.Compile(s); err != nil {
					b.errorf(n, "regex %q: %v (govs matches with Go's RE2 syntax: PCRE's backreferences, lookaround and possessive quantifiers are not available)", s, err)
					ok = false
					continue
				}
				u.Regex = s
			}
		case "regex_no_match":
			b.leaf(n, 0, 0)
			u.RegexNoMatch = true
		case "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			b.ignore(n)
		default:
			b.unknown(n, "url")
		}
	}
	if u.Path == "" {
		b.d.Errorf(blk.Pos, "url", "url: no path")
		ok = false
	}
	if u.RegexNoMatch && u.Regex == "" {
		b.d.Warnf(blk.Pos, "regex_no_match", "regex_no_match: no regex in this url, so it has no effect")
	}
	if len(u.StatusCodes) == 0 {
		u.StatusCodes = []StatusRange{{200, 299}}
	}
	return u, ok
}

func (b *builder) statusRange(n *node, s string) (StatusRange, bool) {
	lo, hi, isRange := strings.Cut(s, "-")
	min, err1 := strconv.Atoi(lo)
	max := min
	var err2 error
	if isRange {
		max, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || min < 100 || max > 599 || min > max {
		b.errorf(n, "invalid status code '%s' (want N or N-M within [100, 599])", s)
		return StatusRange{}, false
	}
	return StatusRange{min, max}, true
}

func (b *builder) miscKeyword(n *node, m *MiscCheckSpec) bool {
	switch n.Keyword {
	case "misc_path":
		cmd := b.commandArg(n)
		if cmd.IsSet() {
			m.Path.Cmd, m.Path.Pos = cmd.Cmd, cmd.Pos
			if cmd.User != "" {
				b.warnf(n, "extra values after the command ignored (quote a command with arguments)")
			}
		}
	case "misc_timeout":
		if v, ok := b.intArg(n, 1, 86400); ok {
			m.Timeout = time.Duration(v) * time.Second
		}
	case "misc_dynamic":
		m.Dynamic = b.boolArg(n)
	case "user":
		if b.leaf(n, 1, 2) {
			m.Path.User = n.Args[0].Text
			if len(n.Args) > 1 {
				m.Path.Group = n.Args[1].Text
			}
		}
	default:
		return false
	}
	return true
}

func (b *builder) dnsKeyword(n *node, d *DNSCheckSpec) bool {
	switch n.Keyword {
	case "type":
		if v, ok := b.enumArg(n, dnsTypes...); ok {
			d.Type = v
		}
	case "name":
		if s, ok := b.stringArg(n); ok {
			if len(s) > 253 {
				b.errorf(n, "name longer than 253 characters")
				return true
			}
			d.Name = s
		}
	default:
		return false
	}
	return true
}

func (b *builder) smtpKeyword(n *node, s *SMTPCheckSpec) bool {
	switch n.Keyword {
	case "helo_name":
		if v, ok := b.stringArg(n); ok {
			s.HeloName = v
		}
	case "host":
		if !b.block(n) {
			return true
		}
		t := Target{Pos: n.Pos}
		for _, e := range n.Body {
			if !b.target(e, &t) {
				b.unknown(e, "host")
			}
		}
		s.Hosts = append(s.Hosts, t)
	default:
		return false
	}
	return true
}

func (b *builder) udpKeyword(n *node, u *UDPCheckSpec) bool {
	switch n.Keyword {
	case "payload":
		if !b.leaf(n, 1, -1) {
			return true
		}
		p, ok := parseHex(joinArgs(n, 0), false)
		if !ok {
			b.errorf(n, "invalid hex string '%s'", joinArgs(n, 0))
			return true
		}
		u.Payload, _ = hex.DecodeString(p)
	case "require_reply":
		u.RequireReply = true
		if len(n.Args) > 0 {
			p, ok := parseHex(joinArgs(n, 0), true)
			if !ok {
				b.errorf(n, "invalid hex string '%s'", joinArgs(n, 0))
				return true
			}
			u.ReplyPattern = p
		}
	case "min_reply_length":
		if v, ok := b.intArg(n, 0, 65535); ok {
			u.MinReplyLength = v
		}
	case "max_reply_length":
		if v, ok := b.intArg(n, 0, 65535); ok {
			u.MaxReplyLength = v
		}
	default:
		return false
	}
	return true
}

// parseHex normalises keepalived's free-form hex strings: space-separated
// groups, each padded to whole bytes with a leading zero ("Ab12f 3" is
// AB 12 0F 03). With wildcard, x/X stands for an ignored nibble.
func parseHex(s string, wildcard bool) (string, bool) {
	var out strings.Builder
	for _, group := range strings.Fields(s) {
		if len(group)%2 == 1 {
			group = group[:len(group)-1] + "0" + group[len(group)-1:]
		}
		for _, c := range strings.ToLower(group) {
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			case wildcard && c == 'x':
			default:
				return "", false
			}
			out.WriteRune(c)
		}
	}
	return out.String(), out.Len() > 0
}
