// Package netnstest builds throw-away network topologies for tests: named
// network namespaces (prefix "govs-"), veth pairs and bridges between them,
// and processes started inside them. Everything a helper creates is removed
// by t.Cleanup, also when the test fails.
//
// The helpers shell out to iproute2 on purpose: a test topology should read
// like the commands an operator would type, and failures print those commands.
package netnstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace this package creates.
const Prefix = "govs-"

// RequireRoot skips the test unless it runs as root with the ip command available.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command")
	}
}

// NS is a named network namespace owned by one test.
type NS struct {
	Name string
	t    testing.TB
}

// shortID returns a random hex string; namespace and interface names are
// limited in length, so it is kept short.
func shortID() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// NewNS creates namespace "govs-<role>-<random>" with lo up and removes it at cleanup.
func NewNS(t testing.TB, role string) *NS {
	t.Helper()
	name := Prefix + role + "-" + shortID()
	MustRun(t, "ip", "netns", "add", name)
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("netnstest: delete %s: %v: %s", name, err, out)
		}
	})
	ns.MustRun("ip", "link", "set", "lo", "up")
	return ns
}

// MustRun runs a command on the host and fails the test on error.
func MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command returns an exec.Cmd that runs inside the namespace.
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	out, err := n.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netns %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// MustRun runs a command inside the namespace and fails the test on error.
func (n *NS) MustRun(name string, args ...string) string {
	n.t.Helper()
	out, err := n.Run(name, args...)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// Sysctl sets a sysctl inside the namespace, e.g. Sysctl("net.ipv4.ip_forward", "1").
func (n *NS) Sysctl(key, value string) {
	n.t.Helper()
	n.MustRun("sysctl", "-qw", key+"="+value)
}

// Start starts a long-running process inside the namespace. It is killed (by
// its PID, with its process group) and reaped at cleanup. Output goes to the test log.
func (n *NS) Start(name string, args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := n.Command(name, args...)
	cmd.Stdout = testWriter{n.t, n.Name + " " + name}
	cmd.Stderr = cmd.Stdout
	// Its own process group, so cleanup also ends the children (nginx's
	// workers, a checker's scripts) that would keep the output pipe open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start %s in %s: %v", name, n.Name, err)
	}
	n.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if cmd.ProcessState == nil {
			_ = cmd.Wait()
		}
	})
	return cmd
}

// Do runs fn with the calling goroutine's thread switched into the namespace,
// so Go code (sockets, netlink handles, XDP attach) acts inside it.
func (n *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(n.Name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.Name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", n.Name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// A thread left in the wrong namespace must not be reused.
			panic(fmt.Sprintf("netnstest: restore netns: %v", err))
		}
	}()
	return fn()
}

// Handle opens the namespace's handle (for netlink.NewHandleAt and friends);
// it is closed at cleanup.
func (n *NS) Handle() netns.NsHandle {
	n.t.Helper()
	h, err := netns.GetFromName(n.Name)
	if err != nil {
		n.t.Fatalf("open netns %s: %v", n.Name, err)
	}
	n.t.Cleanup(func() { h.Close() })
	return h
}

// Veth connects namespace a (interface aIf) with namespace b (interface bIf)
// and brings both ends up. Interface names must be at most 15 bytes.
func Veth(t testing.TB, a *NS, aIf string, b *NS, bIf string) {
	t.Helper()
	tmpA, tmpB := "gv"+shortID()+"a", "gv"+shortID()+"b"
	MustRun(t, "ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB)
	MustRun(t, "ip", "link", "set", tmpA, "netns", a.Name, "name", aIf)
	MustRun(t, "ip", "link", "set", tmpB, "netns", b.Name, "name", bIf)
	a.MustRun("ip", "link", "set", aIf, "up")
	b.MustRun("ip", "link", "set", bIf, "up")
}

// Bridge creates bridge br inside ns and brings it up.
func (n *NS) Bridge(br string) {
	n.t.Helper()
	n.MustRun("ip", "link", "add", br, "type", "bridge")
	n.MustRun("ip", "link", "set", br, "up")
}

// Join plugs member into bridge br0 of n (made by Bridge): member's eth0
// is the far end of n's port, with address cidr when it is not empty.
func (n *NS) Join(member *NS, port, cidr string) {
	n.t.Helper()
	Veth(n.t, member, "eth0", n, port)
	n.MustRun("ip", "link", "set", port, "master", "br0")
	if cidr != "" {
		member.Addr("eth0", cidr)
	}
}

// HoldVIP makes n a DR real server of vip: the VIP on lo, and
// arp_ignore=1, arp_announce=2 so that n never answers ARP for it.
func (n *NS) HoldVIP(vip string) {
	n.t.Helper()
	n.Addr("lo", vip+"/32")
	for _, dev := range []string{"all", "lo"} {
		n.Sysctl("net.ipv4.conf."+dev+".arp_ignore", "1")
		n.Sysctl("net.ipv4.conf."+dev+".arp_announce", "2")
	}
}

// Addr adds address cidr (e.g. "198.18.0.1/24") to interface dev.
func (n *NS) Addr(dev, cidr string) {
	n.t.Helper()
	n.MustRun("ip", "addr", "add", cidr, "dev", dev)
}

type testWriter struct {
	t      testing.TB
	prefix string
}

func (w testWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Logf("[%s] %s", w.prefix, line)
	}
	return len(p), nil
}

// BuildGovs builds cmd/govs into a temporary directory of t and returns
// its path; it skips the test when the go command is missing.
func BuildGovs(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to build govs")
	}
	bin := filepath.Join(t.TempDir(), "govs")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/govs/govs/cmd/govs").CombinedOutput(); err != nil {
		t.Fatalf("build govs: %v\n%s", err, out)
	}
	return bin
}

// Nginx returns Debian's nginx binary, or skips the test without it
// (scripts/deps.sh installs it).
func Nginx(t testing.TB) string {
	t.Helper()
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Skip("nginx is not installed (scripts/deps.sh installs it)")
	return ""
}

// AttachXDPPass attaches an XDP program passing every frame to dev in ns.
// A veth that receives frames its peer sent with XDP_TX or a redirect
// needs one (a NAPI context), or those frames wait or are dropped.
func AttachXDPPass(t testing.TB, ns *NS, dev string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		t.Fatalf("load XDP pass program: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	if err := ns.Do(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	}); err != nil {
		t.Fatalf("attach XDP pass program to %s: %v", dev, err)
	}
}

// MountBPFFS mounts a private bpf filesystem for the test (a new instance,
// so whatever is pinned there goes with it) and returns its directory.
func MountBPFFS(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "bpf")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}
