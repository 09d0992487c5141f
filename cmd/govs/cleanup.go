package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/govs/govs/internal/dataplane"
)

// runCleanup is `govs cleanup`: remove a data plane left pinned by
// `govs run --pin-dir` (XDP detaches, the connection table goes).
func runCleanup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("govs cleanup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pinDir := fs.String("pin-dir", "", "the `directory` given to govs run --pin-dir")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *pinDir == "" {
		fmt.Fprintln(stderr, "usage: govs cleanup --pin-dir DIR")
		return 2
	}
	if err := dataplane.RemovePinned(*pinDir); err != nil {
		fmt.Fprintf(stderr, "govs cleanup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "removed the data plane pinned at %s\n", *pinDir)
	return 0
}
