package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// vrrpRunFile is the JSON form of the VRRP part of a configuration; it lets
// tests and the benchmark drive the runner without the keepalived.conf parser.
type vrrpRunFile struct {
	Instances  []vrrp.InstanceConfig `json:"instances"`
	SyncGroups []vrrp.SyncGroup      `json:"sync_groups"`
	Scripts    []vrrp.TrackScript    `json:"scripts"`
}

// runVRRPRun is the internal "vrrp-run" command: run VRRP instances from JSON
// until SIGTERM/SIGINT, then leave cleanly (priority 0 advert, VIPs removed).
func runVRRPRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vrrp-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "", "JSON file with instances, sync_groups and scripts")
	debug := fs.Bool("debug", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs vrrp-run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *file == "" {
		fmt.Fprintln(stderr, "govs vrrp-run: -config FILE is required")
		return 2
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintf(stderr, "govs vrrp-run: %v\n", err)
		return 1
	}
	var cfg vrrpRunFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintf(stderr, "govs vrrp-run: parse %s: %v\n", *file, err)
		return 1
	}
	return runVRRP(cfg, *debug, stderr)
}

// runVRRP runs the instances with a logger on stderr until SIGTERM or SIGINT.
func runVRRP(cfg vrrpRunFile, debug bool, stderr io.Writer) int {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := vrrpnet.Run(ctx, cfg.Instances, cfg.SyncGroups, vrrpnet.Options{Logger: log, Scripts: cfg.Scripts})
	if err != nil {
		log.Error("VRRP stopped", "err", err)
		return 1
	}
	log.Info("VRRP stopped cleanly")
	return 0
}
