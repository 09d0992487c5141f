package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/status"
)

// runList prints the running daemon's table the way `ipvsadm -L -n` does.
func runList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: govs list [-n] [--stats|--rate|--connections] [--exact] [--json] [--socket PATH]")
		fmt.Fprintln(stderr, "\nprint the running director's virtual services, real servers and VRRP state")
		fmt.Fprintln(stderr, "like `ipvsadm -L -n`; addresses are always numeric, -n is accepted for habit.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	_ = fs.Bool("n", true, "numeric addresses and ports (always on; accepted for ipvsadm compatibility)")
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
	}{{*stats, status.ViewStats}, {*rate, status.ViewRate}, {*conns, status.ViewConnections}} {
		if v.set {
			view = v.view
			n++
		}
	}
	if n > 1 {
		fmt.Fprintln(stderr, "govs list: --stats, --rate and --connections are exclusive")
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
