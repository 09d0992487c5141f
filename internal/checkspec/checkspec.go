// Package checkspec describes health checkers as plain values: what to
// probe, how and how often, for each real server of a virtual server. The plan
// (internal/desired) builds these from keepalived.conf; internal/check runs
// them. It is pure so the plan stays free of the probes' OS glue.
package checkspec

import (
	"net/netip"
	"time"
)

// Type is a checker's keyword in keepalived.conf.
type Type string

// Checker types.
const (
	TCP  Type = "TCP_CHECK"
	HTTP Type = "HTTP_GET"
	SSL  Type = "SSL_GET"
	Misc Type = "MISC_CHECK"
	DNS  Type = "DNS_CHECK"
	SMTP Type = "SMTP_CHECK"
	UDP  Type = "UDP_CHECK"
	Ping Type = "PING_CHECK"
)

// keepalived's defaults.
const (
	DefaultDelayLoop      = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultHELO           = "smtpchecker.keepalived.org"
	DefaultDNSType        = "SOA"
	DefaultDNSName        = "."
	DefaultUDPMaxReply    = 255
)

// Timing is a checker's retry schedule.
type Timing struct {
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration
}

// DefaultTiming is keepalived's schedule for a checker of type t that sets
// none of it, with delayLoop its resolved delay_loop: one retry after 1 s
// (HTTP_GET and SSL_GET 3 s), DNS_CHECK three retries a delay_loop apart,
// MISC_CHECK none, and a warm-up of one delay_loop. The configuration's
// inheritance and the checker both take it from here.
func DefaultTiming(t Type, delayLoop time.Duration) Timing {
	tm := Timing{Retry: 1, DelayBeforeRetry: time.Second, Warmup: delayLoop}
	switch t {
	case HTTP, SSL:
		tm.DelayBeforeRetry = 3 * time.Second
	case DNS:
		tm.Retry, tm.DelayBeforeRetry = 3, delayLoop
	case Misc:
		tm.Retry = 0
	}
	return tm
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// URL is one url block of HTTP_GET or SSL_GET.
type URL struct {
	Path string
	// Digest is the hex MD5 of the body, as keepalived's genhash prints it
	// ("" = not checked).
	Digest string
	// StatusCodes accepted; empty means 200-299.
	StatusCodes []StatusRange
	// VirtualHost overrides the checker's for this url.
	VirtualHost string
	// Regex must match the body (RE2 syntax, which covers the PCRE2
	// patterns keepalived's examples use); RegexNoMatch inverts it.
	Regex        string
	RegexNoMatch bool
}

// TLSOptions are SSL_GET's TLS settings. Like keepalived, the server's
// certificate is not verified unless CAFile is set.
type TLSOptions struct {
	// ServerName is sent as SNI when EnableSNI is set (sni_name; default the
	// virtual host).
	EnableSNI  bool
	ServerName string
	// CAFile, CertFile and KeyFile come from the global SSL block.
	CAFile, CertFile, KeyFile string
}

// Script is a command to run: a notify script or a misc_path. Command is
// split like a shell word list (single and double quotes group words).
type Script struct {
	Command string
	// User and Group to run as ("" = as govs).
	User, Group string
}

// Spec is one checker, with keepalived's inheritance (virtual server ->
// real server -> checker) already resolved by the caller. Zero values mean
// "keepalived's default"; pointers distinguish an explicit 0.
type Spec struct {
	Type Type

	ConnectIP   netip.Addr // default: the real server's address
	ConnectPort uint16     // default: the real server's port
	BindTo      netip.Addr
	BindPort    uint16
	// BindIf binds the probe's socket to an interface (SO_BINDTODEVICE)
	// and Fwmark marks its packets (SO_MARK), for policy routing.
	BindIf string
	Fwmark uint32
	// ConnectTimeout bounds one probe (connect and I/O); default 5s.
	ConnectTimeout time.Duration

	Retry            *int           // default 1 (DNS_CHECK 3, MISC_CHECK 0)
	DelayBeforeRetry *time.Duration // default 1s (HTTP/SSL 3s, DNS delay_loop)
	Warmup           *time.Duration // default delay_loop; 0 disables
	DelayLoop        time.Duration  // default: the virtual server's, else 60s
	Alpha            bool

	// HTTP_GET and SSL_GET.
	URLs         []URL
	VirtualHost  string
	HTTPProtocol string // "1.0" (default), "1.0C" or "1.1"
	TLS          TLSOptions

	// MISC_CHECK.
	MiscPath    Script
	MiscTimeout time.Duration // default delay_loop
	MiscDynamic bool

	// DNS_CHECK.
	DNSType string // A, NS, CNAME, SOA, MX, TXT, AAAA; default SOA
	DNSName string // default "."

	// SMTP_CHECK.
	HELOName string

	// UDP_CHECK.
	Payload        []byte
	RequireReply   bool
	ReplyPattern   string // hex; X or x ignores a nibble
	MinReplyLength int
	MaxReplyLength int // default 255
}

// RealServer is a real server and its checkers.
type RealServer struct {
	Addr       netip.AddrPort
	Weight     int // keepalived's default is 1; the caller sets it
	Inhibit    bool
	NotifyUp   *Script
	NotifyDown *Script
	Checkers   []Spec
}

// SorryServer replaces the pool when quorum is lost.
type SorryServer struct {
	Addr    netip.AddrPort
	Weight  int
	Inhibit bool
}

// VirtualServer is one virtual server's health configuration.
type VirtualServer struct {
	// Name identifies it in logs and events, e.g. "198.18.0.100:80".
	Name        string
	DelayLoop   time.Duration // default for its checkers
	Quorum      int           // default 1
	Hysteresis  int
	QuorumUp    *Script
	QuorumDown  *Script
	Sorry       *SorryServer
	Omega       bool
	RealServers []RealServer
}
