// Package realserver prepares a Linux host to be a real (web) server behind a
// govs director in Direct Routing or IP-in-IP tunnel mode: the VIP on lo (DR)
// or on the fallback tunnel device (TUN), ARP settings that keep the host from
// answering or announcing the VIP, and rp_filter off for decapsulated packets.
//
// The package is split in two: a pure part (Desired, Plan, Check, PlanDown)
// that computes what must change from an observed state, and a Host that
// observes and applies changes (LinuxHost: netlink and /proc/sys). Manager
// glues them together and keeps a small state file with the sysctl values it
// replaced, so Down restores exactly what Up changed.
package realserver

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Mode is how the director forwards packets to this host.
type Mode string

// Forwarding modes.
const (
	// ModeDR (direct routing): the director rewrites only the destination MAC.
	ModeDR Mode = "dr"
	// ModeTUN: the director encapsulates packets in IP-in-IP (IPv4) or
	// IPv6-in-IPv6 (IPv6) and this host decapsulates them.
	ModeTUN Mode = "tun"
)

// ParseMode parses "dr" or "tun".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(s)); m {
	case ModeDR, ModeTUN:
		return m, nil
	}
	return "", fmt.Errorf("parse mode: %q is not dr or tun", s)
}

// Tunnel device names: the kernel's per-namespace fallback devices, which
// receive every IP-in-IP packet not claimed by a configured tunnel. A second
// ipip device without endpoints cannot be created next to them (the kernel
// reports it as a duplicate), so these are the devices to use.
const (
	TunnelDev4 = "tunl0"
	TunnelDev6 = "ip6tnl0"
)

// VIP is one virtual address and the mode it is served in.
type VIP struct {
	Addr netip.Addr `json:"addr"`
	Mode Mode       `json:"mode"`
	// Decap, in TUN mode, names the interface where govs's XDP program
	// decapsulates the director's packets (internal/decap), for a kernel
	// without the ipip / ip6tnl modules; then the VIP is on lo as in DR.
	// Empty: the kernel's tunnel device decapsulates.
	Decap string `json:"decap,omitempty"`
	// GUEPort, with Decap, also decapsulates GUE to this UDP port (the
	// virtual server's "lb_kind TUN type gue port N").
	GUEPort uint16 `json:"gue_port,omitempty"`
}

func (v VIP) String() string {
	if v.Decap != "" {
		return fmt.Sprintf("%s (%s, decapsulated by XDP on %s)", v.Addr, v.Mode, v.Decap)
	}
	return fmt.Sprintf("%s (%s)", v.Addr, v.Mode)
}

// Device returns the interface the VIP is configured on.
func (v VIP) Device() string {
	if v.Mode == ModeTUN && v.Decap == "" {
		if v.Addr.Is4() {
			return TunnelDev4
		}
		return TunnelDev6
	}
	return "lo"
}

// Prefix returns the VIP as a host prefix (/32 or /128).
func (v VIP) Prefix() netip.Prefix {
	return netip.PrefixFrom(v.Addr, v.Addr.BitLen())
}

// Label returns the IPv4 address label ("lo:govs") that marks the address as
// govs's in `ip addr`; IPv6 addresses have no labels.
func (v VIP) Label() string {
	if !v.Addr.Is4() {
		return ""
	}
	return v.Device() + ":govs"
}

// Setting is one sysctl. Key is the path below /proc/sys
// ("net/ipv4/conf/all/arp_ignore"): slashes, because interface names may
// contain dots.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Name returns the sysctl's dotted name, as sysctl(8) prints it.
func Name(key string) string { return strings.ReplaceAll(key, "/", ".") }

// Tunnel is a tunnel device that must exist and be up.
type Tunnel struct {
	Name string
	// IPv6 selects ip6tnl instead of ipip.
	IPv6 bool
}

// Address is a VIP address on a device.
type Address struct {
	Dev    string
	Prefix netip.Prefix
	Label  string
}

// Decap is govs's XDP decapsulation program on an interface, for VIPs,
// with the GUE ports it decapsulates on.
type Decap struct {
	Interface string
	VIPs      []netip.Addr
	GUEPorts  []uint16
}

// Spec is the state a host must be in to serve a set of VIPs.
type Spec struct {
	Tunnels []Tunnel
	Addrs   []Address
	Sysctls []Setting
	Decaps  []Decap
}

// Devices returns every device the spec touches.
func (s Spec) Devices() []string {
	var devs []string
	add := func(d string) {
		if !slices.Contains(devs, d) {
			devs = append(devs, d)
		}
	}
	for _, t := range s.Tunnels {
		add(t.Name)
	}
	for _, a := range s.Addrs {
		add(a.Dev)
	}
	for _, d := range s.Decaps {
		add(d.Interface)
	}
	return devs
}

// ValidateVIPs checks that the VIPs are usable addresses in a known mode.
func ValidateVIPs(vips []VIP) error {
	for _, v := range vips {
		switch {
		case !v.Addr.IsValid():
			return fmt.Errorf("validate vip: missing address")
		case v.Addr.Is4In6():
			return fmt.Errorf("validate vip %s: use the plain IPv4 form", v.Addr)
		case v.Addr.Zone() != "":
			return fmt.Errorf("validate vip %s: zones are not allowed", v.Addr)
		case v.Addr.IsUnspecified(), v.Addr.IsMulticast(), v.Addr.IsLinkLocalUnicast(), v.Addr.IsLoopback():
			return fmt.Errorf("validate vip %s: not a unicast service address", v.Addr)
		}
		if _, err := ParseMode(string(v.Mode)); err != nil {
			return fmt.Errorf("validate vip %s: %w", v.Addr, err)
		}
		if v.Decap != "" && v.Mode != ModeTUN {
			return fmt.Errorf("validate vip %s: XDP decapsulation is for tun mode, not %s", v.Addr, v.Mode)
		}
		if v.GUEPort != 0 && v.Decap == "" {
			return fmt.Errorf("validate vip %s: GUE is decapsulated by govs's XDP program only (the kernel would need the fou module and 'ip fou add port %d gue')", v.Addr, v.GUEPort)
		}
	}
	return nil
}

// Desired returns what the host needs for vips. ARP settings are needed as
// soon as one IPv4 VIP exists (they are per host, not per address); IPv6 needs
// none, because Linux answers neighbour solicitations only for addresses on
// the receiving interface, never for those on lo or a tunnel.
func Desired(vips []VIP) Spec {
	var s Spec
	set := func(key, value string) {
		if !slices.ContainsFunc(s.Sysctls, func(x Setting) bool { return x.Key == key }) {
			s.Sysctls = append(s.Sysctls, Setting{Key: key, Value: value})
		}
	}
	tunnel := func(t Tunnel) {
		if !slices.Contains(s.Tunnels, t) {
			s.Tunnels = append(s.Tunnels, t)
		}
	}
	var any4 bool
	for _, v := range vips {
		a := Address{Dev: v.Device(), Prefix: v.Prefix(), Label: v.Label()}
		if !slices.Contains(s.Addrs, a) {
			s.Addrs = append(s.Addrs, a)
		}
		if v.Addr.Is4() {
			any4 = true
		}
		switch {
		case v.Mode == ModeTUN && v.Decap != "":
			i := slices.IndexFunc(s.Decaps, func(d Decap) bool { return d.Interface == v.Decap })
			if i < 0 {
				s.Decaps = append(s.Decaps, Decap{Interface: v.Decap})
				i = len(s.Decaps) - 1
			}
			if !slices.Contains(s.Decaps[i].VIPs, v.Addr) {
				s.Decaps[i].VIPs = append(s.Decaps[i].VIPs, v.Addr)
			}
			if v.GUEPort != 0 && !slices.Contains(s.Decaps[i].GUEPorts, v.GUEPort) {
				s.Decaps[i].GUEPorts = append(s.Decaps[i].GUEPorts, v.GUEPort)
			}
		case v.Mode == ModeTUN:
			tunnel(Tunnel{Name: v.Device(), IPv6: v.Addr.Is6()})
		}
	}
	if any4 {
		set("net/ipv4/conf/all/arp_ignore", "1")
		set("net/ipv4/conf/lo/arp_ignore", "1")
		set("net/ipv4/conf/all/arp_announce", "2")
		set("net/ipv4/conf/lo/arp_announce", "2")
	}
	for _, t := range s.Tunnels {
		if !t.IPv6 {
			// The effective rp_filter is the larger of "all" and the device's:
			// decapsulated packets come from clients the host would not route
			// through tunl0, so both must be 0.
			set("net/ipv4/conf/all/rp_filter", "0")
			set("net/ipv4/conf/"+t.Name+"/rp_filter", "0")
		}
	}
	for _, d := range s.Decaps {
		// Decapsulated packets arrive on the interface itself, from clients
		// the host may route elsewhere.
		set("net/ipv4/conf/all/rp_filter", "0")
		set("net/ipv4/conf/"+d.Interface+"/rp_filter", "0")
	}
	return s
}
