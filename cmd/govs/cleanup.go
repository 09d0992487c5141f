package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/dataplane"
)

// newCleanupCmd is `govs cleanup`: it removes a data plane left pinned by
// `govs run --pin-dir` (XDP detaches, the connection table goes).
func newCleanupCmd(stdout, stderr io.Writer) *cobra.Command {
	var pinDir string
	cmd := &cobra.Command{
		Use:   "cleanup --pin-dir DIR",
		Short: "remove a data plane left pinned by govs run --pin-dir",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := dataplane.RemovePinned(pinDir); err != nil {
				fmt.Fprintf(stderr, "govs cleanup: %v\n", err)
				return exitError{1}
			}
			fmt.Fprintf(stdout, "removed the data plane pinned at %s\n", pinDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&pinDir, "pin-dir", "", "the `directory` given to govs run --pin-dir")
	_ = cmd.MarkFlagRequired("pin-dir")
	return cmd
}
