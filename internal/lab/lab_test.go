package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// labName returns a fresh lab name, so parallel runs never collide.
func labName(t *testing.T) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

// upForTest builds a lab and makes sure it is gone at cleanup.
func upForTest(t *testing.T, opts Options) *State {
	t.Helper()
	if opts.Name == "" {
		opts.Name = labName(t)
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(t.TempDir(), "state")
	}
	t.Cleanup(func() {
		if err := Down(opts.Name, opts.StateDir, nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	start := time.Now()
	st, err := Up(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab %s up in %s", opts.Name, time.Since(start))
	return st
}

func nsOut(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %v\n%s", ns, args, err, out)
	}
	return string(out)
}

func assertGone(t *testing.T, name string, procs []Process) {
	t.Helper()
	left, err := ExistingNamespaces(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left after down: %v", left)
	}
	for _, p := range procs {
		if alive(p.PID, p.Marker) {
			t.Errorf("%s (pid %d) still runs after down", p.Role, p.PID)
		}
	}
}

func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx not installed")
	}
}

func TestPrivilegedLabUpDown(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	name := labName(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	st := upForTest(t, Options{Name: name, StateDir: stateDir, Webs: 2, WebServer: WebNginx})
	topo := Topology{Name: name, Webs: 2}

	if len(st.Processes) != 2 {
		t.Fatalf("recorded processes %+v, want 2 web servers", st.Processes)
	}
	items, err := Status(name, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if !it.OK {
			t.Errorf("status: %s: %s", it.What, it.Note)
		}
	}

	// Client → router → LAN → each web server, and back directly.
	for _, w := range topo.WebRoles() {
		a4, _ := topo.LANAddr(w)
		a6, _ := topo.LANAddr6(w)
		for _, addr := range []netip.Addr{a4, a6} {
			body, err := Fetch(topo.NS("client"), addr, Port, 3*time.Second)
			if err != nil {
				t.Errorf("HTTP to %s at %s: %v", w, addr, err)
			} else if body != w+"\n" {
				t.Errorf("HTTP to %s at %s answered %q", w, addr, body)
			}
		}
	}
	// Each web server reaches the router's public side (its default route).
	for _, w := range topo.WebRoles() {
		nsOut(t, topo.NS(w), "ping", "-c", "1", "-W", "2", PublicIP.String())
		nsOut(t, topo.NS(w), "ping", "-6", "-c", "1", "-W", "2", PublicIP6.String())
	}
	if out := nsOut(t, topo.NS("router"), "nft", "list", "table", "inet", NftTable); !strings.Contains(out, "dnat ip to 198.18.0.100:80") ||
		!strings.Contains(out, "dnat ip6 to [2001:db8:18::100]:80") || !strings.Contains(out, "203.0.113.1") || strings.Contains(out, "masquerade") {
		t.Errorf("router rules:\n%s", out)
	}
	// Web servers are DR real servers.
	for _, w := range topo.WebRoles() {
		if out := nsOut(t, topo.NS(w), "ip", "-o", "addr", "show", "dev", "lo"); !strings.Contains(out, "198.18.0.100/32") || !strings.Contains(out, "2001:db8:18::100/128") {
			t.Errorf("%s: VIP not on lo:\n%s", w, out)
		}
		if out := nsOut(t, topo.NS(w), "sysctl", "-n", "net.ipv4.conf.all.arp_ignore", "net.ipv4.conf.all.arp_announce"); strings.Fields(out)[0] != "1" || strings.Fields(out)[1] != "2" {
			t.Errorf("%s: arp_ignore/arp_announce = %q", w, out)
		}
	}
	// The veth settings the XDP director will need.
	for _, d := range (Topology{}).DirectorRoles() {
		ns := topo.NS(d)
		if out := nsOut(t, ns, "sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter", "net.ipv4.conf.eth0.rp_filter"); strings.Join(strings.Fields(out), " ") != "1 0 0" {
			t.Errorf("%s: ip_forward, rp_filter = %q", d, out)
		}
		out := nsOut(t, ns, "ethtool", "-k", "eth0")
		if !strings.Contains(out, "tx-checksumming: off") || !strings.Contains(out, "generic-receive-offload: on") {
			t.Errorf("%s eth0 offloads:\n%s", d, out)
		}
		if _, err := os.Stat(st.Files[d]); err != nil {
			t.Errorf("%s keepalived.conf: %v", d, err)
		}
	}
	if out := nsOut(t, topo.NS("lan"), "ethtool", "-k", "dir1"); !strings.Contains(out, "generic-receive-offload: on") {
		t.Errorf("bridge port of dir1 (receives XDP_TX frames) has GRO off:\n%s", out)
	}

	if _, err := Up(Options{Name: name, StateDir: stateDir}); err == nil {
		t.Error("second up of the same lab: want an error")
	}

	if err := Down(name, stateDir, nil); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, st.Processes)
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left after down: %v", err)
	}
	if err := Down(name, stateDir, nil); err != nil {
		t.Errorf("second down: %v", err)
	}
}

func TestPrivilegedLabFailedUpCleansUp(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	name := labName(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	var made *State
	injected := errors.New("injected failure")
	_, err := Up(Options{Name: name, StateDir: stateDir, Webs: 2, WebServer: WebNginx, BeforeStep: func(step string) error {
		if step != "web server web2" {
			return nil
		}
		// web1 runs by now: remember what exists, then fail.
		st, err := loadState(stateDir)
		if err != nil || st == nil {
			t.Errorf("state during up: %v", err)
		}
		made = st
		return injected
	}})
	if !errors.Is(err, injected) {
		t.Fatalf("up: %v, want the injected failure", err)
	}
	if made == nil || len(made.Processes) != 1 || len(made.Namespaces) != len(Topology{Name: name, Webs: 2}.Roles()) {
		t.Fatalf("state at the failure: %+v", made)
	}
	assertGone(t, name, made.Processes)
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left after failed up: %v", err)
	}
}

func TestPrivilegedLabDownWithoutStateFile(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	name := labName(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	st := upForTest(t, Options{Name: name, StateDir: stateDir, Webs: 1, WebServer: WebNginx})
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	if _, err := Status(name, stateDir); err != nil {
		t.Fatal(err)
	}
	if err := Down(name, stateDir, nil); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, st.Processes)
}

// TestPrivilegedLabBuiltinWebServer runs the lab with govs's own web server
// (the fallback when nginx is missing), from a freshly built govs binary.
func TestPrivilegedLabBuiltinWebServer(t *testing.T) {
	netnstest.RequireRoot(t)
	govs := netnstest.BuildGovs(t)
	name := labName(t)
	// The director hook starts a stand-in (another built-in web server on a
	// spare port) in each director namespace, naming the generated conf.
	st := upForTest(t, Options{Name: name, Webs: 1, WebServer: WebBuiltin, Govs: govs,
		DirectorCmd: []string{"{govs}", "lab", "webserver", "--name", "director", "--listen", "127.0.0.1:8080", "--state-dir={conf}"}})
	topo := Topology{Name: name, Webs: 1}
	addr, _ := topo.LANAddr("web1")
	if body, err := Fetch(topo.NS("client"), addr, Port, 3*time.Second); err != nil || body != "web1\n" {
		t.Errorf("HTTP to web1: %q, %v", body, err)
	}
	roles := map[string]bool{}
	for _, p := range st.Processes {
		roles[p.Role] = true
		if !alive(p.PID, p.Marker) {
			t.Errorf("%s (pid %d, marker %q) is not running", p.Role, p.PID, p.Marker)
		}
	}
	if !roles["dir1"] || !roles["dir2"] || !roles["web1"] {
		t.Errorf("recorded processes %+v, want dir1, dir2 and web1", st.Processes)
	}
	if !strings.Contains(st.Processes[0].Marker, "dir1-keepalived.conf") {
		t.Errorf("director marker %q does not name its conf", st.Processes[0].Marker)
	}
	if err := Down(name, filepath.Dir(st.Files["dir1"]), nil); err != nil {
		t.Fatal(err)
	}
	assertGone(t, name, st.Processes)
}

// TestPrivilegedLabDRPath checks the scenario's whole DR path in the lab with
// a stand-in for the director's data plane: dir1 owns the VIP (as the VRRP
// master would), and an nftables rule on the LAN bridge rewrites the
// destination MAC of frames for VIP:80 from dir1's to web2's — what the
// director does. The client's request to the router's public address must be
// answered by web2, directly through the router (no masquerade, the router's
// conntrack reverses the DNAT), and the router must have learnt dir1's MAC
// for the VIP (the web servers' arp_ignore at work).
func TestPrivilegedLabDRPath(t *testing.T) {
	netnstest.RequireRoot(t)
	requireNginx(t)
	name := labName(t)
	upForTest(t, Options{Name: name, Webs: 2, WebServer: WebNginx})
	topo := Topology{Name: name, Webs: 2}
	mac := func(role string) string {
		return strings.TrimSpace(nsOut(t, topo.NS(role), "cat", "/sys/class/net/eth0/address"))
	}
	dir1, web2 := mac("dir1"), mac("web2")
	nsOut(t, topo.NS("dir1"), "ip", "addr", "add", VIP.String()+"/32", "dev", "eth0")
	nsOut(t, topo.NS("dir1"), "ip", "addr", "add", VIP6.String()+"/128", "dev", "eth0", "nodad")
	rules := filepath.Join(t.TempDir(), "dr.nft")
	ruleset := `table bridge govs_dr {
    chain pre {
        type filter hook prerouting priority 0; policy accept;
        ether daddr ` + dir1 + ` ip daddr 198.18.0.100 tcp dport 80 ether daddr set ` + web2 + `
        ether daddr ` + dir1 + ` ip6 daddr 2001:db8:18::100 tcp dport 80 ether daddr set ` + web2 + `
        ether saddr ` + web2 + ` ip saddr 198.18.0.100 tcp sport 80 counter name direct_replies
        ether saddr ` + web2 + ` ip6 saddr 2001:db8:18::100 tcp sport 80 counter name direct_replies
    }
    counter direct_replies {
    }
}
`
	if err := os.WriteFile(rules, []byte(ruleset), 0o644); err != nil {
		t.Fatal(err)
	}
	nsOut(t, topo.NS("lan"), "nft", "-f", rules)

	for _, public := range []netip.Addr{PublicIP, PublicIP6} {
		for i := range 3 {
			body, err := Fetch(topo.NS("client"), public, Port, 3*time.Second)
			if err != nil || body != "web2\n" {
				t.Fatalf("request %d to %s: %q, %v", i, public, body, err)
			}
		}
	}
	for _, vip := range []netip.Addr{VIP, VIP6} {
		if out := nsOut(t, topo.NS("router"), "ip", "neigh", "show", vip.String()); !strings.Contains(out, dir1) {
			t.Errorf("router's neighbour entry for %s is not dir1 (%s): %q", vip, dir1, out)
		}
	}
	if out := nsOut(t, topo.NS("lan"), "nft", "list", "counter", "bridge", "govs_dr", "direct_replies"); !strings.Contains(out, "packets ") || strings.Contains(out, "packets 0 ") {
		t.Errorf("no reply went from web2 straight to the router:\n%s", out)
	}
}
