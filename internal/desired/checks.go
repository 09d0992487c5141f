package desired

import (
	"net/netip"

	"github.com/govs/govs/internal/checkspec"
	"github.com/govs/govs/internal/config"
)

// checks maps the configuration's virtual servers onto the health
// checker's model. Every virtual server is checked, also those the data plane
// skips, so `govs list` still shows their health.
func checks(cfg *config.Config) []checkspec.VirtualServer {
	out := make([]checkspec.VirtualServer, 0, len(cfg.VirtualServers))
	for _, vs := range cfg.VirtualServers {
		cv := checkspec.VirtualServer{
			Name:       vs.Name(),
			DelayLoop:  vs.DelayLoop,
			Quorum:     vs.Quorum,
			Hysteresis: vs.Hysteresis,
			QuorumUp:   script(cfg.Global, vs.QuorumUp),
			QuorumDown: script(cfg.Global, vs.QuorumDown),
			Omega:      vs.Omega,
		}
		if s := vs.SorryServer; s != nil {
			cv.Sorry = &checkspec.SorryServer{Addr: netip.AddrPortFrom(s.Addr, s.Port), Weight: 1, Inhibit: s.Inhibit}
		}
		for _, rs := range vs.RealServers {
			cr := checkspec.RealServer{
				Addr:       netip.AddrPortFrom(rs.Addr, rs.Port),
				Weight:     rs.Weight,
				Inhibit:    rs.InhibitOnFailure,
				NotifyUp:   script(cfg.Global, rs.NotifyUp),
				NotifyDown: script(cfg.Global, rs.NotifyDown),
			}
			for _, ch := range rs.Checkers {
				cr.Checkers = append(cr.Checkers, checkSpecs(cfg.Global, ch, rs, vs)...)
			}
			cv.RealServers = append(cv.RealServers, cr)
		}
		out = append(out, cv)
	}
	return out
}

// script is a checker's notify script, run as its user or script_user.
func script(g config.Global, c config.Command) *checkspec.Script {
	if !c.IsSet() {
		return nil
	}
	as := runAs(g, c)
	return &checkspec.Script{Command: c.Cmd, User: as.User, Group: as.Group}
}

var checkTypes = map[config.CheckerType]checkspec.Type{
	config.TCPCheck:  checkspec.TCP,
	config.HTTPGet:   checkspec.HTTP,
	config.SSLGet:    checkspec.SSL,
	config.MiscCheck: checkspec.Misc,
	config.DNSCheck:  checkspec.DNS,
	config.SMTPCheck: checkspec.SMTP,
	config.UDPCheck:  checkspec.UDP,
	config.PingCheck: checkspec.Ping,
}

// checkSpecs maps one configured checker; an SMTP_CHECK with host blocks
// becomes one checker per host, as keepalived runs them.
func checkSpecs(g config.Global, ch *config.Checker, rs *config.RealServer, vs *config.VirtualServer) []checkspec.Spec {
	retry, delay, warmup := ch.Retry, ch.DelayBeforeRetry, ch.Warmup
	s := checkspec.Spec{
		Type:             checkTypes[ch.Type],
		ConnectIP:        ch.ConnectIP,
		ConnectPort:      ch.ConnectPort,
		BindTo:           ch.BindTo,
		BindPort:         ch.BindPort,
		BindIf:           ch.BindIf,
		Fwmark:           ch.Fwmark,
		ConnectTimeout:   ch.ConnectTimeout,
		Retry:            &retry,
		DelayBeforeRetry: &delay,
		Warmup:           &warmup,
		DelayLoop:        ch.DelayLoop,
		Alpha:            ch.Alpha,
	}
	if h := ch.HTTP; h != nil {
		s.HTTPProtocol = h.Protocol
		s.VirtualHost = firstNonEmpty(h.VirtualHost, rs.VirtualHost, vs.VirtualHost)
		s.TLS.EnableSNI = h.EnableSNI
		for _, u := range h.URLs {
			cu := checkspec.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.VirtualHost, Regex: u.Regex, RegexNoMatch: u.RegexNoMatch}
			for _, r := range u.StatusCodes {
				cu.StatusCodes = append(cu.StatusCodes, checkspec.StatusRange{Lo: r.Min, Hi: r.Max})
			}
			s.URLs = append(s.URLs, cu)
		}
	}
	if m := ch.Misc; m != nil {
		as := runAs(g, m.Path)
		s.MiscPath = checkspec.Script{Command: m.Path.Cmd, User: as.User, Group: as.Group}
		s.MiscTimeout = m.Timeout
		s.MiscDynamic = m.Dynamic
	}
	if d := ch.DNS; d != nil {
		s.DNSType, s.DNSName = d.Type, d.Name
	}
	if u := ch.UDP; u != nil {
		s.Payload = u.Payload
		s.RequireReply = u.RequireReply
		s.ReplyPattern = u.ReplyPattern
		s.MinReplyLength, s.MaxReplyLength = u.MinReplyLength, u.MaxReplyLength
	}
	if m := ch.SMTP; m != nil {
		s.HELOName = m.HeloName
		if len(m.Hosts) > 0 {
			out := make([]checkspec.Spec, 0, len(m.Hosts))
			for _, h := range m.Hosts {
				hs := s
				hs.ConnectIP, hs.ConnectPort, hs.BindTo, hs.BindPort, hs.BindIf, hs.Fwmark = h.ConnectIP, h.ConnectPort, h.BindTo, h.BindPort, h.BindIf, h.Fwmark
				out = append(out, hs)
			}
			return out
		}
	}
	return []checkspec.Spec{s}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
