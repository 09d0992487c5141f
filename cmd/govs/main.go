// Command govs is a Layer-4 load balancer: LVS direct routing plus keepalived's
// VRRP and health checks, on an XDP data plane.
//
// Each subcommand lives in its own file and is listed in commands().
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
)

// command is one govs subcommand.
type command struct {
	name    string
	summary string
	// run gets the arguments after the subcommand name and returns the exit code.
	run func(args []string, stdout, stderr io.Writer) int
}

// commands lists every subcommand; adding one means adding a file and a line here.
func commands() []command {
	return []command{
		{name: "version", summary: "print the govs version", run: runVersion},
		{name: "check", summary: "validate a keepalived.conf and print what would run", run: runCheck},
		{name: "run", summary: "run the director: VRRP, health checks and the XDP data plane", run: runRun},
		{name: "lab", summary: "build the scenario in network namespaces (up, down, status)", run: runLab},
		{name: "realserver", summary: "prepare this host as a DR/TUN real server (up, down, status)", run: runRealserver},
		{name: "list", summary: "list the running director's services like ipvsadm -L -n", run: runList},
		{name: "reload", summary: "ask the running director to reload its configuration", run: runReload},
		{name: "weight", summary: "set a real server's weight at run time (ipvsadm -e -w)", run: runWeight},
		{name: "drain", summary: "weight 0 for a real server at run time: no new connections", run: runDrain},
		{name: "cleanup", summary: "remove a data plane left pinned by govs run --pin-dir", run: runCleanup},
		{name: "vrrp-run", summary: "(internal) run VRRP instances from JSON; see docs/vrrp.md", run: runVRRPRun},
	}
}

// buildVersion says which govs this is, from the build information the Go
// toolchain embeds: the module version (a tag, or a pseudo-version from
// `go install`), else the VCS revision and whether the tree was modified.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " " + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			v += "-dirty"
		}
	}
	return v + " " + bi.GoVersion
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "govs %s\n", buildVersion())
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: govs <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "help" {
		// govs help CMD is CMD --help.
		args = []string{args[1], "--help"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-v" {
		return runVersion(nil, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "govs: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
