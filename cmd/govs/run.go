package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/coreos/go-systemd/v22/daemon"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/director"
)

// runRun is `govs run`: the director daemon.
func runRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("govs run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file` (keepalived.conf syntax)")
	configID := fs.String("config-id", defaultConfigID(), "select @`ID` conditional lines (keepalived's -i; default: short host name)")
	fs.StringVar(configID, "i", defaultConfigID(), "short for --config-id")
	socket := fs.String("socket", "", "control socket `path` (default /run/govs/govs.sock; - for none)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics on `addr` (e.g. 127.0.0.1:9500)")
	xdpMode := fs.String("xdp-mode", "auto", "XDP attach `mode`: auto, native or generic")
	noDataplane := fs.Bool("no-dataplane", false, "run VRRP and health checks only, without XDP")
	logFormat := fs.String("log-format", "text", "log `format`: text or json")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	pinDir := fs.String("pin-dir", "", "pin the XDP data plane in this bpf filesystem `directory` (e.g. /sys/fs/bpf/govs/lb1): it forwards on if govs dies, and the next govs run adopts it with every connection")
	keep := fs.Bool("keep-dataplane", false, "with --pin-dir, leave the data plane forwarding on a clean stop too (restarts, upgrades)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "govs run: --log-level: %v\n", err)
		return 2
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		fmt.Fprintf(stderr, "govs run: --log-format must be text or json, not %q\n", *logFormat)
		return 2
	}
	mode, ok := map[string]dataplane.AttachMode{"auto": dataplane.Auto, "native": dataplane.Native, "generic": dataplane.Generic}[strings.ToLower(*xdpMode)]
	if !ok {
		fmt.Fprintf(stderr, "govs run: --xdp-mode must be auto, native or generic, not %q\n", *xdpMode)
		return 2
	}
	log := slog.New(handler)
	if *keep && *pinDir == "" {
		fmt.Fprintln(stderr, "govs run: --keep-dataplane needs --pin-dir")
		return 2
	}

	d, err := director.New(director.Options{
		ConfigPath:    *file,
		ConfigID:      *configID,
		Log:           log,
		SocketPath:    *socket,
		MetricsAddr:   *metricsAddr,
		AttachMode:    mode,
		NoDataplane:   *noDataplane,
		PinDir:        *pinDir,
		KeepDataplane: *keep,
		Notify:        sdNotify,
		Version:       buildVersion(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "govs run: %v\n", err)
		return 1
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
		return 1
	}
	return 0
}

// sdNotify passes a state line to systemd when it started govs with
// Type=notify (NOTIFY_SOCKET set); otherwise it does nothing.
func sdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}
