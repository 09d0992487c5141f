package director

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// service is one virtual service the data plane balances: a VIP, port and
// protocol of a virtual_server (a virtual_server_group expands into several),
// with the health-check name its pool is reported under.
type service struct {
	vs        *config.VirtualServer
	checkName string
	addr      netip.Addr
	port      uint16
	proto     dataplane.Protocol
	sched     sched.Kind
}

// expandServices lists the data-plane services of a configuration. Services
// govs cannot balance (fwmark, NAT, SCTP, address ranges too large) are
// skipped with a reason each, so the rest still runs.
func expandServices(cfg *config.Config) ([]service, []string) {
	var out []service
	var skipped []string
	for _, vs := range cfg.VirtualServers {
		name := vs.Name()
		var proto dataplane.Protocol
		switch vs.Protocol {
		case config.TCP:
			proto = dataplane.TCP
		case config.UDP:
			proto = dataplane.UDP
		default:
			skipped = append(skipped, fmt.Sprintf("%s: protocol %s is not balanced by the data plane", name, vs.Protocol))
			continue
		}
		if vs.Method == config.NAT {
			skipped = append(skipped, fmt.Sprintf("%s: lb_kind NAT is not supported (use DR or TUN)", name))
			continue
		}
		kind, err := sched.ParseKind(vs.Scheduler)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		var addrs []netip.AddrPort
		switch {
		case vs.Fwmark != 0:
			skipped = append(skipped, fmt.Sprintf("%s: fwmark services need netfilter marks, which XDP does not see", name))
			continue
		case vs.Group != "":
			g := cfg.VirtualServerGroup(vs.Group)
			if g == nil {
				skipped = append(skipped, fmt.Sprintf("%s: no virtual_server_group %q", name, vs.Group))
				continue
			}
			for _, e := range g.Entries {
				if e.Fwmark != 0 {
					skipped = append(skipped, fmt.Sprintf("%s: fwmark entry %d skipped", name, e.Fwmark))
					continue
				}
				n := 0
				for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
					if n++; n > maxGroupRange {
						skipped = append(skipped, fmt.Sprintf("%s: address range %s-%s truncated at %d addresses", name, e.First, e.Last, maxGroupRange))
						break
					}
					addrs = append(addrs, netip.AddrPortFrom(a, e.Port))
				}
			}
		default:
			addrs = []netip.AddrPort{netip.AddrPortFrom(vs.Addr, vs.Port)}
		}
		for _, ap := range addrs {
			out = append(out, service{vs: vs, checkName: name, addr: ap.Addr(), port: ap.Port(), proto: proto, sched: kind})
		}
	}
	return out, skipped
}

// maxGroupRange bounds how many VIPs one virtual_server_group range may expand to.
const maxGroupRange = 256

// checkConfig maps the configuration's virtual servers onto the health
// checker's model. Every virtual server is checked, also those the data plane
// skips, so `govs list` still shows their health.
func checkConfig(cfg *config.Config) []check.VirtualServer {
	out := make([]check.VirtualServer, 0, len(cfg.VirtualServers))
	for _, vs := range cfg.VirtualServers {
		cv := check.VirtualServer{
			Name:       vs.Name(),
			DelayLoop:  vs.DelayLoop,
			Quorum:     vs.Quorum,
			Hysteresis: vs.Hysteresis,
			QuorumUp:   script(vs.QuorumUp),
			QuorumDown: script(vs.QuorumDown),
			Omega:      vs.Omega,
		}
		if s := vs.SorryServer; s != nil {
			cv.Sorry = &check.SorryServer{Addr: netip.AddrPortFrom(s.Addr, s.Port), Weight: 1, Inhibit: s.Inhibit}
		}
		for _, rs := range vs.RealServers {
			cr := check.RealServer{
				Addr:       netip.AddrPortFrom(rs.Addr, rs.Port),
				Weight:     rs.Weight,
				Inhibit:    rs.InhibitOnFailure,
				NotifyUp:   script(rs.NotifyUp),
				NotifyDown: script(rs.NotifyDown),
			}
			for _, ch := range rs.Checkers {
				cr.Checkers = append(cr.Checkers, checkSpecs(ch, rs, vs)...)
			}
			cv.RealServers = append(cv.RealServers, cr)
		}
		out = append(out, cv)
	}
	return out
}

func script(c config.Command) *check.Script {
	if !c.IsSet() {
		return nil
	}
	return &check.Script{Command: c.Cmd, User: c.User, Group: c.Group}
}

var checkTypes = map[config.CheckerType]check.Type{
	config.TCPCheck:  check.TCP,
	config.HTTPGet:   check.HTTP,
	config.SSLGet:    check.SSL,
	config.MiscCheck: check.Misc,
	config.DNSCheck:  check.DNS,
	config.SMTPCheck: check.SMTP,
	config.UDPCheck:  check.UDP,
	config.PingCheck: check.Ping,
}

// checkSpecs maps one configured checker; an SMTP_CHECK with host blocks
// becomes one checker per host, as keepalived runs them.
func checkSpecs(ch *config.Checker, rs *config.RealServer, vs *config.VirtualServer) []check.Spec {
	retry, delay, warmup := ch.Retry, ch.DelayBeforeRetry, ch.Warmup
	s := check.Spec{
		Type:             checkTypes[ch.Type],
		ConnectIP:        ch.ConnectIP,
		ConnectPort:      ch.ConnectPort,
		BindTo:           ch.BindTo,
		BindPort:         ch.BindPort,
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
			cu := check.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.VirtualHost}
			for _, r := range u.StatusCodes {
				cu.StatusCodes = append(cu.StatusCodes, check.StatusRange{Lo: r.Min, Hi: r.Max})
			}
			s.URLs = append(s.URLs, cu)
		}
	}
	if m := ch.Misc; m != nil {
		s.MiscPath = check.Script{Command: m.Path.Cmd, User: m.Path.User, Group: m.Path.Group}
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
			out := make([]check.Spec, 0, len(m.Hosts))
			for _, h := range m.Hosts {
				hs := s
				hs.ConnectIP, hs.ConnectPort, hs.BindTo, hs.BindPort = h.ConnectIP, h.ConnectPort, h.BindTo, h.BindPort
				out = append(out, hs)
			}
			return out
		}
	}
	return []check.Spec{s}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// neighbour is where frames for a real server go: its MAC (DR) or the next
// hop's (TUN), and the egress interface.
type neighbour struct {
	MAC     []byte
	Ifindex int
}

// desiredState computes the data plane's content from the services, the
// health checker's pools (by virtual server name; a virtual server without
// an entry yet uses its configured weights) and the resolved neighbours.
// Real servers whose MAC is not known yet are left out and listed in
// unresolved, so the caller can retry when the neighbour table answers.
func desiredState(svcs []service, pools map[string][]state.Dest, neigh map[netip.Addr]neighbour) (st dataplane.State, unresolved []netip.Addr) {
	missing := map[netip.Addr]bool{}
	for _, s := range svcs {
		ds := dataplane.Service{
			Addr:               s.addr,
			Port:               s.port,
			Protocol:           s.proto,
			Scheduler:          s.sched,
			PersistenceTimeout: s.vs.PersistenceTimeout,
		}
		if s.vs.PersistenceTimeout > 0 && s.vs.PersistenceGranularity < s.addr.BitLen() {
			ds.PersistenceBits = s.vs.PersistenceGranularity
		}
		weights, ok := pools[s.checkName]
		if !ok {
			weights = configuredPool(s.vs)
		}
		for _, d := range weights {
			ap, err := netip.ParseAddrPort(d.Name)
			if err != nil {
				continue
			}
			rs := realServerOf(s.vs, ap)
			method := dataplane.DR
			if rs != nil && rs.Method == config.TUN || rs == nil && s.vs.Method == config.TUN ||
				d.Sorry && s.vs.SorryServer != nil && s.vs.SorryServer.Method == config.TUN {
				method = dataplane.TUN
			}
			n, ok := neigh[ap.Addr()]
			if !ok {
				missing[ap.Addr()] = true
				continue
			}
			ds.Reals = append(ds.Reals, dataplane.Real{
				Addr:    ap.Addr(),
				Weight:  uint32(max(d.Weight, 0)),
				Method:  method,
				MAC:     n.MAC,
				Ifindex: n.Ifindex,
			})
		}
		st.Services = append(st.Services, ds)
	}
	for a := range missing {
		unresolved = append(unresolved, a)
	}
	slices.SortFunc(unresolved, func(a, b netip.Addr) int { return a.Compare(b) })
	return st, unresolved
}

// configuredPool is a virtual server's pool before its first health report:
// every real server at its configured weight, except those whose checkers
// start down (alpha), which keepalived also keeps out until a first success.
func configuredPool(vs *config.VirtualServer) []state.Dest {
	var out []state.Dest
	for _, rs := range vs.RealServers {
		alpha := false
		for _, ch := range rs.Checkers {
			alpha = alpha || ch.Alpha
		}
		if alpha {
			continue
		}
		out = append(out, state.Dest{Name: netip.AddrPortFrom(rs.Addr, rs.Port).String(), Weight: rs.Weight})
	}
	return out
}

func realServerOf(vs *config.VirtualServer, ap netip.AddrPort) *config.RealServer {
	for _, rs := range vs.RealServers {
		if rs.Addr == ap.Addr() && rs.Port == ap.Port() {
			return rs
		}
	}
	return nil
}

// realAddrs lists every address the data plane may forward to, for the
// neighbour resolver.
func realAddrs(cfg *config.Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, vs := range cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			add(rs.Addr)
		}
		if vs.SorryServer != nil {
			add(vs.SorryServer.Addr)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// xdpInterfaces decides which interfaces the data plane attaches to: the
// interface of the vrrp_instance (or the VIP's own dev) holding each
// service's VIP, and govs_xdp_interface for VIPs not under VRRP.
func xdpInterfaces(cfg *config.Config, svcs []service) ([]string, error) {
	owner := map[netip.Addr]string{}
	for _, in := range cfg.Instances {
		for _, v := range append(slices.Clone(in.VIPs), in.ExcludedVIPs...) {
			dev := in.Interface
			if v.Dev != "" {
				dev = v.Dev
			}
			owner[v.Prefix.Addr()] = dev
		}
	}
	seen := map[string]bool{}
	var out []string
	add := func(dev string) {
		if dev != "" && !seen[dev] {
			seen[dev] = true
			out = append(out, dev)
		}
	}
	var orphans []string
	for _, s := range svcs {
		if dev, ok := owner[s.addr]; ok {
			add(dev)
		} else if len(cfg.Global.XDPInterfaces) == 0 {
			orphans = append(orphans, s.addr.String())
		}
	}
	for _, dev := range cfg.Global.XDPInterfaces {
		add(dev)
	}
	if len(orphans) > 0 {
		slices.Sort(orphans)
		orphans = slices.Compact(orphans)
		return out, fmt.Errorf("no interface for VIP %s: it is in no vrrp_instance's virtual_ipaddress and global_defs has no govs_xdp_interface", strings.Join(orphans, ", "))
	}
	return out, nil
}
