package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/control"
)

// newBGPCmd is `govs bgp drain|undrain`: the director's BGP announcements
// withdrawn (routers send new flows to the other directors, this one keeps
// forwarding what still reaches it) or announced again.
func newBGPCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bgp",
		Short: "drain this director from BGP (withdraw its VIPs) or undrain it",
	}
	for _, sub := range []struct {
		name, short string
		drain       bool
	}{
		{"drain", "withdraw every VIP this director announces; it keeps forwarding established flows", true},
		{"undrain", "announce the ready VIPs again", false},
	} {
		var socket string
		var stopAfter time.Duration
		c := &cobra.Command{
			Use:   sub.name,
			Short: sub.short,
			Args:  cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cl, err := control.DialContext(ctx, socket)
				if err != nil {
					fmt.Fprintf(stderr, "govs bgp %s: %s\n", sub.name, dialError(socket, err))
					return exitCode(1)
				}
				defer cl.Close()
				if err := cl.BGPDrain(ctx, sub.drain, stopAfter); err != nil {
					fmt.Fprintf(stderr, "govs bgp %s: %v\n", sub.name, err)
					return exitCode(1)
				}
				if stopAfter > 0 {
					fmt.Fprintf(stdout, "govs bgp %s: done; the director stops in %s\n", sub.name, stopAfter)
					return nil
				}
				fmt.Fprintf(stdout, "govs bgp %s: done\n", sub.name)
				return nil
			},
		}
		c.Flags().StringVar(&socket, "socket", control.DefaultSocket, "control socket of the daemon")
		if sub.drain {
			c.Flags().DurationVar(&stopAfter, "stop-after", 0, "drain period: the director stops (as on SIGTERM) once it has passed; 0: it keeps running drained")
		}
		cmd.AddCommand(c)
	}
	return cmd
}
