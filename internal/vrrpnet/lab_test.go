package vrrpnet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// The lab: one bridge namespace and hosts on it.
//
//	 director a 198.18.0.11 ─┐
//	 director b 198.18.0.12 ─┼─ br0 (namespace "br")
//	 client     198.18.0.20 ─┘
//
// VIP 198.18.0.100/24 moves between the directors.

var (
	buildOnce sync.Once
	govsBin   string
	buildErr  error
)

// govsBinary builds cmd/govs once per test binary run.
func govsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "govs-vrrp-bin-")
		if err != nil {
			buildErr = err
			return
		}
		govsBin = filepath.Join(dir, "govs")
		out, err := exec.Command("go", "build", "-o", govsBin, "github.com/govs/govs/cmd/govs").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return govsBin
}

const (
	vipAddr  = "198.18.0.100"
	vip6Addr = "2001:db8::100"
)

type host struct {
	ns  *netnstest.NS
	ip  string
	ip6 string
	mac string
}

type lab struct {
	t      *testing.T
	br     *netnstest.NS
	a, b   host
	client host
}

func newLab(t *testing.T) *lab {
	t.Helper()
	netnstest.RequireRoot(t)
	br := netnstest.NewNS(t, "br")
	br.Bridge("br0")
	l := &lab{t: t, br: br}
	mk := func(role, ip, ip6, mac string, port string) host {
		ns := netnstest.NewNS(t, role)
		br.Join(ns, port, "")
		// Without DAD the link-local address is usable at once when the
		// link comes back up.
		ns.Sysctl("net.ipv6.conf.eth0.accept_dad", "0")
		ns.MustRun("ip", "link", "set", "eth0", "down")
		ns.MustRun("ip", "link", "set", "eth0", "address", mac)
		ns.MustRun("ip", "link", "set", "eth0", "up")
		ns.Addr("eth0", ip+"/24")
		ns.MustRun("ip", "-6", "addr", "add", ip6+"/64", "dev", "eth0", "nodad")
		return host{ns: ns, ip: ip, ip6: ip6, mac: mac}
	}
	l.a = mk("a", "198.18.0.11", "2001:db8::11", "02:00:00:00:00:0b", "pa")
	l.b = mk("b", "198.18.0.12", "2001:db8::12", "02:00:00:00:00:0c", "pb")
	l.client = mk("cl", "198.18.0.20", "2001:db8::20", "02:00:00:00:00:14", "pc")
	return l
}

// hasVIP reports whether the host's eth0 holds the VIP (IPv4 or IPv6).
func hasVIP(t *testing.T, h host) bool {
	t.Helper()
	var found bool
	err := h.ns.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip := a.IP.String(); ip == vipAddr || ip == vip6Addr {
				found = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// waitVIP polls until the host holds (or lost) the VIP and returns when.
func waitVIP(t *testing.T, h host, want bool, limit time.Duration) (time.Time, bool) {
	t.Helper()
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if hasVIP(t, h) == want {
			return time.Now(), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, false
}

// clientNeighMAC returns the client's ARP (or IPv6 neighbour) entry for the VIP.
func clientNeighMAC(t *testing.T, l *lab) string {
	out, _ := l.client.ns.Run("ip", "neigh", "show", vipAddr, "dev", "eth0")
	out6, _ := l.client.ns.Run("ip", "-6", "neigh", "show", vip6Addr, "dev", "eth0")
	f := strings.Fields(out + " " + out6)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// proc is a daemon started in its own process group, so a hard kill takes
// keepalived's VRRP child along before it can run its SIGTERM handler.
type proc struct {
	cmd *exec.Cmd
	out *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	t  *testing.T
	p  string
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		s.t.Logf("[%s] %s", s.p, line)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, ns *netnstest.NS, prefix, name string, args ...string) *proc {
	t.Helper()
	cmd := ns.Command(name, args...)
	buf := &syncBuffer{t: t, p: prefix}
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{cmd: cmd, out: buf}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return p
}

// kill stops the daemon hard (SIGKILL to its whole process group).
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// term asks the daemon to stop gracefully; wait reaps it.
func (p *proc) term() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// wait waits for a daemon sent SIGTERM to exit with status 0.
func (p *proc) wait(t *testing.T) {
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("no exit 10 s after SIGTERM")
	}
}

// side describes one VRRP speaker in a test.
type side struct {
	keepalived bool
	version    int
	interval   time.Duration
	prio       int
	master     bool // "state MASTER"
	pass       string
	vrid       uint8
	unicast    bool
	ipv6       bool
	nopreempt  bool
	preempt    time.Duration // preempt_delay
	// mcastGroup sets vrrp_mcast_group4 (or 6) when not empty.
	mcastGroup string
	// global and instance are extra lines for global_defs and the instance.
	global, instance string
}

func (s side) keepalivedConf(h, peer host) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n", strings.ReplaceAll(h.ip, ".", "_"))
	if s.version == 3 {
		b.WriteString("  vrrp_version 3\n")
	}
	b.WriteString(s.global)
	if s.mcastGroup != "" {
		kw := "vrrp_mcast_group4"
		if s.ipv6 {
			kw = "vrrp_mcast_group6"
		}
		fmt.Fprintf(&b, "  %s %s\n", kw, s.mcastGroup)
	}
	b.WriteString("}\nvrrp_instance VI_1 {\n")
	state := "BACKUP"
	if s.master {
		state = "MASTER"
	}
	fmt.Fprintf(&b, "  state %s\n  interface eth0\n  virtual_router_id %d\n  priority %d\n  advert_int %g\n", state, s.vrid, s.prio, s.interval.Seconds())
	b.WriteString(s.instance)
	if s.nopreempt {
		b.WriteString("  nopreempt\n")
	}
	if s.preempt > 0 {
		fmt.Fprintf(&b, "  preempt_delay %g\n", s.preempt.Seconds())
	}
	if s.pass != "" {
		fmt.Fprintf(&b, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", s.pass)
	}
	if s.unicast {
		fmt.Fprintf(&b, "  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }\n", s.addr(h), s.addr(peer))
	}
	vip := vipAddr + "/24"
	if s.ipv6 {
		vip = vip6Addr + "/64"
	}
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s dev eth0\n  }\n}\n", vip)
	return b.String()
}

// addr is the host's address in the side's family.
func (s side) addr(h host) string {
	if s.ipv6 {
		return h.ip6
	}
	return h.ip
}

// run starts the side on host h (peer is the other director). Both
// keepalived and govs ("govs run -f") run the same keepalived.conf.
func (s side) run(t *testing.T, h, peer host) *proc {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(s.keepalivedConf(h, peer)), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.keepalived {
		return start(t, h.ns, "keepalived "+h.ip, "keepalived", "--vrrp", "--dont-fork", "--log-console", "-f", conf,
			"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	}
	// No control socket (its path is shared by every namespace) and no XDP:
	// these tests are about VRRP.
	return start(t, h.ns, "govs "+h.ip, govsBinary(t), "run", "-f", conf, "--socket", "-", "--no-dataplane")
}

// runGovs starts govs's VRRP runner on h with cfg (the JSON file's
// content): this test binary, as vrrpRunEnv makes it.
func runGovs(t *testing.T, h host, cfg any) *proc {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "vrrp.json")
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return start(t, h.ns, "govs "+h.ip, "env", vrrpRunEnv+"="+conf, os.Args[0])
}

// skew is keepalived's skew time for a side (v2: seconds, v3: advert intervals).
func (s side) skew() time.Duration {
	if s.version == 3 {
		return time.Duration(256-s.prio) * s.interval / 256
	}
	return time.Duration(256-s.prio) * time.Second / 256
}

func requireKeepalived(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (scripts/deps.sh installs it)")
	}
}
