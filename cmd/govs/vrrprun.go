package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

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

// newVRRPRunCmd is the internal "vrrp-run" command: run VRRP instances
// from JSON until SIGTERM/SIGINT, then leave cleanly (priority 0 advert,
// VIPs removed).
func newVRRPRunCmd(stderr io.Writer) *cobra.Command {
	var file string
	var debug bool
	cmd := &cobra.Command{
		Use:    "vrrp-run --config FILE",
		Short:  "(internal) run VRRP instances from JSON; see docs/vrrp.md",
		Hidden: true,
		Args:   noArgs,
		RunE:   func(*cobra.Command, []string) error { return exitCode(runVRRPRun(file, debug, stderr)) },
	}
	cmd.Flags().StringVar(&file, "config", "", "JSON `file` with instances, sync_groups and scripts")
	cmd.Flags().BoolVar(&debug, "debug", false, "log debug messages")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

func runVRRPRun(path string, debug bool, stderr io.Writer) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "govs vrrp-run: %v\n", err)
		return 1
	}
	var cfg vrrpRunFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintf(stderr, "govs vrrp-run: parse %s: %v\n", path, err)
		return 1
	}
	return runVRRP(cfg, debug, stderr)
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
