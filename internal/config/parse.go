package config

import (
	"net/netip"
	"time"

	"github.com/govs/govs/internal/config/diag"
	"github.com/govs/govs/internal/config/lexer"
)

// Diagnostic is one error or warning, with the file and line it is about.
type Diagnostic = diag.Diagnostic

// Diagnostics is the list of everything found wrong with a configuration.
type Diagnostics = diag.List

// Severities.
const (
	SeverityError   = diag.Error
	SeverityWarning = diag.Warning
)

// FS is where configuration files are read from.
type FS = lexer.FS

// MapFS is an in-memory FS for tests and embedding.
type MapFS = lexer.MapFS

// OSFS reads files from the operating system.
type OSFS = lexer.OSFS

// Options controls parsing.
type Options struct {
	// FS reads the configuration and its includes; nil means the OS.
	FS FS
	// ConfigID selects @ID conditional lines (keepalived's -i).
	ConfigID string
	// MaxIncludeDepth caps include nesting (default 16).
	MaxIncludeDepth int
}

func (o Options) lexer() lexer.Options {
	return lexer.Options{FS: o.FS, ConfigID: o.ConfigID, MaxIncludeDepth: o.MaxIncludeDepth}
}

// ParseFile reads a keepalived.conf and everything it includes. It returns
// the model (never nil) and every diagnostic found, sorted by position.
// The model is only fit to run when the diagnostics hold no error.
func ParseFile(path string, opts Options) (*Config, Diagnostics) {
	lines, d := lexer.LexFile(path, opts.lexer())
	return build(lines, d)
}

// ParseString parses src as the content of a file called name; includes are
// read through opts.FS.
func ParseString(name, src string, opts Options) (*Config, Diagnostics) {
	lines, d := lexer.LexString(name, src, opts.lexer())
	return build(lines, d)
}

func build(lines []lexer.Line, d diag.List) (*Config, Diagnostics) {
	tree := buildTree(lines, &d)
	b := &builder{d: &d, cfg: newConfig(), inst: map[*VRRPInstance]*instanceSet{}}
	b.top(tree)
	b.resolve()
	d.Sort()
	return b.cfg, d
}

func newConfig() *Config {
	return &Config{Global: Global{
		SMTPServerPort:     25,
		SMTPConnectTimeout: 30 * time.Second,
		StartupTimeout:     10 * time.Second,
		ShutdownTimeout:    10 * time.Second,
		VRRPVersion:        2,
		VRRPMcastGroup4:    netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:    netip.MustParseAddr("ff02::12"),
		GARP: GARP{
			MasterDelay:         5 * time.Second,
			MasterRepeat:        5,
			MasterRefreshRepeat: 1,
			LowerPrioDelay:      5 * time.Second,
			LowerPrioRepeat:     5,
		},
	}}
}

// ignoredTop are top-level blocks keepalived knows and govs leaves alone.
var ignoredTop = map[string]bool{
	"linkbeat_interfaces": true, "vrrp_track_process": true, "bfd_instance": true, "SSL": true, "net_namespace": true,
	"net_namespace_ipvs": true, "instance": true, "use_pid_dir": true,
	"interface_up_down_delays": true, "garp_group": true, "namespace_with_ipsets": true,
}

func (b *builder) top(nodes []*node) {
	for _, n := range nodes {
		switch n.Keyword {
		case "global_defs":
			if b.block(n) {
				b.global(n)
			}
		case "vrrp_script", "vrrp_track_script":
			b.script(n)
		case "vrrp_sync_group":
			b.syncGroup(n)
		case "vrrp_instance":
			b.instance(n)
		case "virtual_server_group":
			b.vsGroup(n)
		case "local_address_group":
			b.localAddressGroup(n)
		case "govs_bgp":
			b.bgp(n)
		case "static_ipaddress":
			b.cfg.StaticAddresses = append(b.cfg.StaticAddresses, b.vips(n)...)
		case "static_routes":
			b.cfg.StaticRoutes = append(b.cfg.StaticRoutes, b.routes(n)...)
		case "track_file", "vrrp_track_file":
			b.trackFile(n)
		case "static_rules":
			b.cfg.StaticRules = append(b.cfg.StaticRules, b.rules(n)...)
		case "virtual_server":
			b.virtualServer(n)
		default:
			b.other(n, "top level", ignoredTop)
		}
	}
}
