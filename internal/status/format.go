package status

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// View selects which table Format prints, mirroring ipvsadm's list modes.
type View int

// Views of a snapshot.
const (
	// ViewTable is `ipvsadm -L -n`: scheduler, flags, forwarding method,
	// weight and connection counts.
	ViewTable View = iota
	// ViewStats is `ipvsadm -L -n --stats`: cumulative counters.
	ViewStats
	// ViewRate is `ipvsadm -L -n --rate`: estimated per-second rates.
	ViewRate
	// ViewConnections is `ipvsadm -L -n -c`: the connection table.
	ViewConnections
	// ViewSave is `ipvsadm -S -n`: the table as ipvsadm commands that
	// would build it (ipvsadm -R reads them).
	ViewSave
	// ViewThresholds is `ipvsadm -L -n --thresholds`: each real server's
	// connection thresholds (always 0: govs refuses uthreshold and
	// lthreshold) and connection counts.
	ViewThresholds
	// ViewPersistentConn is `ipvsadm -L -n --persistent-conn`: each real
	// server's weight, persistence templates and connection counts.
	ViewPersistentConn
)

// FormatOptions tune Format.
type FormatOptions struct {
	View View
	// Exact prints full numbers instead of K/M/G abbreviations, like
	// ipvsadm --exact.
	Exact bool
	// Checkers prints each real server's checkers under it (table view).
	Checkers bool
	// IPVSHeader prints ipvsadm's first line, "IP Virtual Server version
	// 1.2.1 (size=N)", instead of govs's, for scripts that parse it.
	IPVSHeader bool
}

// Column layout of ipvsadm's listing. The service column is 33 wide, the
// real server column 28 after the "  -> " marker, and numeric columns 8 wide
// with one separating space.
const (
	serviceWidth = 33
	realWidth    = 28
)

// Format writes the snapshot as ipvsadm prints the IPVS table, followed by
// one line per VRRP instance. Addresses are always numeric: govs never
// resolves names, so -n is implied.
func Format(w io.Writer, s Snapshot, opt FormatOptions) error {
	bw := bufio.NewWriter(w)
	switch opt.View {
	case ViewConnections:
		writeConnections(bw, s)
		return bw.Flush()
	case ViewSave:
		for _, svc := range sortedServices(s.Services) {
			writeSave(bw, svc)
		}
		return bw.Flush()
	}
	if opt.IPVSHeader {
		fmt.Fprintf(bw, "IP Virtual Server version 1.2.1 (size=%d)\n", s.ConnTableSize)
	} else {
		fmt.Fprintf(bw, "govs Virtual Server version %s (connection table size=%d)\n", versionOr(s.Version), s.ConnTableSize)
	}
	writeTable(bw, s.Services, opt)
	if len(s.VRRP) > 0 {
		fmt.Fprintln(bw)
		for _, v := range s.VRRP {
			writeVRRP(bw, v)
		}
	}
	if s.BGP != nil {
		fmt.Fprintln(bw)
		writeBGP(bw, *s.BGP)
	}
	return bw.Flush()
}

// writeBGP prints the speaker's sessions and announcements, one line each.
func writeBGP(w *bufio.Writer, b BGP) {
	fmt.Fprintf(w, "BGP AS %d router id %s\n", b.LocalAS, b.RouterID)
	for _, p := range b.Peers {
		fmt.Fprintf(w, "BGP neighbor %s AS %d: %s\n", p.Addr, p.RemoteAS, p.State)
	}
	for _, p := range b.Announced {
		fmt.Fprintf(w, "BGP announcing %s\n", p)
	}
	for _, v := range b.VIPs {
		switch {
		case v.Announced:
		case v.HeldUntil != nil:
			fmt.Fprintf(w, "BGP not announcing %s: held down until %s (%d flaps)\n", v.VIP, v.HeldUntil.Format(time.RFC3339), v.Flaps)
		default:
			fmt.Fprintf(w, "BGP not announcing %s: %s\n", v.VIP, v.Reason)
		}
	}
}

// FormatTable writes only the table of services (title and rows), as
// `govs check` prints a plan: the same columns `govs list` prints for the
// running director, and each real server's checkers under it.
func FormatTable(w io.Writer, services []Service, opt FormatOptions) error {
	bw := bufio.NewWriter(w)
	writeTable(bw, services, opt)
	return bw.Flush()
}

func writeTable(w *bufio.Writer, services []Service, opt FormatOptions) {
	writeTitle(w, opt.View)
	for _, svc := range sortedServices(services) {
		writeService(w, svc, opt)
	}
}

// FormatJSON writes the snapshot as indented JSON.
func FormatJSON(w io.Writer, s Snapshot) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return nil
}

// FormatConnectionsJSON writes a connection table as an indented JSON array.
func FormatConnectionsJSON(w io.Writer, conns []Connection) error {
	if conns == nil {
		conns = []Connection{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(conns); err != nil {
		return fmt.Errorf("encode connections: %w", err)
	}
	return nil
}

func versionOr(v string) string {
	if v == "" {
		return "unknown"
	}
	return v
}

func writeTitle(w *bufio.Writer, v View) {
	switch v {
	case ViewStats:
		fmt.Fprintf(w, "%-*s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			serviceWidth, "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case ViewRate:
		fmt.Fprintf(w, "%-*s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
			serviceWidth, "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case ViewPersistentConn:
		fmt.Fprintf(w, "%-*s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
			serviceWidth, "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	case ViewThresholds:
		fmt.Fprintf(w, "%-*s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
			serviceWidth, "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	default:
		fmt.Fprint(w, "Prot LocalAddress:Port Scheduler Flags\n")
		fmt.Fprintf(w, "  -> %-*s Forward Weight ActiveConn InActConn\n", realWidth, "RemoteAddress:Port")
	}
}

// serviceName is the first column of a service line: "TCP  addr:port" or
// "FWM  mark", with two spaces as ipvsadm prints them.
func serviceName(s Service) string {
	if s.Fwmark != 0 {
		if s.IsIPv6() {
			return fmt.Sprintf("FWM  %d IPv6", s.Fwmark)
		}
		return fmt.Sprintf("FWM  %d", s.Fwmark)
	}
	return s.Protocol.String() + "  " + addrPort(s.VIP, s.Port)
}

// addrPort prints an address and port with IPv6 in brackets.
func addrPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a, port).String()
}

func writeService(w *bufio.Writer, s Service, opt FormatOptions) {
	name := serviceName(s)
	switch opt.View {
	case ViewStats:
		fmt.Fprintf(w, "%-*s", serviceWidth, name)
		writeNums(w, opt.Exact, s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts, s.Stats.InBytes, s.Stats.OutBytes)
	case ViewRate:
		fmt.Fprintf(w, "%-*s", serviceWidth, name)
		writeNums(w, opt.Exact, s.Rates.CPS, s.Rates.InPPS, s.Rates.OutPPS, s.Rates.InBPS, s.Rates.OutBPS)
	default:
		fmt.Fprintf(w, "%s %s", name, s.Scheduler)
		if len(s.SchedFlags) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(s.SchedFlags, ","))
		}
		if s.Persistent > 0 {
			fmt.Fprintf(w, " persistent %d", int64(s.Persistent.Seconds()))
			if m := persistenceMask(s); m != "" {
				fmt.Fprintf(w, " mask %s", m)
			}
		}
		if s.OnePacket {
			fmt.Fprint(w, " ops")
		}
	}
	fmt.Fprintln(w)

	for _, r := range sortedReals(s.Reals) {
		dest := addrPort(r.Addr, r.Port)
		switch opt.View {
		case ViewStats:
			fmt.Fprintf(w, "  -> %-*s", realWidth, dest)
			writeNums(w, opt.Exact, r.Stats.Conns, r.Stats.InPkts, r.Stats.OutPkts, r.Stats.InBytes, r.Stats.OutBytes)
		case ViewRate:
			// ipvsadm prints a real server's connection and packet rates
			// unabbreviated, and only its byte rates through the K/M/G
			// formatter.
			fmt.Fprintf(w, "  -> %-*s %8d %8d %8d", realWidth, dest, r.Rates.CPS, r.Rates.InPPS, r.Rates.OutPPS)
			writeNums(w, opt.Exact, r.Rates.InBPS, r.Rates.OutBPS)
		case ViewThresholds:
			fmt.Fprintf(w, "  -> %-*s %-10d %-10d %-10d %-10d", realWidth, dest, 0, 0, r.ActiveConn, r.InactConn)
		case ViewPersistentConn:
			fmt.Fprintf(w, "  -> %-*s %-9d %-11d %-10d %-10d", realWidth, dest, r.Weight, r.PersistConns, r.ActiveConn, r.InactConn)
		default:
			fmt.Fprintf(w, "  -> %-*s %-7s %-6d %-10d %-10d", realWidth, dest, r.Method, r.Weight, r.ActiveConn, r.InactConn)
		}
		fmt.Fprintln(w)
		if opt.View == ViewTable && opt.Checkers {
			for _, c := range r.Checkers {
				fmt.Fprintf(w, "       %s\n", c)
			}
		}
	}
}

// persistenceMask returns the " mask" flag's value, or "" when persistence
// is per client address. IPv4 masks print dotted, IPv6 ones as a length.
func persistenceMask(s Service) string {
	bits := s.PersistenceBits
	if bits <= 0 {
		return ""
	}
	if s.IsIPv6() {
		if bits >= 128 {
			return ""
		}
		return strconv.Itoa(bits)
	}
	if bits >= 32 {
		return ""
	}
	m := ^uint32(0) << (32 - bits)
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// writeNums prints numbers in ipvsadm's 9-character cells: up to eight digits
// as they are, larger values divided down with a K, M, G or T suffix so the
// table keeps its shape.
func writeNums(w *bufio.Writer, exact bool, nums ...uint64) {
	for _, n := range nums {
		w.WriteString(largeNum(n, exact))
	}
}

func largeNum(n uint64, exact bool) string {
	if exact {
		s := strconv.FormatUint(n, 10)
		return fmt.Sprintf("%*s", max(9, len(s)+1), s)
	}
	switch {
	case n < 100_000_000:
		return fmt.Sprintf("%9d", n)
	case n < 1_000_000_000:
		return fmt.Sprintf("%8dK", n/1_000)
	case n < 100_000_000_000:
		return fmt.Sprintf("%8dM", n/1_000_000)
	case n < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", n/1_000_000_000)
	}
	return fmt.Sprintf("%8dT", n/1_000_000_000_000)
}

func writeConnections(w *bufio.Writer, s Snapshot) {
	fmt.Fprintln(w, "govs connection entries")
	fmt.Fprintf(w, "pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	for _, c := range s.Connections {
		secs := int64(c.Expires.Seconds())
		if secs < 0 {
			secs = 0
		}
		expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
		fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %-18s %s\n",
			c.Protocol, expire, c.State, c.Client, c.Virtual, c.Real)
	}
}

func writeVRRP(w *bufio.Writer, v VRRPInstance) {
	fmt.Fprintf(w, "VRRP instance %s: %s prio %d", v.Name, v.State, v.Priority)
	if v.EffectivePriority != v.Priority {
		fmt.Fprintf(w, " (effective %d)", v.EffectivePriority)
	}
	fmt.Fprintf(w, " on %s vrid %d", v.Interface, v.VRID)
	if len(v.VIPs) > 0 {
		vips := make([]string, len(v.VIPs))
		for i, a := range v.VIPs {
			vips[i] = a.String()
		}
		fmt.Fprintf(w, " VIPs %s", strings.Join(vips, " "))
	}
	if v.Master.IsValid() && v.State != StateMaster {
		fmt.Fprintf(w, " master %s", v.Master)
	}
	fmt.Fprintln(w)
}

// sortedServices orders services as ipvsadm does: by firewall mark, then
// address family, protocol, address and port.
func sortedServices(in []Service) []Service {
	out := slices.Clone(in)
	family := func(s *Service) int {
		if s.IsIPv6() {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(out, func(a, b Service) int {
		return cmp.Or(
			cmp.Compare(a.Fwmark, b.Fwmark),
			cmp.Compare(family(&a), family(&b)),
			cmp.Compare(a.Protocol, b.Protocol),
			a.VIP.Compare(b.VIP),
			cmp.Compare(a.Port, b.Port),
		)
	})
	return out
}

// sortedReals orders real servers by address, then port.
func sortedReals(in []Real) []Real {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b Real) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	return out
}

// writeSave writes one service as `ipvsadm -S -n` does: -A for the
// service, -a for each real server.
// FormatKeepalived writes the snapshot's services as keepalived.conf
// virtual_server blocks (`govs save`): scheduler, flags, method,
// persistence and each real server with its weight as they run now.
// Health checkers, quorum, sorry servers and FullNAT's local address groups
// are not in the status, so they are not written; the header says so.
func FormatKeepalived(w io.Writer, s Snapshot) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "! Written by govs save (govs %s): the running virtual servers and weights.\n", versionOr(s.Version))
	fmt.Fprintln(bw, "! Health checkers, quorum, sorry servers and local_address_groups are not included.")
	for _, svc := range sortedServices(s.Services) {
		writeKeepalived(bw, svc)
	}
	return bw.Flush()
}

// keepalivedMethod is lb_kind's word for a method.
func keepalivedMethod(m Method) string {
	switch m {
	case Tunnel:
		return "TUN"
	case Masq:
		return "NAT"
	case FullNat:
		return "FNAT"
	}
	return "DR"
}

func writeKeepalived(w *bufio.Writer, s Service) {
	if s.Fwmark != 0 {
		fmt.Fprintf(w, "\nvirtual_server fwmark %d {\n", s.Fwmark)
		if s.IPv6 {
			fmt.Fprintln(w, "    ip_family inet6")
		}
	} else {
		fmt.Fprintf(w, "\nvirtual_server %s %d {\n", s.VIP, s.Port)
		fmt.Fprintf(w, "    protocol %s\n", s.Protocol)
	}
	fmt.Fprintf(w, "    lb_algo %s\n", s.Scheduler)
	for _, f := range s.SchedFlags {
		fmt.Fprintf(w, "    %s\n", f)
	}
	if s.OnePacket {
		fmt.Fprintln(w, "    ops")
	}
	fmt.Fprintf(w, "    lb_kind %s\n", keepalivedMethod(s.Method))
	if s.Persistent > 0 {
		fmt.Fprintf(w, "    persistence_timeout %d\n", int64(s.Persistent.Seconds()))
		if s.PersistenceBits > 0 {
			fmt.Fprintf(w, "    persistence_granularity %d\n", s.PersistenceBits)
		}
	}
	for _, r := range sortedReals(s.Reals) {
		if s.Fwmark != 0 {
			fmt.Fprintf(w, "    real_server %s {\n", r.Addr)
		} else {
			fmt.Fprintf(w, "    real_server %s %d {\n", r.Addr, r.Port)
		}
		fmt.Fprintf(w, "        weight %d\n", r.Weight)
		fmt.Fprintln(w, "    }")
	}
	fmt.Fprintln(w, "}")
}

func writeSave(w *bufio.Writer, s Service) {
	id := "-f " + strconv.FormatUint(uint64(s.Fwmark), 10)
	if s.Fwmark == 0 {
		flag := "-t"
		switch s.Protocol {
		case UDP:
			flag = "-u"
		case SCTP:
			flag = "--sctp-service"
		}
		id = flag + " " + addrPort(s.VIP, s.Port)
	}
	fmt.Fprintf(w, "-A %s -s %s", id, s.Scheduler)
	if len(s.SchedFlags) > 0 {
		fmt.Fprintf(w, " -b %s", strings.Join(s.SchedFlags, ","))
	}
	if s.Persistent > 0 {
		fmt.Fprintf(w, " -p %d", int64(s.Persistent.Seconds()))
		if m := persistenceMask(s); m != "" {
			fmt.Fprintf(w, " -M %s", m)
		}
	}
	if s.OnePacket {
		fmt.Fprint(w, " -o")
	}
	fmt.Fprintln(w)
	for _, r := range sortedReals(s.Reals) {
		method := "-g"
		switch r.Method {
		case Tunnel:
			method = "-i"
		case Masq:
			method = "-m"
		case FullNat:
			method = "-b"
		}
		fmt.Fprintf(w, "-a %s -r %s %s -w %d\n", id, addrPort(r.Addr, r.Port), method, r.Weight)
	}
}
