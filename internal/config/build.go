package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/config/diag"
)

// builder turns the statement tree into the model, reporting every problem
// it meets and carrying on.
type builder struct {
	d    *diag.List
	cfg  *Config
	inst map[*VRRPInstance]*instanceSet
	// minGARP is vrrp_min_garp, applied once global_defs is read.
	minGARP bool
	// syncKey is global_defs' govs_sync_key, for whichever sync is set.
	syncKey   string
	syncKeyAt *node
}

// errorf reports an error about n; messages start with the keyword.
func (b *builder) errorf(n *node, format string, args ...any) {
	b.d.Errorf(n.Pos, n.Keyword, "%s: %s", n.Keyword, fmt.Sprintf(format, args...))
}

func (b *builder) warnf(n *node, format string, args ...any) {
	b.d.Warnf(n.Pos, n.Keyword, "%s: %s", n.Keyword, fmt.Sprintf(format, args...))
}

// ignore handles a keyword keepalived knows but govs does not act on. When
// leaving it out cannot change what traffic, VRRP or the checkers do (a
// process priority, SNMP, mail), it is a warning; otherwise govs would run
// the file differently from keepalived, so it is an error.
func (b *builder) ignore(n *node) {
	b.cfg.Ignored = append(b.cfg.Ignored, Ignored{Keyword: n.Keyword, Pos: n.Pos})
	if Harmless(n.Keyword) {
		b.warnf(n, "keepalived option govs does not act on; ignored (it does not change forwarding, VRRP or health checks)")
		return
	}
	b.errorf(n, "keepalived option not supported by govs; refused, because running without it would behave differently from keepalived")
}

// unknown reports a keyword nobody knows, like keepalived does: a warning.
func (b *builder) unknown(n *node, where string) {
	b.d.Warnf(n.Pos, n.Keyword, "unknown keyword '%s' in %s; ignored", n.Keyword, where)
}

// other handles a keyword that is not one of the context's own.
func (b *builder) other(n *node, where string, known map[string]bool) {
	if known[n.Keyword] {
		b.ignore(n)
		return
	}
	b.unknown(n, where)
}

// leaf checks that a simple keyword has no block and between min and max
// arguments (max < 0: any number). It reports false when values are missing.
func (b *builder) leaf(n *node, min, max int) bool {
	if n.Block {
		b.errorf(n, "unexpected block")
	}
	if len(n.Args) < min {
		if min == 1 {
			b.errorf(n, "missing value")
		} else {
			b.errorf(n, "expects %d values, got %d", min, len(n.Args))
		}
		return false
	}
	if max >= 0 && len(n.Args) > max {
		extra := make([]string, 0, len(n.Args)-max)
		for _, a := range n.Args[max:] {
			extra = append(extra, a.Text)
		}
		b.warnf(n, "extra values '%s' ignored", strings.Join(extra, " "))
	}
	return true
}

// block checks that a keyword opens a block.
func (b *builder) block(n *node) bool {
	if !n.Block {
		b.errorf(n, "expects a block { ... }")
		return false
	}
	return true
}

// parseInt parses s as a decimal integer within [min, max].
func (b *builder) parseInt(n *node, s string, min, max int) (int, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		b.errorf(n, "invalid number '%s'", s)
		return 0, false
	}
	if v < int64(min) || v > int64(max) {
		b.errorf(n, "number %s outside range [%d, %d]", s, min, max)
		return 0, false
	}
	return int(v), true
}

// intArg parses the first argument as an integer within [min, max].
func (b *builder) intArg(n *node, min, max int) (int, bool) {
	if !b.leaf(n, 1, 1) {
		return 0, false
	}
	return b.parseInt(n, n.Args[0].Text, min, max)
}

// parseTimer parses seconds with up to microsecond resolution, as
// keepalived's <TIMER> values.
func (b *builder) parseTimer(n *node, s string, min, max time.Duration) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "xXpP_") {
		b.errorf(n, "invalid time '%s' (seconds)", s)
		return 0, false
	}
	if f < min.Seconds() || f > max.Seconds() {
		b.errorf(n, "time %s outside range [%s, %s] seconds", s, secs(min), secs(max))
		return 0, false
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, true
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) }

// timerArg parses the first argument as a time in seconds.
func (b *builder) timerArg(n *node, min, max time.Duration) (time.Duration, bool) {
	if !b.leaf(n, 1, 1) {
		return 0, false
	}
	return b.parseTimer(n, n.Args[0].Text, min, max)
}

func (b *builder) parseAddr(n *node, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		b.errorf(n, "invalid IP address '%s'%s", s, addrHint(s))
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// addrArg parses the first argument as an IP address.
func (b *builder) addrArg(n *node) (netip.Addr, bool) {
	if !b.leaf(n, 1, 1) {
		return netip.Addr{}, false
	}
	return b.parseAddr(n, n.Args[0].Text)
}

func (b *builder) parsePort(n *node, s string, min int) (uint16, bool) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		b.errorf(n, "invalid port '%s'", s)
		return 0, false
	}
	if v < uint64(min) || v > 65535 {
		b.errorf(n, "port %s outside range [%d, 65535]", s, min)
		return 0, false
	}
	return uint16(v), true
}

// portArg parses the first argument as a port in [1, 65535].
func (b *builder) portArg(n *node) (uint16, bool) {
	if !b.leaf(n, 1, 1) {
		return 0, false
	}
	return b.parsePort(n, n.Args[0].Text, 1)
}

// boolArg reads an optional on/off argument; the bare keyword means on.
func (b *builder) boolArg(n *node) bool {
	b.leaf(n, 0, 1)
	if len(n.Args) == 0 {
		return true
	}
	switch strings.ToLower(n.Args[0].Text) {
	case "on", "true", "yes", "1":
		return true
	case "off", "false", "no", "0":
		return false
	}
	b.errorf(n, "invalid boolean '%s' (want on|off|true|false|yes|no)", n.Args[0].Text)
	return false
}

// stringArg returns the single argument.
func (b *builder) stringArg(n *node) (string, bool) {
	if !b.leaf(n, 1, 1) {
		return "", false
	}
	return n.Args[0].Text, true
}

// commandArg reads `<command> [user [group]]`.
func (b *builder) commandArg(n *node) Command {
	if !b.leaf(n, 1, 3) {
		return Command{}
	}
	c := Command{Cmd: n.Args[0].Text, Pos: n.Pos}
	if strings.TrimSpace(c.Cmd) == "" {
		b.errorf(n, "empty command")
		return Command{}
	}
	if len(n.Args) > 1 {
		c.User = n.Args[1].Text
	}
	if len(n.Args) > 2 {
		c.Group = n.Args[2].Text
	}
	return c
}

// interfaceName validates a Linux interface name (what dev_valid_name
// accepts: 1 to 15 bytes, no '/', ':' or white space, not "." or "..").
func (b *builder) interfaceName(n *node, s string) (string, bool) {
	if s == "" || len(s) > 15 || s == "." || s == ".." || strings.ContainsAny(s, "/: \t") {
		b.errorf(n, "invalid interface name '%s'", s)
		return "", false
	}
	return s, true
}

// enumArg matches the first argument case-insensitively against choices
// and returns the canonical spelling.
func (b *builder) enumArg(n *node, choices ...string) (string, bool) {
	if !b.leaf(n, 1, 1) {
		return "", false
	}
	return b.enum(n, n.Args[0].Text, choices...)
}

func (b *builder) enum(n *node, s string, choices ...string) (string, bool) {
	for _, c := range choices {
		if strings.EqualFold(s, c) {
			return c, true
		}
	}
	b.errorf(n, "invalid value '%s' (want %s)", s, strings.Join(choices, "|"))
	return "", false
}

func itoa(i int) string { return strconv.Itoa(i) }

// hostPort formats an address and port like ipvsadm: IPv6 in brackets.
func hostPort(a netip.Addr, port uint16) string {
	if !a.IsValid() {
		return "-:" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a, port).String()
}

// addrHint explains the commonest broken address: one whose dots were lost
// (copied from a page that dropped them), e.g. 1921681169.
func addrHint(s string) string {
	if len(s) < 4 || len(s) > 12 {
		return ""
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return " (dots missing? an IPv4 address is written like 192.168.1.169)"
}
