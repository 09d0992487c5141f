// Package status is the observable model of a running govs director: a
// point-in-time Snapshot of virtual services, real servers, counters,
// connections and VRRP instances, a formatter that prints it the way
// `ipvsadm -L -n` prints the kernel's IPVS table, and a rate estimator that
// turns successive counter snapshots into per-second rates.
//
// The package is pure: it holds data and text formatting only, so the daemon,
// the control socket, the metrics collector and the CLI can all share it
// without pulling in any OS glue.
package status

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Snapshot is the state of a director at one instant. The daemon builds it;
// everything else only reads it.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Version is the govs version the daemon runs.
	Version string `json:"version,omitempty"`
	// ConnTableSize is the capacity of the data plane's connection table.
	ConnTableSize int `json:"conn_table_size"`
	// EmbryoTableSize is the capacity of its embryonic-flow table (TCP
	// flows of which only the SYN was seen), kept apart so that a SYN
	// flood cannot evict established connections.
	EmbryoTableSize int            `json:"embryo_table_size,omitempty"`
	Services        []Service      `json:"services"`
	VRRP            []VRRPInstance `json:"vrrp,omitempty"`
	// Connections is filled only when connections are asked for: the table
	// can be large, and a plain status request should stay cheap.
	Connections []Connection `json:"connections,omitempty"`
	// Totals are the data plane's global counters, the counterpart of
	// /proc/net/ip_vs_stats. They are kept by the daemon rather than summed
	// here so that removing a service on reload does not make them go back.
	Totals Counters `json:"totals"`
	// Drops counts packets the data plane dropped, by reason.
	Drops map[string]uint64 `json:"drops,omitempty"`
	// Packets counts what the data plane did with packets outside the
	// services' counters, by a snake_case name: passed to the kernel (and
	// why), ICMP errors and fragments forwarded, NAT replies rewritten,
	// TUN packets answered as too big.
	Packets map[string]uint64 `json:"packets,omitempty"`
	// Reloads says how configuration reloads went.
	Reloads Reloads `json:"reloads"`
	// Sync is connection synchronisation (lvs_sync_daemon), when it runs.
	Sync *ConnSync `json:"sync,omitempty"`
	// BGP is the BGP speaker (govs_bgp), when it runs.
	BGP *BGP `json:"bgp,omitempty"`
}

// BGP is the BGP speaker's state: its sessions and what it announces.
type BGP struct {
	LocalAS   uint32         `json:"local_as"`
	RouterID  netip.Addr     `json:"router_id"`
	Peers     []BGPPeer      `json:"peers"`
	Announced []netip.Prefix `json:"announced"`
	// VIPs says, for every VIP, whether it is announced and why not.
	VIPs []BGPVIP `json:"vips"`
	// Announcements and Withdrawals count the updates since the start.
	Announcements uint64 `json:"announcements"`
	Withdrawals   uint64 `json:"withdrawals"`
}

// BGPVIP is one VIP's announcement state.
type BGPVIP struct {
	VIP       netip.Addr `json:"vip"`
	Announced bool       `json:"announced"`
	// Reason is why it is not announced ("ready" while it is ready but
	// held down until HeldUntil).
	Reason    string     `json:"reason"`
	HeldUntil *time.Time `json:"held_until,omitempty"`
	Flaps     int        `json:"flaps,omitempty"`
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	Addr     netip.Addr `json:"addr"`
	RemoteAS uint32     `json:"remote_as"`
	// State is the session's FSM state (idle ... established).
	State       string `json:"state"`
	Established bool   `json:"established"`
}

// ConnSync is what connection synchronisation did since it started.
type ConnSync struct {
	// Instance is the VRRP instance whose MASTER sends; Interface carries
	// the multicast.
	Instance  string `json:"instance"`
	Interface string `json:"interface"`
	// Complete: this director holds every connection of the master (a
	// dump answered its request).
	Complete bool `json:"complete"`
	// Messages and entries sent and received; Inserted are received
	// entries that were new here.
	MessagesSent     uint64 `json:"messages_sent"`
	EntriesSent      uint64 `json:"entries_sent"`
	MessagesReceived uint64 `json:"messages_received"`
	EntriesReceived  uint64 `json:"entries_received"`
	Inserted         uint64 `json:"inserted"`
	// Rejected counts messages dropped, by reason: while_master,
	// unauthenticated, replayed, other (malformed, another sync id,
	// another interface, this host).
	Rejected map[string]uint64 `json:"rejected,omitempty"`
	// Dump requests sent and received, dumps of the whole table sent.
	RequestsSent     uint64 `json:"requests_sent"`
	RequestsReceived uint64 `json:"requests_received"`
	Dumps            uint64 `json:"dumps"`
	// NewConnections the data plane recorded for sending at once;
	// NewConnectionsLost those it could not (a full ring: table scans send
	// them); Scans the table scans.
	NewConnections     uint64 `json:"new_connections"`
	NewConnectionsLost uint64 `json:"new_connections_lost"`
	Scans              uint64 `json:"scans"`
}

// Reloads counts configuration reloads by outcome. The configuration the
// daemon started with counts as the first good one.
type Reloads struct {
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	// LastOK is whether the latest attempt, reload or start, succeeded.
	LastOK bool `json:"last_ok"`
	// LastSuccess is when the running configuration was loaded.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is why the latest failed reload failed.
	LastError string `json:"last_error,omitempty"`
}

// Service is one virtual server: either an address, port and protocol, or a
// firewall mark.
type Service struct {
	Protocol Protocol   `json:"protocol"`
	VIP      netip.Addr `json:"vip,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	// Fwmark, when not zero, makes this a firewall-mark service; VIP, Port
	// and Protocol are then unused.
	Fwmark uint32 `json:"fwmark,omitempty"`
	// IPv6 marks an IPv6 fwmark service, which has no VIP to tell its family.
	IPv6      bool   `json:"ipv6,omitempty"`
	Scheduler string `json:"scheduler"`
	// Persistent is the persistence timeout; zero means not persistent.
	Persistent time.Duration `json:"persistent_ns,omitempty"`
	// PersistenceBits is the persistence granularity as a prefix length
	// (keepalived's persistence_granularity); zero means one client address
	// (32 for IPv4, 128 for IPv6).
	PersistenceBits int `json:"persistence_bits,omitempty"`
	// OnePacket is keepalived's `ops`: every packet is scheduled on its own.
	OnePacket bool `json:"one_packet,omitempty"`
	// SchedFlags are the scheduler flags in force, as ipvsadm names them
	// (sh-port, mh-port).
	SchedFlags []string `json:"sched_flags,omitempty"`
	// Method is the service's default forwarding method (lb_kind).
	Method Method `json:"method"`
	Reals  []Real `json:"reals"`
	// Removed are the configured real servers the health checks took out
	// (without inhibit_on_failure keepalived removes them from IPVS, and
	// `govs list` does not show them); metrics keep them visible as down.
	Removed []Real   `json:"removed,omitempty"`
	Stats   Counters `json:"stats"`
	Rates   Rates    `json:"rates"`
}

// Real is one real server (destination) of a service.
type Real struct {
	Addr       netip.Addr `json:"addr"`
	Port       uint16     `json:"port"`
	Method     Method     `json:"method"`
	Weight     int        `json:"weight"`
	ActiveConn uint64     `json:"active_conn"`
	InactConn  uint64     `json:"inact_conn"`
	// PersistConns are the clients persistence keeps on it now.
	PersistConns uint64 `json:"persist_conns,omitempty"`
	// Healthy is the health checkers' verdict; with inhibit_on_failure an
	// unhealthy server stays listed with weight 0.
	Healthy bool `json:"healthy"`
	// Checkers describe the health checkers, one line each (printed by
	// `govs check` under the real server).
	Checkers []string `json:"checkers,omitempty"`
	// CheckStats are the running checkers' results, in Checkers' order.
	CheckStats []CheckerStats `json:"check_stats,omitempty"`
	Stats      Counters       `json:"stats"`
	Rates      Rates          `json:"rates"`
}

// CheckerStats are what one health checker's probes found.
type CheckerStats struct {
	Name string `json:"name"`
	Up   bool   `json:"up"`
	// Checked is set once it has a result.
	Checked     bool          `json:"checked"`
	Successes   uint64        `json:"successes"`
	Failures    uint64        `json:"failures"`
	Transitions uint64        `json:"transitions"`
	LastError   string        `json:"last_error,omitempty"`
	LastLatency time.Duration `json:"last_latency_ns"`
	// LatencyBuckets (upper bounds) and LatencyCounts (cumulative) are the
	// probe latency histogram; LatencySum adds every probe's latency.
	LatencyBuckets []time.Duration `json:"latency_buckets_ns,omitempty"`
	LatencyCounts  []uint64        `json:"latency_counts,omitempty"`
	LatencySum     time.Duration   `json:"latency_sum_ns"`
}

// Counters are monotonically increasing totals. In direct routing the
// director never sees the replies, so OutPkts and OutBytes stay zero, exactly
// as they do for LVS-DR.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Rates are per-second rates derived from Counters by an Estimator.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"in_pps"`
	OutPPS uint64 `json:"out_pps"`
	InBPS  uint64 `json:"in_bps"`
	OutBPS uint64 `json:"out_bps"`
}

// Connection is one entry of the data plane's connection table.
type Connection struct {
	Protocol Protocol       `json:"protocol"`
	Client   netip.AddrPort `json:"client"`
	Virtual  netip.AddrPort `json:"virtual"`
	Real     netip.AddrPort `json:"real"`
	// State is the protocol state as IPVS names it (ESTABLISHED, SYN_RECV,
	// FIN_WAIT, CLOSE, NONE for UDP, ...).
	State string `json:"state"`
	// Expires is the time left before the entry times out.
	Expires time.Duration `json:"expires_ns"`
}

// VRRPInstance is the state of one vrrp_instance.
type VRRPInstance struct {
	Name      string `json:"name"`
	Interface string `json:"interface"`
	VRID      uint8  `json:"vrid"`
	State     string `json:"state"`
	// Priority is the configured priority; EffectivePriority is what is
	// advertised after tracked scripts and interfaces adjusted it.
	Priority          int          `json:"priority"`
	EffectivePriority int          `json:"effective_priority"`
	VIPs              []netip.Addr `json:"vips"`
	// Master is the current master's address when known (it is the local
	// address when this instance is MASTER).
	Master netip.Addr `json:"master,omitzero"`
	// Stats counts adverts and transitions since the instance started
	// (a reload that restarts it starts them again).
	Stats VRRPStats `json:"stats"`
}

// VRRPStats are an instance's advert and transition counters, as
// keepalived keeps them per instance.
type VRRPStats struct {
	AdvertsSent          uint64 `json:"adverts_sent"`
	AdvertsReceived      uint64 `json:"adverts_received"`
	BecameMaster         uint64 `json:"became_master"`
	ReleasedMaster       uint64 `json:"released_master"`
	PriorityZeroSent     uint64 `json:"priority_zero_sent"`
	PriorityZeroReceived uint64 `json:"priority_zero_received"`
	// Dropped counts adverts dropped by the receive rules, by reason (a
	// short snake_case name such as auth_type_mismatch).
	Dropped map[string]uint64 `json:"dropped,omitempty"`
}

// VRRP states as keepalived names them.
const (
	StateInit   = "INIT"
	StateBackup = "BACKUP"
	StateMaster = "MASTER"
	StateFault  = "FAULT"
)

// VRRPStates lists the states an instance can be in, in a stable order.
var VRRPStates = [...]string{StateInit, StateBackup, StateMaster, StateFault}

// Protocol is a virtual service's transport protocol, by IP protocol number.
type Protocol uint8

// Protocols a virtual service can carry.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns the protocol as ipvsadm prints it.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// MarshalText encodes the protocol by name.
func (p Protocol) MarshalText() ([]byte, error) {
	switch p {
	case TCP, UDP, SCTP:
		return []byte(p.String()), nil
	case 0:
		return []byte{}, nil
	}
	return nil, fmt.Errorf("marshal protocol: unknown protocol %d", uint8(p))
}

// UnmarshalText decodes a protocol name, case-insensitively.
func (p *Protocol) UnmarshalText(b []byte) error {
	switch strings.ToUpper(string(b)) {
	case "TCP":
		*p = TCP
	case "UDP":
		*p = UDP
	case "SCTP":
		*p = SCTP
	case "":
		*p = 0
	default:
		return fmt.Errorf("unmarshal protocol: unknown protocol %q", b)
	}
	return nil
}

// Method is an LVS forwarding method. The zero value is direct routing,
// govs's (and ipvsadm's) default.
type Method uint8

// Forwarding methods.
const (
	Route   Method = iota // direct routing (lb_kind DR, ipvsadm -g)
	Tunnel                // IP-in-IP (lb_kind TUN, ipvsadm -i)
	Masq                  // NAT (lb_kind NAT, ipvsadm -m)
	FullNat               // FullNAT (lb_kind FNAT; DPVS's ipvsadm -b)
)

// String returns the method as ipvsadm's Forward column prints it.
func (m Method) String() string {
	switch m {
	case Route:
		return "Route"
	case Tunnel:
		return "Tunnel"
	case Masq:
		return "Masq"
	case FullNat:
		return "FullNat"
	}
	return fmt.Sprintf("method-%d", uint8(m))
}

// MarshalText encodes the method by its ipvsadm name.
func (m Method) MarshalText() ([]byte, error) {
	if m > FullNat {
		return nil, fmt.Errorf("marshal method: unknown method %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText decodes an ipvsadm or keepalived method name.
func (m *Method) UnmarshalText(b []byte) error {
	switch strings.ToUpper(string(b)) {
	case "ROUTE", "DR", "":
		*m = Route
	case "TUNNEL", "TUN":
		*m = Tunnel
	case "MASQ", "NAT":
		*m = Masq
	case "FULLNAT", "FNAT":
		*m = FullNat
	default:
		return fmt.Errorf("unmarshal method: unknown method %q", b)
	}
	return nil
}

// ServiceKey identifies a virtual service across snapshots.
type ServiceKey struct {
	Protocol Protocol
	VIP      netip.Addr
	Port     uint16
	Fwmark   uint32
	IPv6     bool
}

// Key returns the identity of the service.
func (s *Service) Key() ServiceKey {
	if s.Fwmark != 0 {
		return ServiceKey{Fwmark: s.Fwmark, IPv6: s.IsIPv6()}
	}
	return ServiceKey{Protocol: s.Protocol, VIP: s.VIP, Port: s.Port}
}

// IsIPv6 reports whether the service carries IPv6.
func (s *Service) IsIPv6() bool {
	if s.Fwmark != 0 {
		return s.IPv6
	}
	return s.VIP.Is6() && !s.VIP.Is4In6()
}

// RealKey identifies a real server of a service across snapshots.
type RealKey struct {
	Service ServiceKey
	Addr    netip.Addr
	Port    uint16
}
