package vrrpnet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/runas"
	"github.com/govs/govs/internal/vrrp"
)

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// notifyCommand is one notify script to run, and as whom.
type notifyCommand struct {
	cmd string
	as  vrrp.RunAs
}

// notifyCommands returns the shell commands keepalived would run for a
// transition: the state's own script, then "notify" with
// "INSTANCE"|"GROUP" name state priority appended.
func notifyCommands(n vrrp.Notify, kind, name string, to vrrp.State, prio int) []notifyCommand {
	var cmds []notifyCommand
	var own, ownKind string
	switch to {
	case vrrp.StateMaster:
		own, ownKind = n.Master, "master"
	case vrrp.StateBackup:
		own, ownKind = n.Backup, "backup"
	case vrrp.StateFault:
		own, ownKind = n.Fault, "fault"
	case vrrp.StateStop:
		own, ownKind = n.Stop, "stop"
	}
	if own != "" {
		cmds = append(cmds, notifyCommand{own, n.RunAs[ownKind]})
	}
	if n.Any != "" {
		cmds = append(cmds, notifyCommand{n.Any + " " + strings.Join([]string{shellQuote(kind), shellQuote(name), shellQuote(to.String()), strconv.Itoa(prio)}, " "), n.RunAs["notify"]})
	}
	return cmds
}

// RunScript runs a shell command as the given user with a timeout and
// reports whether it exited 0. Like keepalived, it runs in its own process
// group, which a timeout kills whole.
func RunScript(ctx context.Context, command string, as vrrp.RunAs, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	attr := &syscall.SysProcAttr{Setpgid: true}
	if as.User != "" || as.Group != "" {
		cred, err := runas.Credential(as.User, as.Group)
		if err != nil {
			return fmt.Errorf("run %q: %w", command, err)
		}
		attr.Credential = cred
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("run %q: %w: %s", command, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// trackEvent reports a tracked object's new state.
type trackEvent struct {
	iface bool
	name  string
	up    bool
}

// watchScript runs a vrrp_script every Interval and reports changes after
// Rise successes or Fall failures in a row (keepalived's rise/fall).
func watchScript(ctx context.Context, s vrrp.TrackScript, log *slog.Logger, out chan<- trackEvent) {
	interval := s.Interval
	if interval <= 0 {
		interval = time.Second
	}
	rise, fall := max(s.Rise, 1), max(s.Fall, 1)
	up := !s.InitFail // keepalived assumes a script good until it fails, unless init_fail
	okRun, badRun := 0, 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := RunScript(ctx, s.Command, s.RunAs, s.Timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			okRun, badRun = okRun+1, 0
		} else {
			okRun, badRun = 0, badRun+1
		}
		switch {
		case !up && okRun >= rise:
			up = true
			log.Info("VRRP script succeeded", "script", s.Name)
			send(ctx, out, trackEvent{name: s.Name, up: true})
		case up && badRun >= fall:
			up = false
			log.Info("VRRP script failed", "script", s.Name, "err", err)
			send(ctx, out, trackEvent{name: s.Name, up: false})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func send[T any](ctx context.Context, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-ctx.Done():
	}
}

// ifaceUp reports whether an interface is administratively up and has carrier.
func ifaceUp(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
}

// pollInterfaces compares the named interfaces' state with last and returns
// the changes. It runs on Run's own goroutine, so that a runner started
// inside a network namespace (on a locked thread) looks at that namespace.
func pollInterfaces(last map[string]bool, names []string) []trackEvent {
	var evs []trackEvent
	for _, n := range names {
		if up := ifaceUp(n); up != last[n] {
			last[n] = up
			evs = append(evs, trackEvent{iface: true, name: n, up: up})
		}
	}
	return evs
}
