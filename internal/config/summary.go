package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteSummary prints the global settings and the VRRP instances of a
// configuration. The virtual servers are printed from the plan
// (internal/desired) by the one ipvsadm formatter, internal/status.
func WriteSummary(w io.Writer, c *Config) error {
	ew := &errWriter{w: w}
	g := c.Global
	ew.printf("global: router_id %s, VRRP version %d", orDash(g.RouterID), g.VRRPVersion)
	if len(g.XDPInterfaces) > 0 {
		ew.printf(", XDP on %s", strings.Join(g.XDPInterfaces, " "))
	}
	if g.ConnTableSize > 0 || g.EmbryoTableSize > 0 {
		ew.printf(", tables: %s connections, %s embryonic", sizeOrDefault(g.ConnTableSize), sizeOrDefault(g.EmbryoTableSize))
	}
	if g.NewFlowLimit > 0 {
		ew.printf(", at most %d new flows/s", g.NewFlowLimit)
	}
	if t := g.LVSTimeouts; t != (LVSTimeouts{}) {
		ew.printf(", connection timeouts tcp %s tcpfin %s udp %s", timeoutOrDefault(t.TCP), timeoutOrDefault(t.TCPFin), timeoutOrDefault(t.UDP))
	}
	if sd := g.LVSSyncDaemon; sd != nil {
		ew.printf(", connection sync on %s for %s (id %d, group %s port %d, ttl %d, maxlen %d)",
			sd.Interface, sd.Instance, sd.SyncID, sd.Group, sd.Port, sd.TTL, sd.MaxLen)
		if sd.Key != "" {
			// Never the key itself: the output ends up in logs and tickets.
			ew.printf(", authenticated")
		}
	}
	ew.printf("\n")
	for _, v := range c.StaticAddresses {
		ew.printf("static address %s\n", vipString(v))
	}
	for _, r := range c.StaticRoutes {
		ew.printf("static route %s\n", r)
	}
	for _, r := range c.StaticRules {
		ew.printf("static rule %s\n", r)
	}
	writeInstances(ew, c)
	return ew.err
}

func writeInstances(ew *errWriter, c *Config) {
	if len(c.Instances) == 0 {
		ew.printf("VRRP instances: none\n")
		return
	}
	ew.printf("VRRP instances:\n")
	for _, in := range c.Instances {
		ew.printf("  %s: %s on %s, vrid %d, priority %d, advert %s, version %d", in.Name, in.State, orDash(in.Interface),
			in.VRID, in.Priority, Seconds(in.AdvertInt), in.Version)
		if in.Auth.Type != AuthNone && in.Version == 2 {
			ew.printf(", auth %s", in.Auth.Type)
		}
		if in.NoPreempt {
			ew.printf(", nopreempt")
		}
		if in.PreemptDelay > 0 {
			ew.printf(", preempt_delay %s", Seconds(in.PreemptDelay))
		}
		if in.SyncGroup != "" {
			ew.printf(", sync group %s", in.SyncGroup)
		}
		ew.printf("\n")
		if len(in.UnicastPeers) > 0 {
			var peers []string
			for _, p := range in.UnicastPeers {
				peers = append(peers, p.Addr.String())
			}
			ew.printf("    unicast %s -> %s\n", orDash(addrString(in.UnicastSrcIP)), strings.Join(peers, " "))
		}
		for _, v := range in.VIPs {
			ew.printf("    VIP %s\n", vipString(v))
		}
		for _, v := range in.ExcludedVIPs {
			ew.printf("    VIP %s (excluded from adverts)\n", vipString(v))
		}
		for _, r := range in.Routes {
			ew.printf("    route %s (while MASTER)\n", r)
		}
		for _, r := range in.Rules {
			ew.printf("    rule %s (while MASTER)\n", r)
		}
		for _, t := range in.TrackInterfaces {
			if t.Weight == 0 {
				ew.printf("    track interface %s (fault if down)\n", t.Name)
			} else {
				ew.printf("    track interface %s weight %d\n", t.Name, t.Weight)
			}
		}
		for _, t := range in.TrackScripts {
			ew.printf("    track script %s weight %d\n", t.Name, t.Weight)
		}
		for _, t := range in.TrackFiles {
			if f := c.TrackFile(t.Name); f != nil {
				ew.printf("    track file %s (%s) weight %d%s\n", t.Name, f.Path, t.Weight, map[bool]string{true: " reverse"}[t.Reverse])
			}
		}
	}
}

func vipString(v VIP) string {
	s := v.Prefix.String()
	if v.Dev != "" {
		s += " dev " + v.Dev
	}
	if v.Scope != "" {
		s += " scope " + v.Scope
	}
	if v.Label != "" {
		s += " label " + v.Label
	}
	return s
}

// DescribeChecker summarises a checker on one line, e.g.
// "TCP_CHECK port 80 timeout 5s retry 3 delay 3s every 6s".
func DescribeChecker(ch *Checker, rs *RealServer) string {
	var b strings.Builder
	b.WriteString(ch.Type.String())
	if ch.Type != MiscCheck {
		if ch.ConnectIP != rs.Addr {
			fmt.Fprintf(&b, " %s", hostPort(ch.ConnectIP, ch.ConnectPort))
		} else if ch.Type != PingCheck {
			fmt.Fprintf(&b, " port %d", ch.ConnectPort)
		}
	}
	switch {
	case ch.HTTP != nil:
		for _, u := range ch.HTTP.URLs {
			var codes []string
			for _, r := range u.StatusCodes {
				if r.Min == r.Max {
					codes = append(codes, strconv.Itoa(r.Min))
				} else {
					codes = append(codes, fmt.Sprintf("%d-%d", r.Min, r.Max))
				}
			}
			fmt.Fprintf(&b, " url %s status %s", u.Path, strings.Join(codes, ","))
			if u.Digest != "" {
				b.WriteString(" digest " + u.Digest)
			}
		}
	case ch.Misc != nil:
		fmt.Fprintf(&b, " %q", ch.Misc.Path.Cmd)
		if ch.Misc.Dynamic {
			b.WriteString(" dynamic")
		}
	case ch.DNS != nil:
		fmt.Fprintf(&b, " %s %s", ch.DNS.Type, ch.DNS.Name)
	case ch.SMTP != nil:
		if ch.SMTP.HeloName != "" {
			b.WriteString(" helo " + ch.SMTP.HeloName)
		}
		for _, h := range ch.SMTP.Hosts {
			b.WriteString(" host " + hostPort(h.ConnectIP, h.ConnectPort))
		}
	}
	if ch.Type != MiscCheck {
		fmt.Fprintf(&b, " timeout %s", Seconds(ch.ConnectTimeout))
	}
	fmt.Fprintf(&b, " retry %d delay %s every %s", ch.Retry, Seconds(ch.DelayBeforeRetry), Seconds(ch.DelayLoop))
	return b.String()
}

// Seconds formats a duration the way keepalived.conf writes it: "6s",
// "0.1s".
func Seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type addrLike interface {
	IsValid() bool
	String() string
}

func addrString(a addrLike) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// errWriter keeps the first write error so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}

func sizeOrDefault(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n)
}

func timeoutOrDefault(d time.Duration) string {
	if d == 0 {
		return "default"
	}
	return Seconds(d)
}
