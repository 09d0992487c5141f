package vrrpnet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
	"github.com/govs/govs/internal/vrrp"
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

const vipAddr = "198.18.0.100"

type host struct {
	ns  *netnstest.NS
	ip  string
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
	mk := func(role, ip, mac string, port string) host {
		ns := netnstest.NewNS(t, role)
		netnstest.Veth(t, ns, "eth0", br, port)
		br.MustRun("ip", "link", "set", port, "master", "br0")
		ns.MustRun("ip", "link", "set", "eth0", "address", mac)
		ns.Addr("eth0", ip+"/24")
		return host{ns: ns, ip: ip, mac: mac}
	}
	l.a = mk("a", "198.18.0.11", "02:00:00:00:00:0b", "pa")
	l.b = mk("b", "198.18.0.12", "02:00:00:00:00:0c", "pb")
	l.client = mk("cl", "198.18.0.20", "02:00:00:00:00:14", "pc")
	return l
}

// hasVIP reports whether the host's eth0 holds the VIP.
func hasVIP(t *testing.T, h host) bool {
	t.Helper()
	var found bool
	err := h.ns.Do(func() error {
		link, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.IP.String() == vipAddr {
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

// clientNeighMAC returns the client's ARP entry for the VIP.
func clientNeighMAC(t *testing.T, l *lab) string {
	out, _ := l.client.ns.Run("ip", "neigh", "show", vipAddr, "dev", "eth0")
	f := strings.Fields(out)
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
	// mod adjusts a govs instance beyond these fields.
	mod func(*vrrp.InstanceConfig)
}

func (s side) instance(h, peer host) vrrp.InstanceConfig {
	c := vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: s.vrid, Priority: s.prio, Interval: s.interval,
		Version: s.version, InitialMaster: s.master, AuthPass: s.pass,
		VIPs: []vrrp.VIP{{Prefix: netip.MustParsePrefix(vipAddr + "/24")}}}
	if s.unicast {
		c.UnicastSrc = netip.MustParseAddr(h.ip)
		c.UnicastPeers = []netip.Addr{netip.MustParseAddr(peer.ip)}
	}
	if s.mod != nil {
		s.mod(&c)
	}
	return c
}

func (s side) keepalivedConf(h, peer host) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id %s\n", strings.ReplaceAll(h.ip, ".", "_"))
	if s.version == 3 {
		b.WriteString("  vrrp_version 3\n")
	}
	b.WriteString("}\nvrrp_instance VI_1 {\n")
	state := "BACKUP"
	if s.master {
		state = "MASTER"
	}
	fmt.Fprintf(&b, "  state %s\n  interface eth0\n  virtual_router_id %d\n  priority %d\n  advert_int %g\n", state, s.vrid, s.prio, s.interval.Seconds())
	if s.pass != "" {
		fmt.Fprintf(&b, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", s.pass)
	}
	if s.unicast {
		fmt.Fprintf(&b, "  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }\n", h.ip, peer.ip)
	}
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s/24 dev eth0\n  }\n}\n", vipAddr)
	return b.String()
}

// run starts the side on host h (peer is the other director).
func (s side) run(t *testing.T, h, peer host) *proc {
	t.Helper()
	dir := t.TempDir()
	if s.keepalived {
		conf := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(conf, []byte(s.keepalivedConf(h, peer)), 0o644); err != nil {
			t.Fatal(err)
		}
		return start(t, h.ns, "keepalived "+h.ip, "keepalived", "--vrrp", "--dont-fork", "--log-console", "-f", conf,
			"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	}
	return runGovs(t, h, map[string]any{"instances": []vrrp.InstanceConfig{s.instance(h, peer)}})
}

// runGovs starts "govs vrrp-run" on h with cfg (the JSON file's content).
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
	return start(t, h.ns, "govs "+h.ip, govsBinary(t), "vrrp-run", "-config", conf)
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
