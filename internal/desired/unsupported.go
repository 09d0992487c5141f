package desired

import (
	"github.com/govs/govs/internal/config"
)

// unsupportedVRRP reports the VRRP settings govs parses but does not carry
// out, each as an error at its keyword: running without them would behave
// differently from keepalived.
func (p *planner) unsupportedVRRP() {
	cfg := p.cfg
	g := cfg.Global.Keywords
	if pos := g.Of("vrrp_garp_lower_prio_delay"); pos.IsValid() {
		p.errorf(pos, "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_delay: a delayed second burst of gratuitous ARP / NA messages after a lower-priority advert is not implemented by govs")
	}
	for _, in := range cfg.Instances {
		if pos := in.Keywords.Of("garp_lower_prio_delay"); pos.IsValid() {
			p.errorf(pos, "garp_lower_prio_delay", "vrrp_instance %s: garp_lower_prio_delay: a delayed second burst of gratuitous ARP / NA messages after a lower-priority advert is not implemented by govs", in.Name)
		}
	}
}

// unsupportedChecks reports checker settings govs parses but does not carry
// out the way keepalived does.
func (p *planner) unsupportedChecks() {
	for _, vs := range p.cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, ch := range rs.Checkers {
				if ch.Type == config.PingCheck {
					for _, kw := range []string{"bind_if", "fwmark"} {
						if pos := ch.Keywords.Of(kw); pos.IsValid() {
							p.errorf(pos, kw, "%s: PING_CHECK sockets are not bound to an interface or marked by govs", kw)
						}
					}
				}
				if pos := ch.Keywords.Of("log_all_failures"); pos.IsValid() {
					p.warnf(pos, "log_all_failures", "log_all_failures: govs logs each change of a server's state (with the failing probe's error), not every failed probe; `govs list` shows each checker's last error")
				}
				if pos := ch.Keywords.Of("fast_recovery"); pos.IsValid() {
					p.warnf(pos, "fast_recovery", "fast_recovery: govs fetches every url of the checker at each probe and retries after delay_before_retry, with or without fast_recovery")
				}
			}
		}
	}
}

// mailAlerts warns about the e-mail settings: govs sends no mail.
func (p *planner) mailAlerts() {
	const why = "govs sends no e-mail alerts; ignored (state changes go to the log, notify scripts and metrics)"
	g := p.cfg.Global.Keywords
	for _, kw := range []string{"notification_email", "notification_email_from", "smtp_server", "smtp_helo_name", "smtp_connect_timeout"} {
		if pos := g.Of(kw); pos.IsValid() {
			p.warnf(pos, kw, "%s: %s", kw, why)
		}
	}
	for _, in := range p.cfg.Instances {
		if pos := in.Keywords.Of("smtp_alert"); pos.IsValid() {
			p.warnf(pos, "smtp_alert", "smtp_alert: %s", why)
		}
	}
	for _, sg := range p.cfg.SyncGroups {
		if pos := sg.Keywords.Of("smtp_alert"); pos.IsValid() {
			p.warnf(pos, "smtp_alert", "smtp_alert: %s", why)
		}
	}
}
