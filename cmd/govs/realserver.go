package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/realserver"
)

// realserverOptions are the flags of `govs realserver` and its subcommands.
type realserverOptions struct {
	vips, gateways        []string
	mode, state           string
	decap, decapInterface string
	guePort               uint16
	verbose               bool
}

// newRealserverCmd is `govs realserver up|down|status`: this host as a real
// server, DR or TUN (VIP, ARP and rp_filter settings, restored by down), or
// NAT (checked only: replies must route through the director).
func newRealserverCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &realserverOptions{}
	root := &cobra.Command{
		Use:   "realserver",
		Short: "prepare this host as a DR/TUN real server, or check it as a NAT one (up, down, status)",
		Long: "Prepares this host as a real server: the VIP on lo (dr) or on tunl0/ip6tnl0 (tun),\n" +
			"arp_ignore=1 and arp_announce=2, rp_filter 0 for tunnels; down restores what up changed.\n" +
			"On a kernel without the ipip/ip6tnl modules, tun attaches govs's XDP decapsulation program to\n" +
			"--interface (the one the director's packets arrive on) and puts the VIP on lo (--decap auto, the\n" +
			"default; --decap kernel or xdp to choose).\n" +
			"A NAT real server (--mode nat --gateway DIRECTOR_ADDR) holds no VIP: its default route must go\n" +
			"through the director, which up and status check (and say how to set) without changing it.\n" +
			"status exits 0 when the host is ready, 1 when not.",
		Args: subcommandArgs,
		RunE: usageExit(stderr),
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&o.vips, "vip", nil, "virtual IP `address` (repeatable, or comma-separated)")
	pf.StringVar(&o.mode, "mode", "dr", "forwarding mode: dr, tun or nat")
	pf.StringSliceVar(&o.gateways, "gateway", nil, "nat: the director `address` replies must route through (one per family)")
	pf.StringVar(&o.state, "state", realserver.DefaultStatePath, "state file recording what up changed")
	pf.StringVar(&o.decap, "decap", "auto", "tun: who decapsulates: kernel (tunl0/ip6tnl0), xdp (govs's program on --interface), or auto")
	pf.StringVar(&o.decapInterface, "interface", "", "tun with xdp decapsulation: the `interface` the director's packets arrive on")
	pf.Uint16Var(&o.guePort, "gue-port", 0, "tun: also decapsulate GUE to this UDP `port` (lb_kind TUN type gue port N); implies --decap xdp")
	pf.BoolVarP(&o.verbose, "verbose", "v", false, "log every change")
	for _, sub := range []struct{ name, short string }{
		{"up", "configure the host (dr, tun) or check it (nat)"},
		{"down", "restore what up changed"},
		{"status", "check the host; exit 1 when it is not ready"},
	} {
		root.AddCommand(&cobra.Command{
			Use:   sub.name,
			Short: sub.short,
			Args:  noArgs,
			RunE:  func(*cobra.Command, []string) error { return runRealserver(sub.name, o, stdout, stderr) },
		})
	}
	return root
}

// decapInterface is where a TUN VIP is decapsulated by XDP ("" for the
// kernel's tunnel device), as --decap asks; auto probes the kernel (with
// create, by creating the fallback device, as up would).
func decapInterface(host *realserver.LinuxHost, o *realserverOptions, ipv6, create bool) (string, error) {
	switch o.decap {
	case "kernel":
		if o.decapInterface != "" {
			return "", usagef("--interface is for --decap xdp or auto")
		}
		return "", nil
	case "xdp":
		if o.decapInterface == "" {
			return "", usagef("--decap xdp needs --interface, the interface the director's packets arrive on")
		}
		return o.decapInterface, nil
	case "auto":
		if o.guePort != 0 {
			// The kernel's GUE needs fou; govs's program does GUE.
			if o.decapInterface == "" {
				return "", usagef("--gue-port needs --interface, the interface the director's packets arrive on")
			}
			return o.decapInterface, nil
		}
	default:
		return "", usagef("--decap %q: want kernel, xdp or auto", o.decap)
	}
	ok, err := host.TunnelSupported(ipv6, create)
	if err != nil {
		return "", err
	}
	if ok {
		return "", nil
	}
	if o.decapInterface == "" {
		kind := "ipip"
		if ipv6 {
			kind = "ip6tnl"
		}
		return "", usagef("this kernel has no %s tunnel support: give --interface, the interface the director's packets arrive on, to decapsulate with govs's XDP program", kind)
	}
	return o.decapInterface, nil
}

func parseAddrs(what string, list []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range list {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", what, err)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

func runRealserver(sub string, o *realserverOptions, stdout, stderr io.Writer) error {
	addrs, err := parseAddrs("VIP", o.vips)
	if err != nil {
		return usageError{err.Error()}
	}
	if strings.EqualFold(o.mode, "nat") {
		return exitCode(natRealserver(sub, addrs, o, stdout, stderr))
	}
	if len(o.gateways) > 0 {
		return usagef("--gateway is for --mode nat")
	}
	mode, err := realserver.ParseMode(o.mode)
	if err != nil {
		return usageError{err.Error()}
	}
	host, err := realserver.NewLinuxHost()
	if err != nil {
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return exitError{1}
	}
	defer host.Close()
	vips := make([]realserver.VIP, 0, len(addrs))
	for _, a := range addrs {
		v := realserver.VIP{Addr: a, Mode: mode}
		if mode == realserver.ModeTUN && sub != "down" { // down undoes what the record says
			if v.Decap, err = decapInterface(host, o, a.Is6(), sub == "up"); err != nil {
				return err
			}
			v.GUEPort = o.guePort
		} else if o.decapInterface != "" || o.decap != "auto" || o.guePort != 0 {
			return usagef("--decap, --interface and --gue-port are for --mode tun")
		}
		vips = append(vips, v)
	}
	m := &realserver.Manager{Host: host, StatePath: o.state}
	if o.verbose {
		m.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}

	switch sub {
	case "up", "down":
		var acts []realserver.Action
		if sub == "up" {
			acts, err = m.Up(vips)
		} else {
			acts, err = m.Down(addrs, mode)
		}
		for _, a := range acts {
			fmt.Fprintln(stdout, a)
		}
		if err != nil {
			fmt.Fprintf(stderr, "govs: %v\n", err)
			return exitError{1}
		}
		if len(acts) == 0 {
			fmt.Fprintln(stdout, "nothing to change")
		}
		return nil
	}
	per, all, err := m.Status(vips)
	if err != nil {
		fmt.Fprintf(stderr, "govs: %v\n", err)
		return exitError{1}
	}
	for _, p := range per {
		state := "ready"
		if !realserver.Ready(p.Items) {
			state = "NOT READY"
		}
		fmt.Fprintf(stdout, "VIP %s: %s\n", p.VIP, state)
		printItems(stdout, p.Items)
	}
	return hostReady(stdout, all)
}

func printItems(w io.Writer, items []realserver.Item) {
	for _, it := range items {
		mark := "ok  "
		if !it.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: have %s, want %s\n", mark, it.What, it.Have, it.Want)
	}
}

func hostReady(w io.Writer, items []realserver.Item) error {
	if !realserver.Ready(items) {
		fmt.Fprintln(w, "host is NOT ready")
		return exitError{1}
	}
	fmt.Fprintln(w, "host is ready")
	return nil
}

// natRealserver checks a NAT real server: nothing to configure on it but
// its route back through the director.
func natRealserver(sub string, vips []netip.Addr, o *realserverOptions, stdout, stderr io.Writer) int {
	if len(vips) > 0 {
		fmt.Fprintln(stderr, "govs realserver: a NAT real server holds no VIP (the director rewrites the destination to this host's address); drop --vip")
		return 2
	}
	gws, err := parseAddrs("gateway", o.gateways)
	if err != nil || len(gws) == 0 {
		fmt.Fprintln(stderr, "govs realserver: --mode nat needs --gateway ADDR: the director address replies must route through")
		return 2
	}
	if sub == "down" {
		fmt.Fprintln(stdout, "nothing to change (NAT: up changes nothing)")
		return 0
	}
	host, err := realserver.NewLinuxHost()
	if err != nil {
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return 1
	}
	defer host.Close()
	routes, err := host.DefaultRoutes()
	if err != nil {
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return 1
	}
	items := realserver.CheckNAT(gws, routes)
	fmt.Fprintln(stdout, "NAT real server: replies must leave through the director, which rewrites their source to the VIP")
	printItems(stdout, items)
	if hostReady(stdout, items) != nil {
		return 1
	}
	return 0
}
