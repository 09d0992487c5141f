package config

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/vrrp"
)

// Route is one entry of virtual_routes or static_routes.
type Route struct {
	vrrp.Route
	Pos Pos
}

// routeTables and routeProtos are iproute2's names for well-known values.
var (
	routeTables = map[string]int{"main": 254, "local": 255, "default": 253}
	routeProtos = map[string]int{"kernel": 2, "boot": 3, "static": 4, "keepalived": 18}
)

// routeTable reads a routing table's name or number.
func routeTable(s string) (int, bool) {
	if t, ok := routeTables[s]; ok {
		return t, true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return int(n), err == nil && n > 0
}

// routes reads virtual_routes / static_routes entries, in keepalived's
// words: [TYPE] [src ADDR] [to] PREFIX [via|gw ADDR [or ADDR]...] [dev IF]
// [scope S] [table T] [metric N] [proto P] [onlink] [no_track]. What ip
// route can say but govs does not carry out (mtu, realms, nexthop, ...) is
// an error at its line, never left out in silence. The combination is
// checked by the plan (vrrp.Route.Validate).
func (b *builder) routes(blk *node) []Route { return entries(b, blk, b.route) }

// entries reads the one-line entries of a block with parse.
func entries[T any](b *builder, blk *node, parse func(kw string, e *node) (T, bool)) []T {
	if !b.block(blk) {
		return nil
	}
	var out []T
	for _, e := range blk.Body {
		if e.Block {
			b.d.Errorf(e.Pos, blk.Keyword, "%s: unexpected block", blk.Keyword)
			continue
		}
		if v, ok := parse(blk.Keyword, e); ok {
			out = append(out, v)
		}
	}
	return out
}

func (b *builder) route(kw string, e *node) (Route, bool) {
	r := Route{Pos: e.Pos}
	toks := []string{e.Keyword}
	for _, a := range e.Args {
		toks = append(toks, a.Text)
	}
	bad := func(format string, args ...any) (Route, bool) {
		b.d.Errorf(e.Pos, kw, "%s: "+format, append([]any{kw}, args...)...)
		return r, false
	}
	addr := func(s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	for i := 0; i < len(toks); i++ {
		opt := toks[i]
		if i == 0 && vrrp.IsRouteType(opt) {
			r.Type = opt
			continue
		}
		val := ""
		switch opt {
		case "src", "to", "via", "gw", "or", "dev", "oif", "scope", "table", "metric", "preference", "priority", "proto", "protocol":
			if i+1 >= len(toks) {
				return bad("'%s' needs a value", opt)
			}
			i++
			val = toks[i]
		}
		switch opt {
		case "src":
			a, ok := addr(val)
			if !ok {
				return bad("invalid src address '%s'", val)
			}
			r.Src = a
		case "to":
			p, ok := parsePrefix(val)
			if !ok {
				return bad("invalid destination '%s'", val)
			}
			r.Dst = p.Masked()
		case "via", "gw", "or":
			if (opt == "or") != (len(r.Via) > 0) {
				return bad("'or' adds a gateway after 'via'")
			}
			a, ok := addr(val)
			if !ok {
				return bad("invalid gateway '%s'", val)
			}
			r.Via = append(r.Via, a)
		case "dev", "oif":
			if _, ok := b.interfaceName(&node{Keyword: kw, Pos: e.Pos}, val); !ok {
				return r, false
			}
			r.Dev = val
		case "scope":
			if !scopes[val] {
				if _, err := strconv.ParseUint(val, 10, 8); err != nil {
					return bad("invalid scope '%s' (want site|link|host|nowhere|global)", val)
				}
			}
			r.Scope = val
		case "table":
			t, ok := routeTable(val)
			if !ok {
				return bad("invalid table '%s' (want main, local, default or 1-4294967295)", val)
			}
			r.Table = t
		case "metric", "preference", "priority":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return bad("invalid %s '%s'", opt, val)
			}
			r.Metric = int(n)
		case "proto", "protocol":
			p, ok := routeProtos[val]
			if !ok {
				n, err := strconv.ParseUint(val, 10, 8)
				if err != nil {
					return bad("invalid protocol '%s' (want kernel, boot, static, keepalived or 0-255)", val)
				}
				p = int(n)
			}
			r.Protocol = p
		case "onlink":
			r.OnLink = true
		case "no_track":
			// govs does not watch its routes for removal by others, which
			// is what no_track asks keepalived to stop doing.
		default:
			if p, ok := parsePrefix(opt); ok && !r.Dst.IsValid() {
				r.Dst = p.Masked()
				continue
			}
			return bad("'%s' is not implemented by govs (it carries out type, src, to, via/gw/or, dev, scope, table, metric, proto, onlink, no_track)", opt)
		}
	}
	if !r.Dst.IsValid() {
		return bad("no destination prefix")
	}
	return r, true
}

// Rule is one entry of virtual_rules or static_rules.
type Rule struct {
	vrrp.Rule
	Pos Pos
}

// rules reads virtual_rules / static_rules entries, in keepalived's (and
// ip rule's) words: [not] [from PREFIX|all] [to PREFIX|all]
// [fwmark N[/MASK]] [iif IF] [oif IF] [priority|preference|pref N]
// [table|lookup T] [blackhole|unreachable|prohibit] [no_track]. The other
// selectors and actions of ip rule are errors at their line.
func (b *builder) rules(blk *node) []Rule { return entries(b, blk, b.rule) }

func (b *builder) rule(kw string, e *node) (Rule, bool) {
	r := Rule{Pos: e.Pos}
	toks := []string{e.Keyword}
	for _, a := range e.Args {
		toks = append(toks, a.Text)
	}
	bad := func(format string, args ...any) (Rule, bool) {
		b.d.Errorf(e.Pos, kw, "%s: "+format, append([]any{kw}, args...)...)
		return r, false
	}
	u32 := func(s string) (uint32, bool) {
		n, err := strconv.ParseUint(s, 0, 32)
		return uint32(n), err == nil
	}
	for i := 0; i < len(toks); i++ {
		opt := toks[i]
		val := ""
		switch opt {
		case "from", "to", "fwmark", "iif", "oif", "priority", "preference", "pref", "table", "lookup":
			if i+1 >= len(toks) {
				return bad("'%s' needs a value", opt)
			}
			i++
			val = toks[i]
		}
		switch opt {
		case "not":
			r.Invert = true
		case "from", "to":
			var p netip.Prefix
			if val != "all" {
				var ok bool
				if p, ok = parsePrefix(val); !ok {
					return bad("invalid %s prefix '%s'", opt, val)
				}
				p = p.Masked()
			}
			if opt == "from" {
				r.From = p
			} else {
				r.To = p
			}
		case "fwmark":
			mark, mask, hasMask := strings.Cut(val, "/")
			m, ok := u32(mark)
			if !ok {
				return bad("invalid fwmark '%s'", val)
			}
			r.Fwmark = m
			if hasMask {
				if r.FwmarkMask, ok = u32(mask); !ok {
					return bad("invalid fwmark mask '%s'", val)
				}
			}
		case "iif", "oif":
			if _, ok := b.interfaceName(&node{Keyword: kw, Pos: e.Pos}, val); !ok {
				return r, false
			}
			if opt == "iif" {
				r.IIF = val
			} else {
				r.OIF = val
			}
		case "priority", "preference", "pref":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return bad("invalid %s '%s'", opt, val)
			}
			r.Priority = int(n)
		case "table", "lookup":
			t, ok := routeTable(val)
			if !ok {
				return bad("invalid table '%s' (want main, local, default or 1-4294967295)", val)
			}
			r.Table = t
		case "blackhole", "unreachable", "prohibit":
			r.Action = opt
		case "no_track":
			// As for routes: govs does not watch its rules.
		default:
			return bad("'%s' is not implemented by govs (it carries out not, from, to, fwmark, iif, oif, priority, table/lookup, blackhole, unreachable, prohibit, no_track)", opt)
		}
	}
	return r, true
}
