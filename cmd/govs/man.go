package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd is the hidden `govs man DIR`: the manual pages of every
// command, written from the command tree itself, so they say what
// --help says. The package build installs them (make deb).
func newManCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "write the manual pages (govs.1, govs-run.1, ...) into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(args[0], 0o755); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // reproducible pages: no date line
			hdr := &doc.GenManHeader{Title: "GOVS", Section: "1", Source: "govs " + buildVersion(), Manual: "govs manual"}
			if err := doc.GenManTree(root, hdr, args[0]); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			fmt.Fprintln(stdout, "manual pages written to", args[0])
			return nil
		},
	}
}
