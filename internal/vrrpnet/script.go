package vrrpnet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/vrrp"
)

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// notifyCommands returns the shell commands keepalived would run for a
// transition: the state's own script, then "notify" with
// "INSTANCE"|"GROUP" name state priority appended.
func notifyCommands(n vrrp.Notify, kind, name string, to vrrp.State, prio int) []string {
	var cmds []string
	var own string
	switch to {
	case vrrp.StateMaster:
		own = n.Master
	case vrrp.StateBackup:
		own = n.Backup
	case vrrp.StateFault:
		own = n.Fault
	case vrrp.StateStop:
		own = n.Stop
	}
	if own != "" {
		cmds = append(cmds, own)
	}
	if n.Any != "" {
		cmds = append(cmds, n.Any+" "+strings.Join([]string{shellQuote(kind), shellQuote(name), shellQuote(to.String()), strconv.Itoa(prio)}, " "))
	}
	return cmds
}

// runScript runs a shell command with a timeout and reports whether it exited 0.
func runScript(ctx context.Context, command string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
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
	up := true // keepalived assumes a script good until it fails (no init_fail)
	okRun, badRun := 0, 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := runScript(ctx, s.Command, s.Timeout)
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

// watchInterfaces polls the state of the named interfaces and reports changes.
func watchInterfaces(ctx context.Context, names []string, every time.Duration, out chan<- trackEvent) {
	state := map[string]bool{}
	for _, n := range names {
		state[n] = true // machines start assuming their interfaces are up
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, n := range names {
			if up := ifaceUp(n); up != state[n] {
				state[n] = up
				send(ctx, out, trackEvent{iface: true, name: n, up: up})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
