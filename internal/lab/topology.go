// Package lab builds the project's scenario in network namespaces: a client
// on a public network, a router with one public address that port-forwards
// TCP 80 to the VIP, a LAN bridge, two directors and N web servers prepared
// as DR real servers and running an HTTP server that answers its own name.
//
//	client ──203.0.113.0/24── router ──┐ LAN 198.18.0.0/24 (bridge in ns "lan")
//	 .10                        .1     ├── router  198.18.0.1  (default gateway)
//	                                   ├── dir1    198.18.0.11 ┐ VRRP for VIP 198.18.0.100
//	                                   ├── dir2    198.18.0.12 ┘ (govs run, started later)
//	                                   ├── web1    198.18.0.21 (VIP on lo)
//	                                   └── webN    198.18.0.20+N
//
// In NAT mode (--mode nat) the web servers hold no VIP: the directors
// rewrite the destination to them, and their default route goes through
// the gateway address 198.18.0.254 (2001:db8:18::254) that VRRP moves with
// the VIP, so replies cross the master, which rewrites them back.
//
// In FullNAT mode (--mode fnat) the web servers hold no VIP and need no
// route through the directors: the master sends them each connection from
// a local address (198.18.0.250-251, 2001:db8:18::250), which VRRP moves
// with the VIP, and they answer it on the LAN.
//
// The same in IPv6: public 2001:db8:113::/64 (router ::1, client ::10), LAN
// 2001:db8:18::/64 (router ::1, dir1 ::11, web1 ::21, VIP 2001:db8:18::100).
//
// Every namespace of lab NAME is called govs-lab-NAME-ROLE, so Down finds
// them even without the state file. This file holds the pure part: names,
// addresses and generated configuration; lab.go does the work.
package lab

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Addresses of the lab. Documentation and benchmarking ranges only.
var (
	PublicNet = netip.MustParsePrefix("203.0.113.0/24")
	PublicIP  = netip.MustParseAddr("203.0.113.1")
	ClientIP  = netip.MustParseAddr("203.0.113.10")
	LANNet    = netip.MustParsePrefix("198.18.0.0/24")
	RouterLAN = netip.MustParseAddr("198.18.0.1")
	VIP       = netip.MustParseAddr("198.18.0.100")

	PublicNet6 = netip.MustParsePrefix("2001:db8:113::/64")
	PublicIP6  = netip.MustParseAddr("2001:db8:113::1")
	ClientIP6  = netip.MustParseAddr("2001:db8:113::10")
	LANNet6    = netip.MustParsePrefix("2001:db8:18::/64")
	RouterLAN6 = netip.MustParseAddr("2001:db8:18::1")
	VIP6       = netip.MustParseAddr("2001:db8:18::100")

	// GatewayVIP and GatewayVIP6 are the NAT web servers' default gateway:
	// held by the VRRP master with the VIPs.
	GatewayVIP  = netip.MustParseAddr("198.18.0.254")
	GatewayVIP6 = netip.MustParseAddr("2001:db8:18::254")

	// LocalAddrs and LocalAddrs6 are FullNAT's local addresses, held by
	// the VRRP master with the VIPs.
	LocalAddrs  = []netip.Addr{netip.MustParseAddr("198.18.0.250"), netip.MustParseAddr("198.18.0.251")}
	LocalAddrs6 = []netip.Addr{netip.MustParseAddr("2001:db8:18::250")}
)

// Forwarding modes of the lab.
const (
	ModeDR  = "dr"
	ModeNAT = "nat"
	// ModeTUN: the master encapsulates in IP-in-IP; the web servers
	// decapsulate with govs's XDP program (the lab's kernels need no ipip
	// module) and answer clients directly, as in DR.
	ModeTUN = "tun"
	// ModeGUE is ModeTUN in GUE (UDP to GUEPort): "lb_kind TUN type gue
	// port 6080", decapsulated by the same program.
	ModeGUE = "gue"
	// ModeFNAT: FullNAT (lb_kind FNAT) from the local addresses.
	ModeFNAT = "fnat"
)

// GUEPort is the lab's GUE decapsulation port.
const GUEPort = 6080

// Port is the forwarded service port.
const Port = 80

// MaxWebs bounds the number of web servers (addresses .21 to .99).
const MaxWebs = 79

// MaxDirectors bounds the number of directors (addresses .11 to .19).
const MaxDirectors = 9

// BGP mode: the router (AS RouterAS) peers with every director (AS
// DirectorAS) and routes the VIPs over all that announce them.
const (
	RouterAS   = 65000
	DirectorAS = 65001
	// BGPHoldTime is the sessions' hold time: how long the router keeps
	// routing to a director whose link died without a word.
	BGPHoldTime = 3 * time.Second
	// ResilientTable is the kernel table BIRD writes its routes to in the
	// resilient mode, from which govs lab nexthops builds the groups.
	ResilientTable = 100
)

var nameRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// Topology is the shape of one lab.
type Topology struct {
	Name string
	Webs int
	// Mode is ModeDR (the default when empty), ModeNAT, ModeFNAT, ModeTUN
	// or ModeGUE.
	Mode string
	// Directors is the number of directors (0: 2).
	Directors int
	// BGP makes every director active: each announces the VIPs to BIRD on
	// the router over BGP, the router spreads flows over them (ECMP, L4
	// hash) and the directors share connections (mesh sync); no VRRP.
	BGP bool
	// Resilient (with BGP) has the router route the VIPs through a
	// resilient nexthop group, so that a director leaving moves only its
	// own flows and one joining takes only idle buckets.
	Resilient bool
}

// DirectorCount is the number of directors.
func (t Topology) DirectorCount() int {
	if t.Directors == 0 {
		return 2
	}
	return t.Directors
}

// DirectorRoles returns "dir1".."dirN".
func (t Topology) DirectorRoles() []string {
	roles := make([]string, t.DirectorCount())
	for i := range roles {
		roles[i] = fmt.Sprintf("dir%d", i+1)
	}
	return roles
}

// NAT reports whether the lab forwards in NAT mode.
func (t Topology) NAT() bool { return t.Mode == ModeNAT }

// FNAT reports whether the lab forwards in FullNAT mode.
func (t Topology) FNAT() bool { return t.Mode == ModeFNAT }

// Validate checks the lab name and size. Names have no dashes, so that the
// prefix of one lab ("govs-lab-a-") never matches another's namespaces.
func (t Topology) Validate() error {
	if !nameRE.MatchString(t.Name) {
		return fmt.Errorf("validate lab: name %q must be 1-16 lower-case letters or digits", t.Name)
	}
	if t.Webs < 1 || t.Webs > MaxWebs {
		return fmt.Errorf("validate lab: %d web servers, want 1 to %d", t.Webs, MaxWebs)
	}
	if n := t.DirectorCount(); n < 1 || n > MaxDirectors || (!t.BGP && n != 2) {
		return fmt.Errorf("validate lab: %d directors: a VRRP lab has 2, a BGP lab 1 to %d", n, MaxDirectors)
	}
	if t.BGP && t.Mode != "" && t.Mode != ModeDR && t.Mode != ModeTUN && t.Mode != ModeGUE {
		return fmt.Errorf("validate lab: mode %q with BGP: the directors are all active, so only modes whose replies bypass them (%s, %s, %s) work", t.Mode, ModeDR, ModeTUN, ModeGUE)
	}
	if t.Resilient && !t.BGP {
		return fmt.Errorf("validate lab: the resilient nexthop router needs BGP")
	}
	if t.Mode != "" && t.Mode != ModeDR && t.Mode != ModeNAT && t.Mode != ModeFNAT && t.Mode != ModeTUN && t.Mode != ModeGUE {
		return fmt.Errorf("validate lab: mode %q, want %s, %s, %s, %s or %s", t.Mode, ModeDR, ModeNAT, ModeFNAT, ModeTUN, ModeGUE)
	}
	return nil
}

// Prefix starts the name of every namespace of the lab.
func (t Topology) Prefix() string { return "govs-lab-" + t.Name + "-" }

// NS returns the namespace name of a role ("client", "web1", ...).
func (t Topology) NS(role string) string { return t.Prefix() + role }

// WebRoles returns "web1".."webN".
func (t Topology) WebRoles() []string {
	roles := make([]string, t.Webs)
	for i := range roles {
		roles[i] = fmt.Sprintf("web%d", i+1)
	}
	return roles
}

// Roles lists every namespace role in creation order.
func (t Topology) Roles() []string {
	roles := []string{"lan", "router", "client"}
	roles = append(roles, t.DirectorRoles()...)
	return append(roles, t.WebRoles()...)
}

// LANAddr returns the LAN address of a role on the LAN.
func (t Topology) LANAddr(role string) (netip.Addr, bool) {
	var n int
	switch {
	case role == "router":
		return RouterLAN, true
	case strings.HasPrefix(role, "dir"):
		if _, err := fmt.Sscanf(role, "dir%d", &n); err != nil || n < 1 || n > t.DirectorCount() {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + n)}), true
	case strings.HasPrefix(role, "web"):
		if _, err := fmt.Sscanf(role, "web%d", &n); err != nil || n < 1 || n > t.Webs {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4([4]byte{198, 18, 0, byte(20 + n)}), true
	}
	return netip.Addr{}, false
}

// LANAddr6 returns the IPv6 LAN address of a role: the IPv4 address's last
// number written in the last group (198.18.0.21 is 2001:db8:18::21), so the
// two are easy to match by eye.
func (t Topology) LANAddr6(role string) (netip.Addr, bool) {
	a4, ok := t.LANAddr(role)
	if !ok {
		return netip.Addr{}, false
	}
	a6, err := netip.ParseAddr(fmt.Sprintf("2001:db8:18::%d", a4.As4()[3]))
	return a6, err == nil
}

// LANRoles lists the roles with a port on the LAN bridge.
func (t Topology) LANRoles() []string {
	roles := []string{"router"}
	roles = append(roles, t.DirectorRoles()...)
	return append(roles, t.WebRoles()...)
}

// KeepalivedConf returns the keepalived.conf for a director: the scenario's
// VRRP instance on the director's LAN interface (dir1 starts as MASTER with
// the higher priority) and the virtual server VIP:80 in DR mode (or NAT,
// with the web servers' gateway address in the instance) over the web
// servers with TCP_CHECK. The check uses "retry", not the scenario's older
// "nb_get_retry", which keepalived 2.2 rejects inside TCP_CHECK.
func (t Topology) KeepalivedConf(director string) (string, error) {
	if _, ok := t.LANAddr(director); !ok || !strings.HasPrefix(director, "dir") {
		return "", fmt.Errorf("keepalived conf: %q is not a director", director)
	}
	if t.BGP {
		return t.bgpKeepalivedConf(director), nil
	}
	state, prio := "BACKUP", 100
	if director == "dir1" {
		state, prio = "MASTER", 150
	}
	vips, vips6, kind := VIP.String(), VIP6.String(), "DR"
	if t.NAT() {
		// The web servers' gateway moves with the VIPs.
		vips += "\n        " + GatewayVIP.String()
		vips6 += "\n        " + GatewayVIP6.String()
		kind = "NAT"
	}
	switch t.Mode {
	case ModeTUN:
		kind = "TUN"
	case ModeGUE:
		kind = fmt.Sprintf("TUN type gue port %d", GUEPort)
	case ModeFNAT:
		// The local addresses move with the VIPs: the new master sends
		// synced connections from the same address and port.
		for _, a := range LocalAddrs {
			vips += "\n        " + a.String()
		}
		for _, a := range LocalAddrs6 {
			vips6 += "\n        " + a.String()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "! Generated by govs lab %s for %s.\n", t.Name, director)
	fmt.Fprintf(&b, "global_defs {\n    router_id govs_lab_%s_%s\n    lvs_sync_daemon eth0 VI_1\n}\n\n", t.Name, director)
	fmt.Fprintf(&b, `vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 51
    priority %d
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass govslab
    }
    virtual_ipaddress {
        %s
    }
    # An instance's adverts carry one family; the IPv6 VIP moves with it.
    virtual_ipaddress_excluded {
        %s
    }
}
`, state, prio, vips, vips6)
	// The same service in IPv4 and IPv6; the IPv6 one's checks leave from
	// the director's own address, not from the (deprecated) VIP.
	if t.FNAT() {
		for _, g := range []struct {
			name  string
			addrs []netip.Addr
		}{{"laddr4", LocalAddrs}, {"laddr6", LocalAddrs6}} {
			fmt.Fprintf(&b, "\nlocal_address_group %s {\n", g.name)
			for _, a := range g.addrs {
				fmt.Fprintf(&b, "    %s\n", a)
			}
			b.WriteString("}\n")
		}
	}
	for _, family := range []struct {
		vip   netip.Addr
		addr  func(string) (netip.Addr, bool)
		group string
	}{{VIP, t.LANAddr, "laddr4"}, {VIP6, t.LANAddr6, "laddr6"}} {
		method := kind
		if t.FNAT() {
			method = "FNAT\n    laddr_group_name " + family.group
		}
		fmt.Fprintf(&b, `
virtual_server %s %d {
    delay_loop 2
    lb_algo rr
    lb_kind %s
    protocol TCP
`, family.vip, Port, method)
		for _, w := range t.WebRoles() {
			addr, _ := family.addr(w)
			b.WriteString(realServerBlock(addr, fmt.Sprintf("\n            connect_port %d", Port)))
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}

// realServerBlock is a web server's real_server block: weight 1,
// inhibit_on_failure and a TCP_CHECK with the lab's timings (labtest.go's
// constants), extra appended inside it.
func realServerBlock(addr netip.Addr, extra string) string {
	return fmt.Sprintf(`
    real_server %s %d {
        weight 1
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1%s
        }
    }
`, addr, Port, extra)
}

// NginxConf returns an nginx configuration that answers every request on
// port 80 with the server's name, keeping every file nginx writes in dir.
func NginxConf(name, dir string) string {
	p := func(f string) string { return dir + "/" + name + "-nginx" + f }
	return fmt.Sprintf(`# Generated by govs lab for %[1]s.
daemon off;
worker_processes 1;
pid %[2]s;
error_log %[3]s warn;
events {
    worker_connections 512;
}
http {
    access_log off;
    client_body_temp_path %[4]s/body;
    proxy_temp_path %[4]s/proxy;
    fastcgi_temp_path %[4]s/fastcgi;
    uwsgi_temp_path %[4]s/uwsgi;
    scgi_temp_path %[4]s/scgi;
    server {
        listen %[5]d default_server;
        listen [::]:%[5]d default_server;
        default_type text/plain;
        add_header X-Server %[1]s;
        location / {
            return 200 "%[1]s\n";
        }
    }
}
`, name, p(".pid"), p(".log"), p("-tmp"), Port)
}

// NftRuleset returns the router's nftables ruleset: TCP 80 to the public
// address is forwarded (DNAT) to the VIP, for IPv4 and IPv6. There is no masquerading: web
// servers answer clients directly through the router, whose connection
// tracking reverses the DNAT on the way back.
func NftRuleset(table string) string {
	return fmt.Sprintf(`table inet %[1]s {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr %[2]s tcp dport %[4]d dnat ip to %[3]s:%[4]d
        ip6 daddr %[5]s tcp dport %[4]d dnat ip6 to [%[6]s]:%[4]d
    }
}
`, table, PublicIP, VIP, Port, PublicIP6, VIP6)
}

// NftTable is the name of the router's nftables table.
const NftTable = "govs_lab"
