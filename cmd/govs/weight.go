package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/govs/govs/internal/control"
)

// runWeight is `govs weight REAL WEIGHT|reset`: a real server's weight at
// run time, as `ipvsadm -e -w`, without editing the file.
func runWeight(args []string, stdout, stderr io.Writer) int {
	return weightCommand("weight", args, stdout, stderr)
}

// runDrain is `govs drain REAL`: weight 0 (no new connections, established
// ones go on); `govs weight REAL reset` undoes it.
func runDrain(args []string, stdout, stderr io.Writer) int {
	return weightCommand("drain", args, stdout, stderr)
}

func weightCommand(name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("govs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	usage := "usage: govs weight [--vs VIP:PORT] [--socket PATH] REAL WEIGHT|reset"
	about := "set a real server's weight at run time, in place of its configured weight while its checks pass\n(reset: the configured weight again); REAL is ADDR or ADDR:PORT; without --vs every virtual server\nwith that real server is changed. A reload keeps it."
	nargs := 2
	if name == "drain" {
		usage = "usage: govs drain [--vs VIP:PORT] [--socket PATH] REAL"
		about = "weight 0 for a real server: no new connections, established ones go on\n(govs weight REAL reset undoes it)."
		nargs = 1
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fmt.Fprintf(stderr, "\n%s\n\n", about)
		fs.PrintDefaults()
	}
	socket := fs.String("socket", control.DefaultSocket, "control socket of the daemon")
	vs := fs.String("vs", "", "the virtual server (`VIP:PORT` as govs list shows it, or a group name); default: every one")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return 2
	}
	var weight *uint32
	switch {
	case name == "drain":
		zero := uint32(0)
		weight = &zero
	case fs.Arg(1) == "reset":
	default:
		w, err := strconv.ParseUint(fs.Arg(1), 10, 32)
		if err != nil || w > 65535 {
			fmt.Fprintf(stderr, "govs weight: weight %q: want 0..65535 or reset\n", fs.Arg(1))
			return 2
		}
		w32 := uint32(w)
		weight = &w32
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, *socket)
	if err != nil {
		fmt.Fprintf(stderr, "govs %s: %s\n", name, dialError(*socket, err))
		return 1
	}
	defer c.Close()
	n, err := c.Weight(ctx, *vs, fs.Arg(0), weight)
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
