package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/govs/govs/internal/realserver"
)

// addrList is a repeatable --vip flag.
type addrList []netip.Addr

func (l *addrList) String() string {
	parts := make([]string, len(*l))
	for i, a := range *l {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

func (l *addrList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("parse VIP: %w", err)
		}
		*l = append(*l, a)
	}
	return nil
}

func realserverUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: govs realserver up|down|status [--vip ADDR ...] [--mode dr|tun] [--state FILE]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Prepares this host as a real server: the VIP on lo (dr) or on tunl0/ip6tnl0 (tun),")
	fmt.Fprintln(w, "arp_ignore=1 and arp_announce=2, rp_filter 0 for tunnels. down restores what up changed;")
	fmt.Fprintln(w, "status exits 0 when the host is ready, 1 when not.")
	fmt.Fprintln(w)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func runRealserver(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("realserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var addrs addrList
	fs.Var(&addrs, "vip", "virtual IP address (repeatable, or comma-separated)")
	modeFlag := fs.String("mode", "dr", "forwarding mode: dr or tun")
	state := fs.String("state", realserver.DefaultStatePath, "state file recording what up changed")
	verbose := fs.Bool("v", false, "log every change")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			realserverUsage(stdout, fs)
			return 0
		}
		realserverUsage(stderr, fs)
		return 2
	}
	sub := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			realserverUsage(stdout, fs)
			return 0
		}
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs realserver: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	mode, err := realserver.ParseMode(*modeFlag)
	if err != nil {
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return 2
	}
	vips := make([]realserver.VIP, 0, len(addrs))
	for _, a := range addrs {
		vips = append(vips, realserver.VIP{Addr: a, Mode: mode})
	}

	host, err := realserver.NewLinuxHost()
	if err != nil {
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return 1
	}
	defer host.Close()
	m := &realserver.Manager{Host: host, StatePath: *state}
	if *verbose {
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
			return 1
		}
		if len(acts) == 0 {
			fmt.Fprintln(stdout, "nothing to change")
		}
		return 0
	case "status":
		per, all, err := m.Status(vips)
		if err != nil {
			fmt.Fprintf(stderr, "govs: %v\n", err)
			return 1
		}
		for _, p := range per {
			state := "ready"
			if !realserver.Ready(p.Items) {
				state = "NOT READY"
			}
			fmt.Fprintf(stdout, "VIP %s mode %s: %s\n", p.VIP.Addr, p.VIP.Mode, state)
			for _, it := range p.Items {
				mark := "ok  "
				if !it.OK {
					mark = "FAIL"
				}
				fmt.Fprintf(stdout, "  %s %s: have %s, want %s\n", mark, it.What, it.Have, it.Want)
			}
		}
		if !realserver.Ready(all) {
			fmt.Fprintln(stdout, "host is NOT ready")
			return 1
		}
		fmt.Fprintln(stdout, "host is ready")
		return 0
	}
	fmt.Fprintf(stderr, "govs realserver: unknown subcommand %q (want up, down or status)\n", sub)
	return 2
}
