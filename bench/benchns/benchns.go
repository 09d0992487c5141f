// Package benchns is what the benchmarks need of network namespaces:
// shell commands, in a namespace or not, and running Go code on a thread
// switched into one. Benchmarks are programs, not tests, so they cannot
// use netnstest.
package benchns

import (
	"bytes"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// Sh runs a command, returning its output in the error when it fails.
func Sh(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// NSSh runs a command in namespace ns.
func NSSh(ns string, args ...string) error {
	return Sh(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

// In runs fn on a thread switched into namespace name. Sockets fn opens
// stay in that namespace after it returns.
func In(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get netns: %w", err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("restore netns: %v", err))
		}
	}()
	return fn()
}
