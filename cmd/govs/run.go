package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/director"
)

// runOptions are `govs run`'s flags.
type runOptions struct {
	file, configID, socket, metrics, xdpMode, logFormat, logLevel, pinDir string
	noDataplane, keep                                                     bool
}

// newRunCmd is `govs run`: the director daemon.
func newRunCmd(stderr io.Writer) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [-f FILE]",
		Short: "run the director: VRRP, health checks and the XDP data plane",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.keep && o.pinDir == "" {
				return usagef("--keep-dataplane needs --pin-dir")
			}
			return runDirector(o, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "use-file", "f", "/etc/keepalived/keepalived.conf", "configuration `file` (keepalived.conf syntax)")
	f.StringVarP(&o.configID, "config-id", "i", defaultConfigID(), "select @`ID` conditional lines (keepalived's -i; default: short host name)")
	f.StringVar(&o.socket, "socket", "", "control socket `path` (default /run/govs/govs.sock; - for none)")
	f.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on `addr` (e.g. 127.0.0.1:9500)")
	f.StringVar(&o.xdpMode, "xdp-mode", "auto", "XDP attach `mode`: auto, native or generic")
	f.BoolVar(&o.noDataplane, "no-dataplane", false, "run VRRP and health checks only, without XDP")
	f.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	f.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	f.StringVar(&o.pinDir, "pin-dir", "", "pin the XDP data plane in this bpf filesystem `directory` (e.g. /sys/fs/bpf/govs/lb1): it forwards on if govs dies, and the next govs run adopts it with every connection")
	f.BoolVar(&o.keep, "keep-dataplane", false, "with --pin-dir, leave the data plane forwarding on a clean stop too (restarts, upgrades)")
	return cmd
}

// runDirector runs the director until SIGTERM or SIGINT; SIGHUP reloads.
func runDirector(o runOptions, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usagef("--log-level: %v", err)
	}
	var handler slog.Handler
	switch o.logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		return usagef("--log-format must be text or json, not %q", o.logFormat)
	}
	mode, ok := map[string]dataplane.AttachMode{"auto": dataplane.Auto, "native": dataplane.Native, "generic": dataplane.Generic}[strings.ToLower(o.xdpMode)]
	if !ok {
		return usagef("--xdp-mode must be auto, native or generic, not %q", o.xdpMode)
	}
	log := slog.New(handler)

	d, err := director.New(director.Options{
		ConfigPath:    o.file,
		ConfigID:      o.configID,
		Log:           log,
		SocketPath:    o.socket,
		MetricsAddr:   o.metrics,
		AttachMode:    mode,
		NoDataplane:   o.noDataplane,
		PinDir:        o.pinDir,
		KeepDataplane: o.keep,
		Notify:        sdNotify,
		Version:       buildVersion(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "govs run: %v\n", err)
		return exitError{1}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				// Errors are logged by Reload; the running configuration stays.
				_ = d.Reload()
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("director failed", "err", err)
		return exitError{1}
	}
	return nil
}

// sdNotify passes a state line to systemd when it started govs with
// Type=notify (NOTIFY_SOCKET set); otherwise it does nothing.
func sdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}
