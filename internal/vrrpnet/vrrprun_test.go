package vrrpnet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/vrrpnet"
)

// vrrpRunEnv makes the test binary itself the VRRP runner the tests start
// in other namespaces, fed with JSON for fields keepalived.conf cannot
// express directly: TestMain runs it, instead of the tests, when the
// variable names a file. (No production command is kept for tests.)
const vrrpRunEnv = "GOVS_TEST_VRRP_RUN"

// vrrpRunFile is the JSON the runner reads.
type vrrpRunFile struct {
	Instances  []vrrp.InstanceConfig `json:"instances"`
	SyncGroups []vrrp.SyncGroup      `json:"sync_groups"`
	Scripts    []vrrp.TrackScript    `json:"scripts"`
}

// runVRRPFile runs the instances of a JSON file until SIGTERM or SIGINT,
// then leaves cleanly (priority 0 advert, VIPs removed).
func runVRRPFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vrrp runner: %v\n", err)
		return 1
	}
	var cfg vrrpRunFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "vrrp runner: parse %s: %v\n", path, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := vrrpnet.Run(ctx, cfg.Instances, cfg.SyncGroups, vrrpnet.Options{Logger: log, Scripts: cfg.Scripts}); err != nil {
		log.Error("VRRP stopped", "err", err)
		return 1
	}
	log.Info("VRRP stopped cleanly")
	return 0
}
