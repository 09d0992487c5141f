package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/govs/govs/internal/config"
)

// runCheck validates a keepalived.conf like `keepalived -t` and prints what
// govs would run. Exit status: 0 valid, 1 errors found, 2 usage.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file` to check")
	fs.StringVar(file, "use-file", "/etc/keepalived/keepalived.conf", "same as -f")
	id := fs.String("config-id", defaultConfigID(), "configuration `id` selecting @id lines (default: short host name, like keepalived)")
	fs.StringVar(id, "i", defaultConfigID(), "same as --config-id")
	quiet := fs.Bool("q", false, "print only problems, no summary")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: govs check [-f FILE] [--config-id ID] [-q]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs check: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	cfg, diags := config.ParseFile(*file, config.Options{ConfigID: *id})
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if errs := diags.Errors(); len(errs) > 0 {
		fmt.Fprintf(stderr, "%s: %d error(s), %d warning(s)\n", *file, len(errs), len(diags)-len(errs))
		return 1
	}
	if len(diags) > 0 {
		fmt.Fprintf(stderr, "%s: usable, %d warning(s)\n", *file, len(diags))
	}
	if !*quiet {
		if err := config.WriteSummary(stdout, cfg); err != nil {
			fmt.Fprintf(stderr, "govs check: write summary: %v\n", err)
			return 1
		}
	}
	return 0
}

// defaultConfigID is keepalived's default: the host name up to the first dot.
func defaultConfigID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}
