package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/status"
)

// listOptions are `govs list`'s flags.
type listOptions struct {
	tcpSvc, udpSvc, socket                  string
	fwmark                                  uint32
	ipvsadm, keepalived, thresholds         bool
	persistent                              bool
	save, stats, rate, conns, exact, asJSON bool
	timeout                                 time.Duration
	habits                                  [4]bool // -L, -l, -n, --sort: accepted, no effect
}

// newListCmd is `govs list`: the running daemon's table the way
// `ipvsadm -L -n` prints it.
func newListCmd(stdout, stderr io.Writer) *cobra.Command {
	var o listOptions
	cmd := &cobra.Command{
		Use:   "list [-n] [-t|-u VIP:PORT|-f MARK] [--stats|--rate|--connections|--save] [--exact] [--ipvsadm] [--json]",
		Short: "list the running director's services like ipvsadm -L -n",
		Long: "Print the running director's virtual services, real servers and VRRP state like `ipvsadm -L -n`;\n" +
			"addresses are always numeric. -L, -l, -n (so -Ln) and --sort are accepted for habit (the output is\n" +
			"always numeric and sorted).",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return runList(o, stdout, stderr) },
	}
	f := cmd.Flags()
	f.BoolVarP(&o.habits[0], "list", "L", false, "accepted for ipvsadm compatibility")
	f.BoolVarP(&o.habits[1], "list-lower", "l", false, "accepted for ipvsadm compatibility")
	f.BoolVarP(&o.habits[2], "numeric", "n", false, "accepted for ipvsadm compatibility (always numeric)")
	f.BoolVar(&o.habits[3], "sort", false, "accepted for ipvsadm compatibility (always sorted)")
	_ = f.MarkHidden("list-lower")
	f.StringVarP(&o.tcpSvc, "tcp-service", "t", "", "only the TCP service `VIP:PORT` (ipvsadm -t)")
	f.StringVarP(&o.udpSvc, "udp-service", "u", "", "only the UDP service `VIP:PORT` (ipvsadm -u)")
	f.Uint32VarP(&o.fwmark, "fwmark-service", "f", 0, "only the fwmark services of `MARK` (ipvsadm -f)")
	f.BoolVar(&o.ipvsadm, "ipvsadm", false, "print ipvsadm's first line (IP Virtual Server version 1.2.1 (size=N)), for scripts that parse it")
	f.BoolVarP(&o.save, "save", "S", false, "print the table as ipvsadm commands (ipvsadm -S -n; ipvsadm -R reads them)")
	f.BoolVar(&o.stats, "stats", false, "print cumulative counters (Conns InPkts OutPkts InBytes OutBytes)")
	f.BoolVar(&o.rate, "rate", false, "print estimated rates (CPS InPPS OutPPS InBPS OutBPS)")
	f.BoolVar(&o.thresholds, "thresholds", false, "print connection thresholds (always 0: govs has none) and connection counts")
	f.BoolVar(&o.persistent, "persistent-conn", false, "print each real server's persistence templates (clients persistence keeps on it)")
	f.BoolVarP(&o.conns, "connections", "c", false, "print the connection table")
	f.BoolVar(&o.exact, "exact", false, "print exact numbers instead of K/M/G abbreviations")
	f.BoolVar(&o.asJSON, "json", false, "print JSON instead of a table")
	f.StringVar(&o.socket, "socket", control.DefaultSocket, "control socket of the daemon")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.MarkFlagsMutuallyExclusive("stats", "rate", "connections", "save", "thresholds", "persistent-conn")
	return cmd
}

func runList(o listOptions, stdout, stderr io.Writer) error {
	view := status.ViewTable
	n := 0
	for _, v := range []struct {
		set  bool
		view status.View
	}{{o.stats, status.ViewStats}, {o.rate, status.ViewRate}, {o.conns, status.ViewConnections}, {o.save, status.ViewSave},
		{o.thresholds, status.ViewThresholds}, {o.persistent, status.ViewPersistentConn}} {
		if v.set {
			view = v.view
			n++
		}
	}
	if n > 1 {
		return usagef("--stats, --rate, --connections, --save, --thresholds and --persistent-conn are exclusive")
	}
	only, err := serviceFilter(o.tcpSvc, o.udpSvc, o.fwmark)
	if err != nil {
		return usageError{err.Error()}
	}
	if o.fwmark != 0 && view == status.ViewConnections {
		return usagef("-f with -c: the connection table does not say which fwmark service a connection belongs to")
	}

	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	c, err := control.DialContext(ctx, o.socket)
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %s\n", dialError(o.socket, err))
		return exitError{1}
	}
	defer c.Close()

	var snap status.Snapshot
	if view == status.ViewConnections {
		snap.Connections, err = c.Connections(ctx)
	} else {
		snap, err = c.Status(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %s: %v\n", o.socket, err)
		return exitError{1}
	}
	if only != nil {
		snap.Services = slices.DeleteFunc(snap.Services, func(s status.Service) bool { return !only(s) })
		snap.Connections = slices.DeleteFunc(snap.Connections, func(c status.Connection) bool {
			return !only(status.Service{Protocol: c.Protocol, VIP: c.Virtual.Addr(), Port: c.Virtual.Port()})
		})
		if len(snap.Services) == 0 && view != status.ViewConnections {
			fmt.Fprintf(stderr, "govs list: no such service %s\n", serviceArg(o))
			return exitError{1}
		}
	}

	switch {
	case o.keepalived:
		err = status.FormatKeepalived(stdout, snap)
	case o.asJSON && view == status.ViewConnections:
		err = status.FormatConnectionsJSON(stdout, snap.Connections)
	case o.asJSON:
		err = status.FormatJSON(stdout, snap)
	default:
		err = status.Format(stdout, snap, status.FormatOptions{View: view, Exact: o.exact, IPVSHeader: o.ipvsadm})
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %v\n", err)
		return exitError{1}
	}
	return nil
}

// newSaveCmd is `govs save`: the running virtual servers and weights as
// keepalived.conf virtual_server blocks (`govs list --save` prints them as
// ipvsadm commands).
func newSaveCmd(stdout, stderr io.Writer) *cobra.Command {
	o := listOptions{keepalived: true}
	cmd := &cobra.Command{
		Use:   "save",
		Short: "print the running virtual servers and weights as keepalived.conf blocks",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return runList(o, stdout, stderr) },
	}
	cmd.Flags().StringVar(&o.socket, "socket", control.DefaultSocket, "control socket of the daemon")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

// newReloadCmd is `govs reload`: the running daemon reloads its
// configuration, or says why not and keeps the running one.
func newReloadCmd(stdout, stderr io.Writer) *cobra.Command {
	var socket string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "ask the running director to reload its configuration",
		Long: "Ask the running daemon to reload its configuration; on errors it keeps the running one, and the\n" +
			"errors are printed here.",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return exitCode(runReload(socket, timeout, stdout, stderr)) },
	}
	cmd.Flags().StringVar(&socket, "socket", control.DefaultSocket, "control socket of the daemon")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "give up after this long")
	return cmd
}

func runReload(socket string, timeout time.Duration, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := control.DialContext(ctx, socket)
	if err != nil {
		fmt.Fprintf(stderr, "govs reload: %s\n", dialError(socket, err))
		return 1
	}
	defer c.Close()
	if err := c.Reload(ctx); err != nil {
		var re *control.RemoteError
		if errors.As(err, &re) {
			fmt.Fprintf(stderr, "govs reload: configuration not reloaded, the daemon keeps the running one:\n%s\n", re.Message)
		} else {
			fmt.Fprintf(stderr, "govs reload: %s: %v\n", socket, err)
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
func serviceFilter(tcp, udp string, fwmark uint32) (func(status.Service) bool, error) {
	given := 0
	for _, set := range []bool{tcp != "", udp != "", fwmark != 0} {
		if set {
			given++
		}
	}
	if given > 1 {
		return nil, errors.New("-t, -u and -f are exclusive")
	}
	if fwmark != 0 {
		return func(s status.Service) bool { return s.Fwmark == fwmark }, nil
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

// serviceArg is the service filter as the user wrote it.
func serviceArg(o listOptions) string {
	if o.fwmark != 0 {
		return fmt.Sprintf("fwmark %d", o.fwmark)
	}
	return o.tcpSvc + o.udpSvc
}
