package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/desired"
	"github.com/govs/govs/internal/hostmem"
	"github.com/govs/govs/internal/status"
)

// Exit codes of `govs check`.
const (
	checkOK      = 0 // the plan runs as keepalived would run the file (warnings allowed without --strict)
	checkRefused = 1 // errors: `govs run` would refuse to start and a reload would be refused
	// 2: a bad command line (run's usage errors).
)

// checkOptions are `govs check`'s flags.
type checkOptions struct {
	file, configID                  string
	quiet, strict, noDataplane, any bool
}

// newCheckCmd is `govs check`: it validates a keepalived.conf like
// `keepalived -t` and prints the plan `govs run` would apply: exactly what
// it runs, or every reason it would refuse as FILE:LINE: message.
func newCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check [-f FILE]",
		Short: "validate a keepalived.conf and print what would run",
		Long: "Validate a keepalived.conf like keepalived -t and print the plan govs run would apply.\n" +
			"Exit status: 0 runs as keepalived would, 1 errors (govs run refuses), 2 usage.",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error { return exitCode(runCheck(o, stdout, stderr)) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "use-file", "f", "/etc/keepalived/keepalived.conf", "configuration `file` to check")
	f.StringVarP(&o.configID, "config-id", "i", defaultConfigID(), "configuration `id` selecting @id lines (default: short host name, like keepalived)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only problems, no plan")
	f.BoolVar(&o.strict, "strict", false, "treat warnings as errors")
	f.BoolVar(&o.noDataplane, "no-dataplane", false, "check for govs run --no-dataplane (VRRP and checks only)")
	f.BoolVar(&o.any, "any-host", false, "check a file for another host: interfaces need not exist here")
	return cmd
}

func runCheck(o checkOptions, stdout, stderr io.Writer) int {
	cfg, diags := config.ParseFile(o.file, config.Options{ConfigID: o.configID})
	opts := desired.Options{NoDataplane: o.noDataplane}
	if !o.any {
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
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s): govs run would refuse this file\n", o.file, errs, warns)
		return checkRefused
	case warns > 0 && o.strict:
		fmt.Fprintf(stderr, "%s: %d warning(s), refused by --strict\n", o.file, warns)
		return checkRefused
	case warns > 0:
		fmt.Fprintf(stderr, "%s: usable, %d warning(s)\n", o.file, warns)
	}
	if !o.quiet {
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
