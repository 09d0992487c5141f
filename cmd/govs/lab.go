package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/lab"
	"github.com/govs/govs/internal/webserver"
)

// labOptions are the flags of `govs lab` and its subcommands.
type labOptions struct {
	name, stateDir, webKind, directorCmd, listen, mode string
	webs, requests, directors, table                   int
	noDirectors, asJSON, expectSync, verbose           bool
	bgp, resilient                                     bool
}

func (o *labOptions) log(stderr io.Writer) *slog.Logger {
	if o.verbose {
		return slog.New(slog.NewTextHandler(stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// newLabCmd is `govs lab`: the scenario (client, router with port forward,
// LAN, two directors running govs, web servers) in network namespaces named
// govs-lab-NAME-*.
func newLabCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &labOptions{}
	root := &cobra.Command{
		Use:   "lab",
		Short: "build the scenario in network namespaces (up, down, status, test, demo)",
		Long: "Builds the scenario (client, router with port forward, LAN, two directors running govs,\n" +
			"web servers) in network namespaces named govs-lab-NAME-*; test exercises it and prints a\n" +
			"report; demo is up + test + down.",
		Args: subcommandArgs,
		RunE: usageExit(stderr),
	}
	pf := root.PersistentFlags()
	pf.StringVar(&o.name, "name", "default", "lab name (letters and digits): namespaces are govs-lab-NAME-*")
	pf.StringVar(&o.stateDir, "state-dir", "", "state directory (default "+lab.DefaultStateRoot+"/NAME)")
	pf.BoolVarP(&o.verbose, "verbose", "v", false, "log each step")
	upFlags := func(c *cobra.Command) {
		c.Flags().IntVar(&o.webs, "webs", 2, "number of web servers")
		c.Flags().StringVar(&o.webKind, "web-server", lab.WebAuto, "web server: auto (nginx if installed), nginx or builtin")
		c.Flags().StringVar(&o.directorCmd, "director-cmd", defaultDirectorCmd, "command started in each director namespace; {govs}, {conf}, {dir}, {state} are substituted")
		c.Flags().BoolVar(&o.noDirectors, "no-directors", false, "start no director")
		c.Flags().IntVar(&o.directors, "directors", 0, "number of directors (default 2; more only with --bgp)")
		c.Flags().BoolVar(&o.bgp, "bgp", false, "every director active: they announce the VIPs over BGP to BIRD 2 on the router, which spreads flows over them (ECMP); no VRRP")
		c.Flags().BoolVar(&o.resilient, "resilient", false, "with --bgp: the router routes the VIPs through resilient nexthop groups (a director that leaves moves only its own flows)")
		c.Flags().StringVar(&o.mode, "mode", lab.ModeDR, "forwarding mode: dr (web servers answer clients directly), nat (replies cross the master), fnat (FullNAT: the web servers see and answer the master's local addresses), tun (IP-in-IP, decapsulated by govs's XDP program on the web servers) or gue (the same in GUE, UDP 6080)")
	}
	testFlags := func(c *cobra.Command) {
		c.Flags().IntVar(&o.requests, "requests", 1000, "requests of the distribution check")
		c.Flags().BoolVar(&o.asJSON, "json", false, "print the report as JSON")
		c.Flags().BoolVar(&o.expectSync, "expect-sync", false, "fail when long-lived connections do not survive a master kill")
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "build the lab and start its directors",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return exitCode(labUp(o, false, stdout, stderr)) },
	}
	upFlags(up)
	demo := &cobra.Command{
		Use:   "demo",
		Short: "up, test and down",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return exitCode(labUp(o, true, stdout, stderr)) },
	}
	upFlags(demo)
	testFlags(demo)
	test := &cobra.Command{
		Use:   "test",
		Short: "exercise a running lab and print a report",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			return exitCode(labTest(o.name, lab.StateDirFor(o.name, o.stateDir), o.requests, o.asJSON, o.expectSync, stdout, stderr))
		},
	}
	testFlags(test)
	down := &cobra.Command{
		Use:   "down",
		Short: "stop the lab's processes and delete its namespaces",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := lab.Down(o.name, lab.StateDirFor(o.name, o.stateDir), o.log(stderr)); err != nil {
				fmt.Fprintf(stderr, "govs: %v\n", err)
				return exitError{1}
			}
			fmt.Fprintf(stdout, "lab %s is down\n", o.name)
			return nil
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "check the lab's namespaces and processes",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			items, err := lab.Status(o.name, o.stateDir)
			if err != nil {
				fmt.Fprintf(stderr, "govs: %v\n", err)
				return exitError{1}
			}
			code := 0
			for _, it := range items {
				mark := "ok  "
				if !it.OK {
					mark, code = "FAIL", 1
				}
				fmt.Fprintf(stdout, "%s %s: %s\n", mark, it.What, it.Note)
			}
			return exitCode(code)
		},
	}
	web := &cobra.Command{
		Use:   "webserver --name NAME [--listen :80]",
		Short: "(internal) the lab's built-in web server, answering its name",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			// Runs in the foreground: the lab starts it inside a namespace.
			ln, err := net.Listen("tcp", o.listen)
			if err != nil {
				fmt.Fprintf(stderr, "govs lab webserver: %v\n", err)
				return exitError{1}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := webserver.Serve(ctx, ln, o.name); err != nil {
				fmt.Fprintf(stderr, "govs lab webserver: %v\n", err)
				return exitError{1}
			}
			return nil
		},
	}
	web.Flags().StringVar(&o.listen, "listen", ":80", "listen address")
	var dev string
	nexthops := &cobra.Command{
		Use:   "nexthops --table N --dev DEV",
		Short: "(internal) the BGP lab router's mirror of BIRD's routes into resilient nexthop groups",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := lab.Nexthops(ctx, lab.NexthopsOptions{Table: o.table, Dev: dev, Log: slog.New(slog.NewTextHandler(stderr, nil))}); err != nil {
				fmt.Fprintf(stderr, "govs lab nexthops: %v\n", err)
				return exitError{1}
			}
			return nil
		},
	}
	nexthops.Flags().IntVar(&o.table, "table", lab.ResilientTable, "the kernel table BIRD writes to")
	nexthops.Flags().StringVar(&dev, "dev", "lan0", "the interface of the next hops")
	root.AddCommand(up, down, status, test, demo, web, nexthops)
	return root
}

// labUp brings a lab up, and with demo tests it and takes it down again.
func labUp(o *labOptions, demo bool, stdout, stderr io.Writer) int {
	log := o.log(stderr)
	opts := lab.Options{Name: o.name, Webs: o.webs, StateDir: o.stateDir, WebServer: o.webKind, Mode: o.mode,
		Directors: o.directors, BGP: o.bgp, Resilient: o.resilient, Log: log}
	if !o.noDirectors && o.directorCmd != "" {
		opts.DirectorCmd = strings.Fields(o.directorCmd)
	}
	st, err := lab.Up(opts)
	if err != nil {
		fmt.Fprintf(stderr, "govs: %v\n", err)
		return 1
	}
	if demo {
		return labDemo(o.name, lab.StateDirFor(o.name, o.stateDir), o.requests, o.asJSON, o.expectSync, stdout, stderr, log)
	}
	fmt.Fprintf(stdout, "lab %s is up: %d namespaces, %d web servers (%s), %s mode\n", st.Name, len(st.Namespaces), st.Webs, st.WebServer, st.Mode)
	fmt.Fprintf(stdout, "client:  ip netns exec %s curl http://%s/\n", lab.Topology{Name: st.Name}.NS("client"), lab.PublicIP)
	for _, d := range st.Topology().DirectorRoles() {
		fmt.Fprintf(stdout, "%s keepalived.conf: %s\n", d, st.Files[d])
	}
	if st.BGP {
		fmt.Fprintf(stdout, "router:  BIRD %s (birdc -s %s show route)\n", st.Files["bird"], lab.BirdSocket(lab.StateDirFor(o.name, o.stateDir)))
	}
	return 0
}

// defaultDirectorCmd runs govs itself as each director, with its control
// socket in the lab's state directory.
const defaultDirectorCmd = "{govs} run -f {conf} --socket {state}/{dir}.sock"

func labTest(name, stateDir string, requests int, asJSON, expectSync bool, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := stdout
	if asJSON {
		out = nil
	} else {
		fmt.Fprintf(stdout, "govs lab test %s: %d requests to http://%s/ through the router\n", name, requests, lab.PublicIP)
	}
	rep, err := lab.RunTest(ctx, lab.TestOptions{Name: name, StateDir: stateDir, Requests: requests, ExpectSync: expectSync, Out: out})
	if asJSON && rep != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs lab test: %v\n", err)
		return 1
	}
	passed, failed := 0, 0
	for _, c := range rep.Checks {
		if c.Pass {
			passed++
		} else {
			failed++
		}
	}
	if !asJSON {
		fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

// labDemo runs the test on a lab just brought up and always takes it down.
func labDemo(name, stateDir string, requests int, asJSON, expectSync bool, stdout, stderr io.Writer, log *slog.Logger) int {
	code := labTest(name, stateDir, requests, asJSON, expectSync, stdout, stderr)
	if err := lab.Down(name, stateDir, log); err != nil {
		fmt.Fprintf(stderr, "govs: %v\n", err)
		return 1
	}
	if !asJSON {
		fmt.Fprintf(stdout, "lab %s is down\n", name)
	}
	return code
}
