package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/status"
)

// runList prints the running daemon's table the way `ipvsadm -L -n` does.
func runList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: govs list [-n] [-t|-u VIP:PORT] [--stats|--rate|--connections|--save] [--exact] [--json] [--socket PATH]")
		fmt.Fprintln(stderr, "\nprint the running director's virtual services, real servers and VRRP state")
		fmt.Fprintln(stderr, "like `ipvsadm -L -n`; addresses are always numeric. -n, -L, -Ln and --sort are")
		fmt.Fprintln(stderr, "accepted for habit (the output is always numeric and sorted).")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	for _, name := range []string{"n", "L", "l", "Ln", "ln", "nL", "sort"} {
		_ = fs.Bool(name, false, "accepted for ipvsadm compatibility (always numeric and sorted)")
	}
	tcpSvc := fs.String("t", "", "only the TCP service `VIP:PORT` (ipvsadm -t)")
	udpSvc := fs.String("u", "", "only the UDP service `VIP:PORT` (ipvsadm -u)")
	save := fs.Bool("save", false, "print the table as ipvsadm commands (ipvsadm -S -n; ipvsadm -R reads them)")
	fs.BoolVar(save, "S", false, "shorthand for --save")
	stats := fs.Bool("stats", false, "print cumulative counters (Conns InPkts OutPkts InBytes OutBytes)")
	rate := fs.Bool("rate", false, "print estimated rates (CPS InPPS OutPPS InBPS OutBPS)")
	conns := fs.Bool("connections", false, "print the connection table")
	fs.BoolVar(conns, "c", false, "shorthand for --connections")
	exact := fs.Bool("exact", false, "print exact numbers instead of K/M/G abbreviations")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	socket := fs.String("socket", control.DefaultSocket, "control socket of the daemon")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs list: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	view := status.ViewTable
	n := 0
	for _, v := range []struct {
		set  bool
		view status.View
	}{{*stats, status.ViewStats}, {*rate, status.ViewRate}, {*conns, status.ViewConnections}, {*save, status.ViewSave}} {
		if v.set {
			view = v.view
			n++
		}
	}
	if n > 1 {
		fmt.Fprintln(stderr, "govs list: --stats, --rate, --connections and --save are exclusive")
		return 2
	}
	only, err := serviceFilter(*tcpSvc, *udpSvc)
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %v\n", err)
		return 2
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := control.DialContext(ctx, *socket)
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %s\n", dialError(*socket, err))
		return 1
	}
	defer c.Close()

	var snap status.Snapshot
	if view == status.ViewConnections {
		snap.Connections, err = c.Connections(ctx)
	} else {
		snap, err = c.Status(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %s: %v\n", *socket, err)
		return 1
	}
	if only != nil {
		snap.Services = slices.DeleteFunc(snap.Services, func(s status.Service) bool { return !only(s) })
		snap.Connections = slices.DeleteFunc(snap.Connections, func(c status.Connection) bool {
			return !only(status.Service{Protocol: c.Protocol, VIP: c.Virtual.Addr(), Port: c.Virtual.Port()})
		})
		if len(snap.Services) == 0 && view != status.ViewConnections {
			fmt.Fprintf(stderr, "govs list: no such service %s%s\n", *tcpSvc, *udpSvc)
			return 1
		}
	}

	switch {
	case *asJSON && view == status.ViewConnections:
		err = status.FormatConnectionsJSON(stdout, snap.Connections)
	case *asJSON:
		err = status.FormatJSON(stdout, snap)
	default:
		err = status.Format(stdout, snap, status.FormatOptions{View: view, Exact: *exact})
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %v\n", err)
		return 1
	}
	return 0
}

// runReload asks the running daemon to reload its configuration.
func runReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: govs reload [--socket PATH]")
		fmt.Fprintln(stderr, "\nask the running daemon to reload its configuration; on errors it keeps the")
		fmt.Fprintln(stderr, "running one, and the errors are printed here.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	socket := fs.String("socket", control.DefaultSocket, "control socket of the daemon")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs reload: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := control.DialContext(ctx, *socket)
	if err != nil {
		fmt.Fprintf(stderr, "govs reload: %s\n", dialError(*socket, err))
		return 1
	}
	defer c.Close()
	if err := c.Reload(ctx); err != nil {
		var re *control.RemoteError
		if errors.As(err, &re) {
			fmt.Fprintf(stderr, "govs reload: configuration not reloaded, the daemon keeps the running one:\n%s\n", re.Message)
		} else {
			fmt.Fprintf(stderr, "govs reload: %s: %v\n", *socket, err)
		}
		return 1
	}
	fmt.Fprintln(stdout, "govs reload: configuration reloaded")
	return 0
}

// dialError says why the control socket could not be reached: no daemon
// listens there, or this user may not talk to it.
func dialError(socket string, err error) string {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Sprintf("permission denied on %s: the control socket is root's, run as root (%v)", socket, err)
	}
	return fmt.Sprintf("no govs daemon at %s: %v", socket, err)
}

// serviceFilter is ipvsadm's -t / -u: one service by protocol and
// VIP:PORT; nil when neither is given.
func serviceFilter(tcp, udp string) (func(status.Service) bool, error) {
	if tcp != "" && udp != "" {
		return nil, errors.New("-t and -u are exclusive")
	}
	text, proto := tcp, status.TCP
	if udp != "" {
		text, proto = udp, status.UDP
	}
	if text == "" {
		return nil, nil
	}
	ap, err := netip.ParseAddrPort(text)
	if err != nil {
		return nil, fmt.Errorf("service %q: want VIP:PORT", text)
	}
	return func(s status.Service) bool {
		return s.Fwmark == 0 && s.Protocol == proto && s.VIP == ap.Addr().Unmap() && s.Port == ap.Port()
	}, nil
}
