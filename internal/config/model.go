package config

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/config/diag"
)

// Pos is where a block or keyword was written.
type Pos = diag.Pos

// Config is everything a keepalived.conf declares that govs acts on, with
// keepalived's defaults filled in.
type Config struct {
	Global              Global
	Scripts             []*Script
	TrackFiles          []*TrackFile
	SyncGroups          []*SyncGroup
	Instances           []*VRRPInstance
	VirtualServerGroups []*VirtualServerGroup
	LocalAddressGroups  []*LocalAddressGroup
	VirtualServers      []*VirtualServer
	// BGP is the govs_bgp block, nil without one.
	BGP *BGP
	// StaticAddresses, StaticRoutes and StaticRules are static_ipaddress,
	// static_routes and static_rules: set while govs runs, whatever the
	// VRRP state.
	StaticAddresses []VIP
	StaticRoutes    []Route
	StaticRules     []Rule
	// Ignored lists keywords keepalived knows that govs accepted without
	// acting on them.
	Ignored []Ignored
}

// KeywordPos maps each keyword written in a block to the line it was
// written on (the last one when repeated), so later errors, e.g. from the
// daemon, can point at it.
type KeywordPos map[string]Pos

// Of returns where keyword was written, or the zero Pos.
func (k KeywordPos) Of(keyword string) Pos { return k[keyword] }

func (k *KeywordPos) add(n *node) {
	if *k == nil {
		*k = KeywordPos{}
	}
	(*k)[n.Keyword] = n.Pos
}

// Ignored is a keyword govs accepted but does not act on.
type Ignored struct {
	Keyword string
	Pos     Pos
}

// Script returns the vrrp_script called name, or nil.
func (c *Config) Script(name string) *Script {
	for _, s := range c.Scripts {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Instance returns the vrrp_instance called name, or nil.
func (c *Config) Instance(name string) *VRRPInstance {
	for _, in := range c.Instances {
		if in.Name == name {
			return in
		}
	}
	return nil
}

// LocalAddressGroup returns the local_address_group called name, or nil.
func (c *Config) LocalAddressGroup(name string) *LocalAddressGroup {
	for _, g := range c.LocalAddressGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// LocalAddressGroup is DPVS's local_address_group: the source addresses of
// a FullNAT service's packets to its real servers.
type LocalAddressGroup struct {
	Name    string
	Pos     Pos
	Entries []LocalAddr
}

// LocalAddr is one line of a local_address_group: an address range and the
// interface govs puts the addresses on ("" when the operator holds them).
type LocalAddr struct {
	First, Last netip.Addr
	Interface   string
	Pos         Pos
}

// VirtualServerGroup returns the virtual_server_group called name, or nil.
func (c *Config) VirtualServerGroup(name string) *VirtualServerGroup {
	for _, g := range c.VirtualServerGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// Global is the global_defs block.
type Global struct {
	Pos                   Pos
	Keywords              KeywordPos
	RouterID              string
	NotificationEmail     []string
	NotificationEmailFrom string
	// SMTPServer is a host name or address; SMTPServerPort defaults to 25.
	SMTPServer         string
	SMTPServerPort     uint16
	SMTPHeloName       string
	SMTPConnectTimeout time.Duration
	// VRRPVersion is the default for instances without `version` (2).
	VRRPVersion     int
	VRRPMcastGroup4 netip.Addr
	VRRPMcastGroup6 netip.Addr
	VRRPStrict      bool
	// GARP holds the vrrp_garp_* defaults for every instance.
	GARP GARP
	// Adverts holds the vrrp_down_timer_adverts, vrrp_lower_prio_no_advert
	// and vrrp_higher_prio_send_advert defaults.
	Adverts AdvertRules
	// NotifyPriorityChanges is vrrp_notify_priority_changes.
	NotifyPriorityChanges bool
	// VRRPStartupDelay is vrrp_startup_delay: the instances start that
	// long after govs does (at its start only, not at a reload).
	VRRPStartupDelay time.Duration
	// CheckUnicastSrc is vrrp_check_unicast_src, every instance's default.
	CheckUnicastSrc bool
	// VRRPNotifyFIFO is vrrp_notify_fifo (its path in Cmd, the owner as
	// User/Group): a line per VRRP state change; VRRPNotifyFIFOScript reads
	// it (vrrp_notify_fifo_script, given the FIFO as its last argument).
	VRRPNotifyFIFO, VRRPNotifyFIFOScript Command
	// StartupScript and ShutdownScript run once, when govs starts (before
	// anything else) and when it has stopped; each is killed past its
	// timeout (10 s unless *_script_timeout says).
	StartupScript, ShutdownScript   Command
	StartupTimeout, ShutdownTimeout time.Duration
	DefaultInterface                string
	ScriptUser                      string
	ScriptGroup                     string
	EnableScriptSecurity            bool
	LVSFlush                        bool
	// XDPInterfaces (govs_xdp_interface) are the interfaces the XDP data
	// plane attaches to for virtual servers whose VIP is not managed by a
	// vrrp_instance.
	XDPInterfaces []string
	// ConnTableSize and EmbryoTableSize (govs_conn_table_size,
	// govs_embryo_table_size) size the data plane's connection and
	// embryonic-flow tables; 0: the defaults.
	ConnTableSize, EmbryoTableSize int
	// NewFlowLimit (govs_new_flow_limit) caps the connection entries the
	// data plane makes per second; 0: no cap.
	NewFlowLimit uint32
	// LVSTimeouts are lvs_timeouts: the connection entries' idle timeouts
	// (tcp, tcpfin, udp); a zero one keeps the data plane's default.
	LVSTimeouts LVSTimeouts
	// LVSSyncDaemon (lvs_sync_daemon) turns on connection synchronisation
	// between directors; nil when not configured.
	LVSSyncDaemon *LVSSyncDaemon
}

// LVSSyncDaemon is the connection synchronisation setting: while MASTER of
// Instance, a director multicasts its connections on Interface; every
// director learns the connections of the others.
type LVSSyncDaemon struct {
	Pos       Pos
	Interface string
	Instance  string
	// SyncID (0..255) tells groups of directors on one network apart;
	// defaults to the instance's virtual_router_id.
	SyncID int
	// MaxLen is the largest sync message (UDP payload) in bytes.
	MaxLen int
	Port   uint16
	TTL    int
	Group  netip.Addr
	// Key (govs_sync_key in global_defs) authenticates the messages with
	// HMAC-SHA256; empty: unauthenticated, as keepalived's.
	Key string
	// Mesh is govs_bgp's connection_sync: no VRRP instance (Instance is
	// empty), every director sends its own connections and takes the
	// others'.
	Mesh bool
}

// GARP are the gratuitous ARP / unsolicited NA settings of an instance.
type GARP struct {
	// MasterDelay is the delay before the second burst after becoming
	// MASTER (0 disables the second burst).
	MasterDelay time.Duration
	// MasterRepeat is how many messages each burst sends.
	MasterRepeat int
	// MasterRefresh is the interval of periodic refreshes while MASTER
	// (0: none).
	MasterRefresh       time.Duration
	MasterRefreshRepeat int
	LowerPrioDelay      time.Duration
	LowerPrioRepeat     int
	// Interval is the gap between messages on one interface.
	Interval time.Duration
	// NAInterval is the gap between unsolicited neighbour advertisements.
	NAInterval time.Duration
}

// Command is a script or program keepalived would run, with an optional
// user and group to run it as.
type Command struct {
	Cmd   string
	User  string
	Group string
	Pos   Pos
}

// IsSet reports whether a command was configured.
func (c Command) IsSet() bool { return c.Cmd != "" }

// Script is a vrrp_script: a command run periodically whose result moves
// the priority of the instances tracking it.
type Script struct {
	Name     string
	Pos      Pos
	Keywords KeywordPos
	Cmd      Command
	Interval time.Duration
	// Timeout is how long a run may take (0: Interval, as keepalived).
	Timeout  time.Duration
	Weight   int
	Reverse  bool
	Rise     int
	Fall     int
	InitFail bool
}

// Notify holds the notify_* scripts of an instance or sync group.
type Notify struct {
	Master Command
	Backup Command
	Fault  Command
	Stop   Command
	// Any is `notify`, run on every transition.
	Any Command
	// MasterRxLowerPri is notify_master_rx_lower_pri (instances only).
	MasterRxLowerPri Command
}

// TrackInterface is one entry of track_interface.
type TrackInterface struct {
	Name    string
	Weight  int
	Reverse bool
	Pos     Pos
}

// TrackScript is one entry of track_script.
type TrackScript struct {
	Name string
	// Weight is the entry's weight, or the script's when WeightSet is false.
	Weight    int
	WeightSet bool
	Reverse   bool
	Pos       Pos
}

// SyncGroup is a vrrp_sync_group: instances that change state together.
type SyncGroup struct {
	Name            string
	Pos             Pos
	Keywords        KeywordPos
	Instances       []string
	Notify          Notify
	TrackInterfaces []TrackInterface
	TrackScripts    []TrackScript
	TrackFiles      []TrackScript
	// TrackingWeight is sync_group_tracking_weight: the members' tracked
	// objects keep their weights (keepalived otherwise ignores them).
	TrackingWeight bool
	SMTPAlert      bool
}

// VRRPState is the initial state of an instance.
type VRRPState int

// Initial states.
const (
	StateBackup VRRPState = iota
	StateMaster
)

func (s VRRPState) String() string {
	if s == StateMaster {
		return "MASTER"
	}
	return "BACKUP"
}

// AuthType is the VRRPv2 authentication method.
type AuthType int

// Authentication types.
const (
	AuthNone AuthType = iota
	AuthPass
	AuthAH
)

func (a AuthType) String() string {
	switch a {
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return "none"
}

// Auth is an instance's authentication block.
type Auth struct {
	Type AuthType
	// Pass is at most 8 bytes: keepalived uses only the first eight.
	Pass string
	Pos  Pos
}

// VIP is an address entry of virtual_ipaddress (or _excluded).
type VIP struct {
	// Prefix is the address with its length (/32 or /128 when not given).
	Prefix netip.Prefix
	Dev    string
	Scope  string
	Label  string
	Brd    netip.Addr
	Peer   netip.Addr
	// Options are the remaining flags (home, -nodad, no_track, ...).
	Options []string
	Pos     Pos
}

// UnicastPeer is one entry of unicast_peer.
type UnicastPeer struct {
	Addr   netip.Addr
	MinTTL int
	MaxTTL int
	Pos    Pos
}

// VRRPInstance is a vrrp_instance.
type VRRPInstance struct {
	Name      string
	Pos       Pos
	Keywords  KeywordPos
	State     VRRPState
	Interface string
	VRID      int
	Priority  int
	// AdvertInt is the advertisement interval (1s); VRRPv3 allows
	// centisecond resolution.
	AdvertInt time.Duration
	// Version is 2 or 3 (from global vrrp_version unless set).
	Version      int
	NoPreempt    bool
	PreemptDelay time.Duration
	Auth         Auth
	VIPs         []VIP
	ExcludedVIPs []VIP
	// Routes and Rules are virtual_routes and virtual_rules: present
	// while the instance is MASTER.
	Routes []Route
	Rules  []Rule
	// UnicastSrcIP is also set by mcast_src_ip (same meaning in keepalived).
	UnicastSrcIP    netip.Addr
	UnicastPeers    []UnicastPeer
	McastDstIP      netip.Addr
	TrackInterfaces []TrackInterface
	TrackScripts    []TrackScript
	// TrackFiles are track_file entries (the shape of track_script's).
	TrackFiles       []TrackScript
	DontTrackPrimary bool
	Notify           Notify
	GARP             GARP
	Adverts          AdvertRules
	// UnicastTTL is unicast_ttl (1..255; 0: 255).
	UnicastTTL int
	// NotifyPriorityChanges is notify_priority_changes (default global
	// vrrp_notify_priority_changes): priority lines in the notify FIFO.
	NotifyPriorityChanges bool
	// TrackSrcIP is track_src_ip: the instance faults while its source
	// address is not on its interface.
	TrackSrcIP bool
	// UnicastFaultNoPeer is unicast_fault_no_peer: an instance whose
	// unicast_peer block is empty stays in FAULT instead of using multicast.
	UnicastFaultNoPeer bool
	// CheckUnicastSrc is check_unicast_src (or global
	// vrrp_check_unicast_src, or a peer's min_ttl/max_ttl): unicast adverts
	// from addresses that are not peers are dropped.
	CheckUnicastSrc bool
	// PromoteSecondaries is promote_secondaries: the interface keeps the
	// other addresses of a VIP's subnet when the VIP goes.
	PromoteSecondaries bool
	// Accept is keepalived's accept mode (default on unless vrrp_strict).
	Accept    bool
	SMTPAlert bool
	// SyncGroup is the name of the group the instance belongs to, if any.
	SyncGroup string
}

// Protocol is the L4 protocol of a virtual server.
type Protocol int

// Protocols.
const (
	TCP Protocol = iota
	UDP
	SCTP
)

func (p Protocol) String() string {
	switch p {
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "TCP"
}

// Method is an LVS forwarding method.
type Method int

// Forwarding methods; NAT is keepalived's default.
const (
	NAT Method = iota
	DR
	TUN
	// FNAT is FullNAT (the Alibaba LVS fork's and DPVS's lb_kind FNAT):
	// NAT of both ends, the source to a local_address_group address.
	FNAT
)

func (m Method) String() string {
	switch m {
	case DR:
		return "DR"
	case TUN:
		return "TUN"
	case FNAT:
		return "FNAT"
	}
	return "NAT"
}

// IPVSName is how ipvsadm -L names the method.
func (m Method) IPVSName() string {
	switch m {
	case DR:
		return "Route"
	case TUN:
		return "Tunnel"
	case FNAT:
		return "FullNat" // as DPVS's ipvsadm prints it
	}
	return "Masq"
}

// VSGroupEntry is one line of a virtual_server_group: an address range with
// a port, or a firewall mark.
type VSGroupEntry struct {
	// First and Last bound the address range (equal for one address).
	First  netip.Addr
	Last   netip.Addr
	Port   uint16
	Fwmark uint32
	// Family is "inet" or "inet6" for fwmark entries that set it.
	Family string
	Pos    Pos
}

// VirtualServerGroup is a virtual_server_group.
type VirtualServerGroup struct {
	Name    string
	Pos     Pos
	Entries []VSGroupEntry
}

// CheckDefaults are the checker timings a virtual server or real server
// hands down to its checkers.
type CheckDefaults struct {
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration
	DelayLoop        time.Duration
	Alpha            bool
	// set records which fields were written, for inheritance.
	set checkSet
}

type checkSet struct {
	connectTimeout, retry, delayBeforeRetry, warmup, delayLoop, alpha bool
}

// SorryServer is the server used when quorum is lost.
type SorryServer struct {
	Addr    netip.Addr
	Port    uint16
	Method  Method
	GUEPort uint16 // TUN: the GUE UDP port ("type gue port N"); 0 is ipip
	Inhibit bool
	Pos     Pos
}

// VirtualServer is a virtual_server: exactly one of Addr (with Port),
// Fwmark or Group identifies it.
type VirtualServer struct {
	Pos      Pos
	Keywords KeywordPos
	Addr     netip.Addr
	Port     uint16
	Fwmark   uint32
	Group    string
	// Family is "inet" or "inet6" (ip_family, for fwmark services).
	Family   string
	Protocol Protocol
	// Scheduler is lvs_sched / lb_algo (ipvsadm's default wlc if unset).
	Scheduler      string
	SchedulerFlags []string
	Method         Method
	// GUEPort is, for TUN, the UDP port of GUE encapsulation ("lb_kind TUN
	// type gue port N"); 0 is IP-in-IP.
	GUEPort uint16
	// LocalAddressGroup is laddr_group_name, for FNAT.
	LocalAddressGroup string
	// PersistenceTimeout is 0 when the service is not persistent.
	PersistenceTimeout time.Duration
	// PersistenceGranularity is the client mask length (-M), /32 or /128
	// when not given.
	PersistenceGranularity int
	DelayLoop              time.Duration
	Quorum                 int
	Hysteresis             int
	QuorumUp               Command
	QuorumDown             Command
	Alpha                  bool
	Omega                  bool
	HASuspend              bool
	VirtualHost            string
	InhibitOnFailure       bool
	SorryServer            *SorryServer
	// Checks are the timings real servers and checkers inherit.
	Checks      CheckDefaults
	RealServers []*RealServer
}

// Persistent reports whether the service is persistent.
func (vs *VirtualServer) Persistent() bool { return vs.PersistenceTimeout > 0 }

// Name describes the service like keepalived logs it.
func (vs *VirtualServer) Name() string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.Fwmark != 0:
		// IPVS tells fwmark services apart by mark and family.
		if vs.Family == "inet6" || vs.Family == "" && len(vs.RealServers) > 0 && vs.RealServers[0].Addr.Is6() {
			return "fwmark " + itoa(int(vs.Fwmark)) + " inet6"
		}
		return "fwmark " + itoa(int(vs.Fwmark))
	}
	return hostPort(vs.Addr, vs.Port)
}

// RealServer is a real_server of a virtual server.
type RealServer struct {
	Pos      Pos
	Keywords KeywordPos
	Addr     netip.Addr
	Port     uint16
	Weight   int
	// Method (and GUEPort) is inherited from the virtual server unless set.
	Method           Method
	GUEPort          uint16
	InhibitOnFailure bool
	NotifyUp         Command
	NotifyDown       Command
	UThreshold       int
	LThreshold       int
	VirtualHost      string
	Checks           CheckDefaults
	Checkers         []*Checker

	inhibitSet bool
}

// CheckerType is a health checker family.
type CheckerType int

// Checker families.
const (
	TCPCheck CheckerType = iota
	HTTPGet
	SSLGet
	MiscCheck
	DNSCheck
	SMTPCheck
	UDPCheck
	PingCheck
)

var checkerNames = [...]string{"TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "DNS_CHECK", "SMTP_CHECK", "UDP_CHECK", "PING_CHECK"}

func (t CheckerType) String() string {
	if int(t) < len(checkerNames) {
		return checkerNames[t]
	}
	return "UNKNOWN_CHECK"
}

// Target is where a checker connects to, and from.
type Target struct {
	// ConnectIP and ConnectPort default to the real server's.
	ConnectIP   netip.Addr
	ConnectPort uint16
	BindTo      netip.Addr
	BindPort    uint16
	BindIf      string
	Fwmark      uint32
	Pos         Pos
}

// Checker is one health checker of a real server, with inherited timings
// resolved.
type Checker struct {
	Type     CheckerType
	Pos      Pos
	Keywords KeywordPos
	Target
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration
	DelayLoop        time.Duration
	Alpha            bool
	LogAllFailures   bool

	// Exactly the part of Type is set.
	HTTP *HTTPCheck
	Misc *MiscCheckSpec
	DNS  *DNSCheckSpec
	SMTP *SMTPCheckSpec
	UDP  *UDPCheckSpec

	checks CheckDefaults
}

// HTTPCheck are the HTTP_GET / SSL_GET settings.
type HTTPCheck struct {
	URLs []URL
	// Protocol is http_protocol: 1.0, 1.0C or 1.1 (default 1.0).
	Protocol     string
	VirtualHost  string
	EnableSNI    bool
	FastRecovery bool
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// URL is one url block.
type URL struct {
	Path   string
	Digest string
	// StatusCodes default to 200-299.
	StatusCodes  []StatusRange
	VirtualHost  string
	Regex        string
	RegexNoMatch bool
	Pos          Pos
}

// MiscCheckSpec are the MISC_CHECK settings.
type MiscCheckSpec struct {
	Path    Command
	Timeout time.Duration
	Dynamic bool
}

// DNSCheckSpec are the DNS_CHECK settings.
type DNSCheckSpec struct {
	// Type is the query type (SOA by default).
	Type string
	// Name is the query name ("." by default).
	Name string
}

// SMTPCheckSpec are the SMTP_CHECK settings.
type SMTPCheckSpec struct {
	HeloName string
	// Hosts are the extra targets of old-style host {} blocks; each is
	// checked like its own checker.
	Hosts []Target
}

// UDPCheckSpec are the UDP_CHECK settings.
type UDPCheckSpec struct {
	Payload      []byte
	RequireReply bool
	// ReplyPattern is the hex string the reply must start with; x matches
	// any nibble.
	ReplyPattern   string
	MinReplyLength int
	MaxReplyLength int
}

// LVSTimeouts are lvs_timeouts' values; zero: not given.
type LVSTimeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// AdvertRules are keepalived's options on advert handling, as global
// defaults (vrrp_*) and per instance.
type AdvertRules struct {
	// DownTimerAdverts is down_timer_adverts (1..100); 0: the RFC's 3.
	DownTimerAdverts int
	// LowerPrioNoAdvert: a MASTER does not answer a lower-priority advert.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert: a MASTER sends one advert before it yields.
	HigherPrioSendAdvert bool
}
