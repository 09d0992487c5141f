package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// IsRouteType reports whether s names a route type other than unicast
// that a route entry may start with.
func IsRouteType(s string) bool {
	switch s {
	case "blackhole", "unreachable", "prohibit", "throw":
		return true
	}
	return false
}

// Validate reports what the kernel would refuse, or what cannot mean what
// it says: mixed families, a gateway on a route type that has none, a
// unicast route that says neither where nor through whom.
func (r Route) Validate() error {
	if r.Type != "" && !IsRouteType(r.Type) {
		return fmt.Errorf("route type %q (want blackhole, unreachable, prohibit or throw)", r.Type)
	}
	if !r.Dst.IsValid() {
		return errors.New("no destination")
	}
	v6 := r.Dst.Addr().Is6()
	if r.Src.IsValid() && r.Src.Is6() != v6 {
		return fmt.Errorf("src %v is not of the family of %v", r.Src, r.Dst)
	}
	for _, g := range r.Via {
		if g.Is6() != v6 {
			return fmt.Errorf("gateway %v is not of the family of %v", g, r.Dst)
		}
	}
	if r.Type != "" && (len(r.Via) > 0 || r.Dev != "") {
		return fmt.Errorf("a %s route has no gateway or interface", r.Type)
	}
	if r.Type == "" && len(r.Via) == 0 && r.Dev == "" {
		return fmt.Errorf("route to %v: give a gateway (via) or an interface (dev)", r.Dst)
	}
	if r.OnLink && len(r.Via) == 0 {
		return errors.New("onlink needs a gateway")
	}
	if r.Table < 0 || r.Metric < 0 || r.Protocol < 0 || r.Protocol > 255 {
		return errors.New("table, metric and protocol must not be negative; protocol is at most 255")
	}
	return nil
}

// String is the route in keepalived's (and ip route's) words.
func (r Route) String() string {
	var b strings.Builder
	if r.Type != "" {
		b.WriteString(r.Type + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Src.IsValid() {
		b.WriteString(" src " + r.Src.String())
	}
	for i, g := range r.Via {
		if i == 0 {
			b.WriteString(" via ")
		} else {
			b.WriteString(" or ")
		}
		b.WriteString(g.String())
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	for _, f := range []struct {
		name, val string
	}{{"dev", r.Dev}, {"scope", r.Scope}, {"table", num(r.Table)}, {"metric", num(r.Metric)}, {"proto", num(r.Protocol)}} {
		if f.val != "" {
			b.WriteString(" " + f.name + " " + f.val)
		}
	}
	return b.String()
}

func num(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Rule is one virtual_rules (or static_rules) entry: a policy-routing rule,
// present while the instance is MASTER.
type Rule struct {
	// From and To select by source and destination; invalid = all.
	From, To netip.Prefix
	// IPv6 is the rule's family when neither From nor To says it.
	IPv6 bool
	// Fwmark and FwmarkMask select by the packet's mark (mask 0: exact).
	Fwmark, FwmarkMask uint32
	IIF, OIF           string
	Invert             bool // "not": the rule applies to packets it does not select
	// Priority orders the rules; 0 lets the kernel pick one below the last.
	Priority int
	// Table is where matching packets look their route up (lookup), unless
	// Action says blackhole, unreachable or prohibit.
	Table  int
	Action string
}

// Validate reports what the kernel would refuse or what means nothing.
func (r Rule) Validate() error {
	switch r.Action {
	case "":
		if r.Table == 0 {
			return errors.New("no table (lookup) and no action (blackhole, unreachable, prohibit)")
		}
	case "blackhole", "unreachable", "prohibit":
		if r.Table != 0 {
			return fmt.Errorf("a %s rule has no table", r.Action)
		}
	default:
		return fmt.Errorf("rule action %q (want blackhole, unreachable or prohibit)", r.Action)
	}
	if r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is6() != r.To.Addr().Is6() {
		return fmt.Errorf("from %v and to %v are of two families", r.From, r.To)
	}
	if r.Table < 0 || r.Priority < 0 {
		return errors.New("table and priority must not be negative")
	}
	return nil
}

// Family6 reports whether the rule is an IPv6 one.
func (r Rule) Family6() bool {
	switch {
	case r.From.IsValid():
		return r.From.Addr().Is6()
	case r.To.IsValid():
		return r.To.Addr().Is6()
	}
	return r.IPv6
}

// String is the rule in keepalived's (and ip rule's) words.
func (r Rule) String() string {
	var f []string
	if r.Invert {
		f = append(f, "not")
	}
	from := "all"
	if r.From.IsValid() {
		from = r.From.String()
	}
	f = append(f, "from", from)
	if r.To.IsValid() {
		f = append(f, "to", r.To.String())
	}
	if r.Fwmark != 0 || r.FwmarkMask != 0 {
		m := strconv.FormatUint(uint64(r.Fwmark), 10)
		if r.FwmarkMask != 0 {
			m += "/" + strconv.FormatUint(uint64(r.FwmarkMask), 10)
		}
		f = append(f, "fwmark", m)
	}
	if r.IIF != "" {
		f = append(f, "iif", r.IIF)
	}
	if r.OIF != "" {
		f = append(f, "oif", r.OIF)
	}
	if r.Priority != 0 {
		f = append(f, "priority", strconv.Itoa(r.Priority))
	}
	if r.Table != 0 {
		f = append(f, "table", strconv.Itoa(r.Table))
	}
	if r.Action != "" {
		f = append(f, r.Action)
	}
	if r.IPv6 && !r.From.IsValid() && !r.To.IsValid() {
		f = append(f, "(IPv6)")
	}
	return strings.Join(f, " ")
}
