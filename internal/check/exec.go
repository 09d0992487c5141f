package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/check/state"
	"github.com/govs/govs/internal/runas"
)

// termGrace is how long a timed-out script has between SIGTERM and SIGKILL,
// as in keepalived.
const termGrace = 2 * time.Second

// command prepares a script the way keepalived runs one: its own process
// group (so a timeout kills the children too), the configured user and
// group, stdio on /dev/null, and govs's environment without IFS and the
// dynamic loader overrides.
func command(ctx context.Context, s Script) (*exec.Cmd, error) {
	args, err := SplitCommand(s.Command)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = scriptEnv(os.Environ())
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if s.User != "" || s.Group != "" {
		cred, err := runas.Credential(s.User, s.Group)
		if err != nil {
			return nil, err
		}
		attr.Credential = cred
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error {
		// Negative pid: the whole process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = termGrace
	return cmd, nil
}

func scriptEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "IFS", "LD_PRELOAD", "LD_LIBRARY_PATH":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// runScript runs s until it exits or ctx ends, then makes sure nothing of
// its process group is left. It returns the exit status, or an error if the
// script could not start, timed out or died from a signal.
func runScript(ctx context.Context, s Script) (int, error) {
	cmd, err := command(ctx, s)
	if err != nil {
		return -1, err
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("start %s: %w", s.Command, err)
	}
	err = cmd.Wait()
	// Children the script left behind go with it.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if ctx.Err() != nil {
		return -1, fmt.Errorf("%s timed out", s.Command)
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, fmt.Errorf("%s killed by signal %v", s.Command, ws.Signal())
		}
		return exitErr.ExitCode(), nil
	} else if err != nil {
		return -1, fmt.Errorf("wait for %s: %w", s.Command, err)
	}
	return 0, nil
}

type miscProber struct{ r resolved }

func newMiscProber(r resolved) (*miscProber, error) {
	if r.MiscPath.User != "" || r.MiscPath.Group != "" {
		if _, err := runas.Credential(r.MiscPath.User, r.MiscPath.Group); err != nil {
			return nil, err
		}
	}
	return &miscProber{r: r}, nil
}

// Probe runs misc_path: exit 0 passes; with misc_dynamic, exit 2..255
// passes and sets the weight to the exit status minus 2.
func (p *miscProber) Probe(ctx context.Context) state.Result {
	code, err := runScript(ctx, p.r.MiscPath)
	switch {
	case err != nil:
		return state.Result{Err: err}
	case code == 0:
		return passed()
	case p.r.MiscDynamic && code >= 2 && code <= 255:
		return state.Result{OK: true, HasWeight: true, Weight: code - 2}
	}
	return fail("%s exited with status %d", p.r.MiscPath.Command, code)
}
