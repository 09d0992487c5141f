package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/hostmem"
	"github.com/govs/govs/internal/status"
)

// Exit codes of `govs check`.
const (
	checkOK       = 0 // the plan runs as keepalived would run the file (warnings allowed without --strict)
	checkRefused  = 1 // errors: `govs run` would refuse to start and a reload would be refused
	checkUsageErr = 2 // bad command line
)

// runCheck validates a keepalived.conf like `keepalived -t` and prints the
// plan `govs run` would apply: exactly what it runs, or every reason it
// would refuse as FILE:LINE: message.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file` to check")
	fs.StringVar(file, "use-file", "/etc/keepalived/keepalived.conf", "same as -f")
	id := fs.String("config-id", defaultConfigID(), "configuration `id` selecting @id lines (default: short host name, like keepalived)")
	fs.StringVar(id, "i", defaultConfigID(), "same as --config-id")
	quiet := fs.Bool("q", false, "print only problems, no plan")
	strict := fs.Bool("strict", false, "treat warnings as errors")
	noDataplane := fs.Bool("no-dataplane", false, "check for `govs run --no-dataplane` (VRRP and checks only)")
	anyHost := fs.Bool("any-host", false, "check a file for another host: interfaces need not exist here")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: govs check [-f FILE] [--config-id ID] [--strict] [--no-dataplane] [--any-host] [-q]")
		fmt.Fprintln(stderr, "exit status: 0 runs as keepalived would, 1 errors (govs run refuses), 2 usage")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return checkOK
		}
		return checkUsageErr
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs check: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return checkUsageErr
	}
	cfg, diags := config.ParseFile(*file, config.Options{ConfigID: *id})
	opts := desired.Options{NoDataplane: *noDataplane}
	if !*anyHost {
		// As keepalived -t does, and as govs run will.
		opts.InterfaceExists = func(name string) bool {
			_, err := net.InterfaceByName(name)
			return err == nil
		}
		if mem, err := hostmem.Total(); err == nil {
			opts.MemTotal = mem
		}
	}
	plan := desired.Build(cfg, diags, opts)
	for _, d := range plan.Diagnostics {
		fmt.Fprintln(stderr, d)
	}
	errs, warns := len(plan.Diagnostics.Errors()), len(plan.Diagnostics.Warnings())
	switch {
	case errs > 0:
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s): govs run would refuse this file\n", *file, errs, warns)
		return checkRefused
	case warns > 0 && *strict:
		fmt.Fprintf(stderr, "%s: %d warning(s), refused by --strict\n", *file, warns)
		return checkRefused
	case warns > 0:
		fmt.Fprintf(stderr, "%s: usable, %d warning(s)\n", *file, warns)
	}
	if !*quiet {
		if err := writePlan(stdout, plan); err != nil {
			fmt.Fprintf(stderr, "govs check: write plan: %v\n", err)
			return checkRefused
		}
	}
	return checkOK
}

// writePlan prints the global settings and VRRP instances, then the
// virtual services as `govs list` will show them once running.
func writePlan(w io.Writer, plan *desired.Plan) error {
	if err := config.WriteSummary(w, plan.Config); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	if len(plan.Services) == 0 {
		_, err := fmt.Fprintln(w, "Virtual servers: none")
		return err
	}
	return status.FormatTable(w, plan.StatusServices(nil), status.FormatOptions{Checkers: true})
}

// defaultConfigID is keepalived's default: the host name up to the first
// dot. Every command that reads a configuration uses it.
func defaultConfigID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}
