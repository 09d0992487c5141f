package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults taken from keepalived's documented behaviour.
const (
	DefaultPriority       = 100
	DefaultInterval       = time.Second
	DefaultGARPDelay      = 5 * time.Second // second GARP burst after becoming MASTER
	DefaultGARPRepeat     = 5               // GARPs per burst
	DefaultGARPRefreshRep = 1
	PriorityOwner         = 255
	PriorityStop          = 0
)

// VIP is one virtual_ipaddress (or excluded) entry.
type VIP struct {
	Prefix netip.Prefix // address and prefix length (/32 or /128 when none was given)
	Dev    string       // interface; empty = the instance's interface
	Scope  string       // "global" (default), "link", "host", "site" or a number
	Label  string       // IPv4 address label, e.g. "eth0:1"
	// Broadcast (brd) and Peer (the other end of a point-to-point
	// address) are passed to the kernel as ip addr would.
	Broadcast, Peer netip.Addr
	// Flags are the address flags asked for (home, nodad, mngtmpaddr,
	// noprefixroute, autojoin).
	Flags AddrFlags
	// PreferredLft, when set, is the preferred lifetime in seconds
	// (preferred_lft); IPv6 VIPs default to 0 (deprecated).
	PreferredLft *uint32
}

// Route is one virtual_routes (or static_routes) entry: added when the
// instance becomes MASTER, after its addresses, and removed when it leaves
// MASTER, as keepalived does.
type Route struct {
	// Type is "" (unicast) or blackhole, unreachable, prohibit or throw.
	Type string
	Dst  netip.Prefix
	// Src is the preferred source address (ip route's src).
	Src netip.Addr
	// Via are the gateways; more than one ("via A or B") make a multipath
	// route with a next hop per gateway.
	Via []netip.Addr
	// Dev is the output interface; empty lets the kernel find it from Via.
	Dev    string
	Scope  string // as VIP.Scope; empty = link for a unicast route without gateway, else global
	Table  int    // 0 = main
	Metric int
	// Protocol is the route's origin; 0 = keepalived's (18, "keepalived" in
	// iproute2's rt_protos), so `ip route show proto keepalived` lists them.
	Protocol int
	OnLink   bool
}

// AddrFlags are the kernel address flags a VIP may ask for.
type AddrFlags struct {
	Home, NoDAD, ManageTempAddr, NoPrefixRoute, AutoJoin bool
}

// Track is one tracked object (interface or script). keepalived's semantics:
// weight 0 forces FAULT while the object is down; a positive weight is added
// to the priority while it is up; a negative weight is added while it is down.
type Track struct {
	Name   string
	Weight int
	// Reverse swaps up and down (keepalived's "reverse").
	Reverse bool
}

// TrackFile is a track_file definition: a file holding a number that the
// instances tracking it read whenever it changes (their Track entries carry
// the weights).
type TrackFile struct {
	Name string
	Path string
	// Init, when set, is written to the file at start if it does not
	// exist, or always with InitOverwrite (init_file).
	Init          *int
	InitOverwrite bool
}

// TrackScript is a vrrp_script: a command run every Interval whose exit code
// says up (0) or down. Rise/Fall consecutive results change its state.
type TrackScript struct {
	Name    string
	Command string
	// RunAs is the user (and group) the script runs as; empty: root.
	RunAs    RunAs
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
	// Weight is the script's default weight (the config mapping copies it
	// into Track entries that set none).
	Weight int
	// InitFail starts the script as failed until it succeeds Rise times.
	InitFail bool
}

// RunAs names the user and group a script runs as (keepalived's
// "script USER [GROUP]" and script_user); empty means root.
type RunAs struct {
	User, Group string `json:",omitempty"`
}

// Notify holds the scripts keepalived runs on state changes.
type Notify struct {
	Master, Backup, Fault, Stop string
	// Any is keepalived's "notify" script: it gets "INSTANCE" name state priority.
	Any string
	// MasterRxLowerPri runs when a MASTER hears a lower-priority advert
	// (notify_master_rx_lower_pri), at most once an advert interval.
	MasterRxLowerPri string `json:",omitempty"`
	// RunAs gives, by script kind ("master", "backup", "fault", "stop",
	// "notify", "master_rx_lower_pri"), the user a notify script runs as;
	// missing: root.
	RunAs map[string]RunAs `json:",omitempty"`
}

// GARP holds keepalived's gratuitous ARP / unsolicited NA timing.
type GARP struct {
	MasterDelay         time.Duration // second burst after becoming MASTER; 0 = 5 s, negative = none
	MasterRepeat        int           // messages per burst
	MasterRefresh       time.Duration // periodic refresh while MASTER; 0 = none
	MasterRefreshRepeat int
	// LowerPrioRepeat is the burst sent when a lower-priority advert reaches
	// the MASTER (a split brain healing): 0 = MasterRepeat, negative = none.
	LowerPrioRepeat int
	// Interval and NAInterval space the messages of a burst on one
	// interface (garp_interval, gna_interval); 0 sends them back to back.
	Interval, NAInterval time.Duration
}

// InstanceConfig is one vrrp_instance.
type InstanceConfig struct {
	Name      string
	Interface string
	VRID      uint8
	Priority  int           // 1..255; 255 = address owner
	Interval  time.Duration // advert_int
	Version   int           // 2 or 3
	IPv6      bool          // address family of the VIPs and adverts
	// InitialMaster is keepalived's "state MASTER". keepalived 2.2.7 still
	// starts such an instance in BACKUP with the full Master_Down_Interval
	// (only priority 255 starts as MASTER), and so does govs.
	InitialMaster bool
	NoPreempt     bool
	PreemptDelay  time.Duration
	AuthPass      string // v2 auth_type PASS; empty = no authentication
	AuthAH        bool   // auth_type AH: rejected as unsupported
	VIPs          []VIP
	ExcludedVIPs  []VIP   // added/removed with the VIPs but not advertised
	Routes        []Route // virtual_routes: present while MASTER
	Rules         []Rule  // virtual_rules: present while MASTER
	// McastGroup is the multicast group adverts go to without unicast
	// peers (vrrp_mcast_group4/6, mcast_dst_ip); invalid = the IANA group.
	McastGroup netip.Addr
	// UnicastSrc and UnicastPeers select unicast mode when peers are given.
	UnicastSrc   netip.Addr
	UnicastPeers []netip.Addr
	// PeerTTL bounds the TTL/hop limit accepted from a unicast peer
	// (unicast_peer's min_ttl/max_ttl); peers without an entry accept any.
	PeerTTL         map[netip.Addr]TTLRange
	TrackInterfaces []Track
	// NoAccept turns accept mode off (no_accept, vrrp_strict): as MASTER
	// the director drops packets addressed to the VIPs.
	NoAccept bool
	// DontTrackPrimary keeps Interface's link state from faulting the
	// instance (dont_track_primary); tracked interfaces still count.
	DontTrackPrimary bool
	TrackScripts     []Track
	// TrackFiles are track_file entries: Weight multiplies the file's
	// value (0: a non-zero value faults the instance).
	TrackFiles []Track
	Notify     Notify
	GARP       GARP
	SyncGroup  string // name of the vrrp_sync_group this instance belongs to
	// DownTimerAdverts is how many advert intervals (plus the skew) a
	// BACKUP waits for the master (down_timer_adverts); 0 is the RFC's 3.
	DownTimerAdverts int
	// LowerPrioNoAdvert keeps a MASTER from answering a lower-priority
	// advert with one of its own (lower_prio_no_advert; the RFC's rule).
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert makes a MASTER that yields to a higher priority
	// send one last advert of its own first (higher_prio_send_advert).
	HigherPrioSendAdvert bool
	// UnicastTTL is the TTL / hop limit of unicast adverts (unicast_ttl);
	// 0 is the RFC's 255. Multicast adverts always carry 255.
	UnicastTTL int
	// PromoteSecondaries sets the interface's promote_secondaries, so that
	// removing a VIP does not take the other addresses of its subnet along.
	PromoteSecondaries bool
	// NotifyPriorityChanges writes a MASTER_PRIORITY / BACKUP_PRIORITY line
	// to the notify FIFO when a tracked object moves the priority
	// (notify_priority_changes).
	NotifyPriorityChanges bool
	// TrackSrcIP faults the instance while its source address (unicast_src_ip,
	// or the interface's address it took) is not on its interface
	// (track_src_ip).
	TrackSrcIP bool
	// FaultNoPeer keeps the instance in FAULT: it was meant to be unicast
	// but has no peers (unicast_fault_no_peer).
	FaultNoPeer bool
	// CheckUnicastSrc drops unicast adverts from addresses that are not
	// unicast peers (check_unicast_src; keepalived accepts them otherwise).
	CheckUnicastSrc bool
}

// TTLRange is an inclusive range of TTLs.
type TTLRange struct{ Min, Max int }

// SyncGroup is a vrrp_sync_group: its instances change state together.
type SyncGroup struct {
	Name      string
	Instances []string
	Notify    Notify
}

// WithDefaults returns c with keepalived's defaults filled in.
func (c InstanceConfig) WithDefaults() InstanceConfig {
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Version == 0 {
		c.Version = 2
		if c.IPv6 {
			c.Version = 3
		}
	}
	if !c.McastGroup.IsValid() {
		c.McastGroup = MulticastIPv4
		if c.IPv6 {
			c.McastGroup = MulticastIPv6
		}
	}
	if c.DownTimerAdverts == 0 {
		c.DownTimerAdverts = 3
	}
	if c.GARP.MasterDelay == 0 {
		c.GARP.MasterDelay = DefaultGARPDelay
	}
	if c.GARP.MasterRepeat == 0 {
		c.GARP.MasterRepeat = DefaultGARPRepeat
	}
	if c.GARP.LowerPrioRepeat == 0 {
		c.GARP.LowerPrioRepeat = c.GARP.MasterRepeat
	}
	if c.GARP.MasterRefreshRepeat == 0 {
		c.GARP.MasterRefreshRepeat = DefaultGARPRefreshRep
	}
	return c
}

// Validate reports the first problem that keeps c from running.
func (c InstanceConfig) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("instance has no name"))
	}
	if c.Interface == "" {
		errs = append(errs, fmt.Errorf("instance %s: no interface", c.Name))
	}
	if c.VRID == 0 {
		errs = append(errs, fmt.Errorf("instance %s: virtual_router_id must be 1..255", c.Name))
	}
	if c.Priority < 1 || c.Priority > 255 {
		errs = append(errs, fmt.Errorf("instance %s: priority %d outside 1..255", c.Name, c.Priority))
	}
	switch c.Version {
	case 2:
		if c.IPv6 {
			errs = append(errs, fmt.Errorf("instance %s: VRRPv2 is IPv4 only", c.Name))
		}
		if c.Interval < time.Second || c.Interval%time.Second != 0 || c.Interval > 255*time.Second {
			errs = append(errs, fmt.Errorf("instance %s: VRRPv2 advert_int %v must be 1..255 whole seconds", c.Name, c.Interval))
		}
	case 3:
		if c.Interval < 10*time.Millisecond || c.Interval > 40950*time.Millisecond || c.Interval%(10*time.Millisecond) != 0 {
			errs = append(errs, fmt.Errorf("instance %s: VRRPv3 advert_int %v must be 0.01..40.95 s in centiseconds", c.Name, c.Interval))
		}
	default:
		errs = append(errs, fmt.Errorf("instance %s: vrrp version %d is not 2 or 3", c.Name, c.Version))
	}
	if c.UnicastTTL < 0 || c.UnicastTTL > 255 {
		errs = append(errs, fmt.Errorf("instance %s: unicast_ttl %d outside 1..255", c.Name, c.UnicastTTL))
	}
	if c.DownTimerAdverts < 0 || c.DownTimerAdverts > 100 {
		errs = append(errs, fmt.Errorf("instance %s: down_timer_adverts %d outside 1..100", c.Name, c.DownTimerAdverts))
	}
	if c.AuthAH {
		errs = append(errs, fmt.Errorf("instance %s: auth_type AH is not supported (use PASS or none)", c.Name))
	}
	if len(c.VIPs) == 0 {
		errs = append(errs, fmt.Errorf("instance %s: no virtual_ipaddress", c.Name))
	}
	if len(c.VIPs) > 255 {
		errs = append(errs, fmt.Errorf("instance %s: %d virtual_ipaddress entries, at most 255 are advertised", c.Name, len(c.VIPs)))
	}
	for _, v := range c.VIPs {
		if !v.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("instance %s: invalid virtual address", c.Name))
		} else if v.Prefix.Addr().Is4() == c.IPv6 {
			errs = append(errs, fmt.Errorf("instance %s: address %v is not of the instance's family", c.Name, v.Prefix))
		}
	}
	for _, v := range c.ExcludedVIPs {
		if !v.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("instance %s: invalid excluded virtual address", c.Name))
		}
	}
	for _, r := range c.Routes {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: virtual_routes %v: %w", c.Name, r.Dst, err))
		}
	}
	for _, r := range c.Rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("instance %s: virtual_rules %v: %w", c.Name, r, err))
		}
	}
	if c.McastGroup.IsValid() && (!c.McastGroup.IsMulticast() || c.McastGroup.Is4() == c.IPv6) {
		errs = append(errs, fmt.Errorf("instance %s: %v is not a multicast group of the instance's family", c.Name, c.McastGroup))
	}
	for _, p := range c.UnicastPeers {
		if p.Is4() == c.IPv6 {
			errs = append(errs, fmt.Errorf("instance %s: unicast peer %v is not of the instance's family", c.Name, p))
		}
	}
	return errors.Join(errs...)
}

// Addresses returns the advertised addresses (the VIPs without prefix).
func (c InstanceConfig) Addresses() []netip.Addr {
	out := make([]netip.Addr, 0, len(c.VIPs))
	for _, v := range c.VIPs {
		out = append(out, v.Prefix.Addr())
	}
	return out
}
