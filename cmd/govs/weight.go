package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/control"
)

// newWeightCmd is `govs weight REAL WEIGHT|reset` (a real server's weight
// at run time, as `ipvsadm -e -w`, without editing the file) or, as
// "drain", `govs drain REAL`: weight 0 (no new connections, established
// ones go on), which `govs weight REAL reset` undoes.
func newWeightCmd(name string, stdout, stderr io.Writer) *cobra.Command {
	var socket, vs string
	cmd := &cobra.Command{
		Use:   "weight [--vs VIP:PORT] REAL WEIGHT|reset",
		Short: "set a real server's weight at run time (ipvsadm -e -w)",
		Long: "Set a real server's weight at run time, in place of its configured weight while its checks pass\n" +
			"(reset: the configured weight again); REAL is ADDR or ADDR:PORT; without --vs every virtual server\n" +
			"with that real server is changed. A reload keeps it.",
		Args: cobra.ExactArgs(2),
	}
	switch name {
	case "drain":
		cmd.Use = "drain [--vs VIP:PORT] REAL"
		cmd.Short = "weight 0 for a real server at run time: no new connections"
		cmd.Long = "Weight 0 for a real server: no new connections, established ones go on, and a reload keeps it\n(govs undrain REAL undoes it)."
		cmd.Args = cobra.ExactArgs(1)
	case "undrain":
		cmd.Use = "undrain [--vs VIP:PORT] REAL"
		cmd.Short = "undo govs drain: the real server's configured weight again"
		cmd.Long = "The real server's configured weight again (what govs weight REAL reset does)."
		cmd.Args = cobra.ExactArgs(1)
	}
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		var weight *uint32
		switch {
		case name == "drain":
			zero := uint32(0)
			weight = &zero
		case name == "undrain", args[1] == "reset":
		default:
			w, err := strconv.ParseUint(args[1], 10, 32)
			if err != nil || w > 65535 {
				return usagef("weight %q: want 0..65535 or reset", args[1])
			}
			w32 := uint32(w)
			weight = &w32
		}
		return exitCode(setWeight(name, socket, vs, args[0], weight, stdout, stderr))
	}
	cmd.Flags().StringVar(&socket, "socket", control.DefaultSocket, "control socket of the daemon")
	cmd.Flags().StringVar(&vs, "vs", "", "the virtual server (`VIP:PORT` as govs list shows it, or a group name); default: every one")
	return cmd
}

func setWeight(name, socket, vs, real string, weight *uint32, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, socket)
	if err != nil {
		fmt.Fprintf(stderr, "govs %s: %s\n", name, dialError(socket, err))
		return 1
	}
	defer c.Close()
	n, err := c.Weight(ctx, vs, real, weight)
	if err != nil {
		fmt.Fprintf(stderr, "govs %s: %v\n", name, err)
		return 1
	}
	what := "the configured weight"
	if weight != nil {
		what = "weight " + strconv.FormatUint(uint64(*weight), 10)
	}
	fmt.Fprintf(stdout, "govs %s: %s for %d real server(s)\n", name, what, n)
	return 0
}
