package director_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/netnstest"
)

// The ECMP scale-out test's addresses: the client on the public side of the
// router, the router's LAN address (the real servers' gateway), the VIP and
// the real servers.
const (
	ecmpVIP      = "198.18.9.100"
	ecmpClient   = "203.0.113.10"
	ecmpRouterIn = "198.18.7.1"
	ecmpConns    = 2000
	ecmpInterval = 200 * time.Millisecond
	// ecmpStall is how long an exchange may take before the connection
	// counts as broken.
	ecmpStall = 2 * time.Second
)

var ecmpReals = []string{"198.18.7.21", "198.18.7.22", "198.18.7.23"}

// ecmpUplink is director i's (1-based) point-to-point uplink: the router's
// end and the director's.
func ecmpUplink(i int) (router, director string) {
	return fmt.Sprintf("198.18.8.%d", 4*i+1), fmt.Sprintf("198.18.8.%d", 4*i+2)
}

// ecmpVariant is one way of running the directors.
type ecmpVariant struct {
	name string
	algo string
	// flag is a scheduler flag line (mh-port: hash the client's port too,
	// or every connection of the one client would go to one server).
	flag string
	sync bool
}

// ecmpStep is what one disruption did to the long-lived connections.
type ecmpStep struct {
	name string
	// alive is how many connections were working when the step began.
	alive int64
	// broken counts the connections the step broke, by how: reset (RST or
	// EOF), stall (no answer within ecmpStall), moved (another real server
	// answered); onRemoved those of them that were on a real server the
	// step removed (no balancer keeps those).
	reset, stall, moved, onRemoved atomic.Int64
	// longest is the longest exchange (send to answer) in nanoseconds.
	longest atomic.Int64
	// withdrawn is how long after the quorum loss the router's FIB
	// changed (quorum steps only).
	withdrawn time.Duration
}

func (s *ecmpStep) broken() int64 { return s.reset.Load() + s.stall.Load() + s.moved.Load() }

// ecmpLoad holds ecmpConns connections through the VIP, each asking its
// real server's name every ecmpInterval.
type ecmpLoad struct {
	mu      sync.Mutex
	steps   []*ecmpStep
	removed string // a real server's name the current step removes
	alive   atomic.Int64
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	// answered counts connections that have had their first answer.
	answered atomic.Int64
}

func (l *ecmpLoad) step() *ecmpStep {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.steps[len(l.steps)-1]
}

// begin starts a step: what breaks from now on is the step's.
func (l *ecmpLoad) begin(name, removed string) *ecmpStep {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &ecmpStep{name: name, alive: l.alive.Load()}
	l.steps = append(l.steps, s)
	l.removed = removed
	return s
}

func (l *ecmpLoad) broke(server string, how func(*ecmpStep) *atomic.Int64) {
	l.mu.Lock()
	s, removed := l.steps[len(l.steps)-1], l.removed
	l.mu.Unlock()
	how(s).Add(1)
	if server == removed {
		s.onRemoved.Add(1)
	}
	l.alive.Add(-1)
}

// startECMPLoad opens the connections from client and runs them until stop.
func startECMPLoad(t *testing.T, client *netnstest.NS) *ecmpLoad {
	t.Helper()
	l := &ecmpLoad{}
	l.begin("start", "")
	conns := make([]net.Conn, 0, ecmpConns)
	err := client.Do(func() error {
		d := net.Dialer{Timeout: 5 * time.Second}
		for range ecmpConns {
			c, err := d.Dial("tcp", ecmpVIP+":80")
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
		return nil
	})
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		t.Fatalf("open %d connections through the VIP: %v", ecmpConns, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.alive.Store(int64(len(conns)))
	l.steps[0].alive = int64(len(conns))
	for i, c := range conns {
		l.wg.Add(1)
		go l.run(ctx, c, time.Duration(i)*ecmpInterval/ecmpConns)
	}
	t.Cleanup(l.stop)
	return l
}

func (l *ecmpLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// run asks for the server's name every ecmpInterval until ctx ends or the
// connection breaks.
func (l *ecmpLoad) run(ctx context.Context, c net.Conn, offset time.Duration) {
	defer l.wg.Done()
	defer c.Close()
	r := bufio.NewReader(c)
	server := ""
	select {
	case <-ctx.Done():
		return
	case <-time.After(offset):
	}
	tick := time.NewTicker(ecmpInterval)
	defer tick.Stop()
	for {
		sent := time.Now()
		c.SetDeadline(sent.Add(ecmpStall))
		_, err := c.Write([]byte("name?\n"))
		var line string
		if err == nil {
			line, err = r.ReadString('\n')
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				l.broke(server, func(s *ecmpStep) *atomic.Int64 { return &s.stall })
			} else {
				l.broke(server, func(s *ecmpStep) *atomic.Int64 { return &s.reset })
			}
			return
		}
		took := time.Since(sent)
		s := l.step()
		for {
			old := s.longest.Load()
			if int64(took) <= old || s.longest.CompareAndSwap(old, int64(took)) {
				break
			}
		}
		line = strings.TrimSpace(line)
		switch {
		case server == "":
			server = line
			l.answered.Add(1)
		case line != server:
			l.broke(server, func(s *ecmpStep) *atomic.Int64 { return &s.moved })
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// echoName serves name+"\n" for every line a connection sends, on port 80
// of ns.
func echoName(t *testing.T, ns *netnstest.NS, name string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { mu.Lock(); delete(open, c); mu.Unlock(); c.Close() }()
				r := bufio.NewReader(io16k{c})
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := c.Write([]byte(name + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// io16k bounds what one line of a client may make the server buffer.
type io16k struct{ c net.Conn }

func (r io16k) Read(b []byte) (int, error) { return r.c.Read(b[:min(len(b), 16<<10)]) }

// ecmpLab is a router running BIRD 2 with multipath routes to the VIP over
// the directors that announce it, a client behind it, up to four
// directors each on its own point-to-point uplink and all on one LAN with
// three DR real servers.
type ecmpLab struct {
	t         *testing.T
	govs      string
	dir       string
	client    *netnstest.NS
	router    *netnstest.NS
	lan       *netnstest.NS
	directors []*netnstest.NS
	cmds      []*exec.Cmd
	birdSock  string

	mu sync.Mutex
	// quorumLost is when each director's (1-based) checks logged the
	// quorum loss, by its own log's clock; fib the router's changes
	// of the VIP's route, as `ip -ts monitor route` stamped them.
	quorumLost map[int]time.Time
	fib        []time.Time
}

// lineWriter passes a process's output to the test log a line at a time,
// and to fn.
type lineWriter struct {
	t      *testing.T
	prefix string
	fn     func(string)
	mu     sync.Mutex
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		w.t.Log(w.prefix + line)
		w.fn(line)
	}
}

// startWatched starts a long-running process in ns like NS.Start, with
// every line of its output also given to fn.
func startWatched(t *testing.T, ns *netnstest.NS, fn func(string), name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := ns.Command(name, args...)
	w := &lineWriter{t: t, prefix: ns.Name + " " + filepath.Base(name) + ": ", fn: fn}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", name, ns.Name, err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if cmd.ProcessState == nil {
			_ = cmd.Wait()
		}
	})
	return cmd
}

func newECMPLab(t *testing.T, govs, bird string) *ecmpLab {
	t.Helper()
	l := &ecmpLab{t: t, govs: govs, dir: t.TempDir(), quorumLost: map[int]time.Time{}}
	l.client, l.router, l.lan = netnstest.NewNS(t, "ecl"), netnstest.NewNS(t, "ert"), netnstest.NewNS(t, "elan")
	l.lan.Bridge("br0")
	netnstest.Veth(t, l.client, "eth0", l.router, "c0")
	l.client.Addr("eth0", ecmpClient+"/24")
	l.client.MustRun("ip", "route", "add", "default", "via", "203.0.113.1")
	// XDP rewrites do not finish a checksum left to the device.
	l.client.MustRun("ethtool", "-K", "eth0", "tx", "off")
	l.router.Addr("c0", "203.0.113.1/24")
	l.lan.Join(l.router, "pr", ecmpRouterIn+"/24")
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		// Spread flows by ports too (the default hashes addresses only).
		{"net.ipv4.fib_multipath_hash_policy", "1"},
		// A director's answers come back on the LAN, not its uplink.
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv4.conf.eth0.rp_filter", "0"},
		// A next hop whose link is down is not used, before BIRD says so.
		{"net.ipv4.conf.all.ignore_routes_with_linkdown", "1"},
		{"net.ipv4.conf.default.ignore_routes_with_linkdown", "1"},
	} {
		l.router.Sysctl(kv[0], kv[1])
	}
	var protos strings.Builder
	for i := 1; i <= 4; i++ {
		d := netnstest.NewNS(t, fmt.Sprintf("ed%d", i))
		rIP, dIP := ecmpUplink(i)
		netnstest.Veth(t, l.router, fmt.Sprintf("d%d", i), d, "up0")
		l.router.Addr(fmt.Sprintf("d%d", i), rIP+"/30")
		l.router.MustRun("ethtool", "-K", fmt.Sprintf("d%d", i), "tx", "off")
		d.Addr("up0", dIP+"/30")
		l.lan.Join(d, fmt.Sprintf("pd%d", i), fmt.Sprintf("198.18.7.%d/24", 10+i))
		// The director's redirect to the LAN is delivered by the bridge
		// port's NAPI (docs/dataplane.md).
		netnstest.AttachXDPPass(t, l.lan, fmt.Sprintf("pd%d", i))
		l.directors = append(l.directors, d)
		fmt.Fprintf(&protos, "protocol bgp d%d from director { neighbor %s as 65001; }\n", i, dIP)
	}
	for j, addr := range ecmpReals {
		r := netnstest.NewNS(t, fmt.Sprintf("ers%d", j+1))
		l.lan.Join(r, fmt.Sprintf("pw%d", j+1), addr+"/24")
		r.HoldVIP(ecmpVIP)
		r.MustRun("ip", "route", "add", "default", "via", ecmpRouterIn)
		r.MustRun("ethtool", "-K", "eth0", "tx", "off")
		echoName(t, r, fmt.Sprintf("rs%d", j+1))
	}
	conf := filepath.Join(l.dir, "bird.conf")
	l.birdSock = filepath.Join(l.dir, "bird.ctl")
	writeFile(t, conf, `router id 198.18.7.1;
protocol device { scan time 1; }
protocol kernel {
	ipv4 { import none; export all; };
	merge paths on;
}
template bgp director {
	local as 65000;
	hold time 3;
	keepalive time 1;
	connect retry time 1;
	error wait time 1, 2;
	check link yes;
	ipv4 { import all; export none; };
}
`+protos.String())
	startWatched(t, l.router, func(line string) {
		// [2026-12-02T07:59:28.892606] 198.18.9.100 nhid ... (local time)
		if !strings.Contains(line, ecmpVIP) || len(line) < 28 || line[0] != '[' {
			return
		}
		if at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", line[1:27], time.Local); err == nil {
			l.mu.Lock()
			l.fib = append(l.fib, at)
			l.mu.Unlock()
		}
	}, "ip", "-ts", "monitor", "route")
	l.router.Start(bird, "-f", "-c", conf, "-s", l.birdSock)
	l.cmds = make([]*exec.Cmd, 4)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := l.router.Run("birdc", "-s", l.birdSock, "show", "protocols")
			t.Logf("BIRD:\n%s\nroute: %s", out, l.route())
		}
	})
	return l
}

// config is director i's keepalived.conf with the given real servers.
func (l *ecmpLab) config(i int, v ecmpVariant, reals []string) string {
	rIP, dIP := ecmpUplink(i)
	var b strings.Builder
	fmt.Fprintf(&b, `global_defs {
    govs_xdp_interface up0
}
govs_bgp {
    router_id %s
    local_as 65001
    hold_down 0.5
`, dIP)
	if v.sync {
		b.WriteString("    connection_sync eth0\n    sync_wait 5\n")
	}
	fmt.Fprintf(&b, `    neighbor %s {
        remote_as 65000
        hold_time 3
        keepalive_interval 1
    }
}
virtual_server %s 80 {
    delay_loop 1
    lb_algo %s
    lb_kind DR
    protocol TCP
`, rIP, ecmpVIP, v.algo)
	if v.flag != "" {
		fmt.Fprintf(&b, "    %s\n", v.flag)
	}
	for _, r := range reals {
		fmt.Fprintf(&b, "    real_server %s 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n", r)
	}
	b.WriteString("}\n")
	return b.String()
}

func (l *ecmpLab) confPath(i int) string { return filepath.Join(l.dir, fmt.Sprintf("d%d.conf", i)) }
func (l *ecmpLab) sock(i int) string     { return filepath.Join(l.dir, fmt.Sprintf("d%d.sock", i)) }

// start runs govs on director i.
func (l *ecmpLab) start(i int, v ecmpVariant) {
	l.t.Helper()
	writeFile(l.t, l.confPath(i), l.config(i, v, ecmpReals))
	cmd := startWatched(l.t, l.directors[i-1], func(line string) {
		// time=2026-12-02T07:59:28.892Z level=INFO msg="lost quorum" component=check vs=...
		if !strings.Contains(line, `msg="lost quorum"`) {
			return
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			return
		}
		if at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time=")); err == nil {
			l.mu.Lock()
			if _, ok := l.quorumLost[i]; !ok {
				l.quorumLost[i] = at
			}
			l.mu.Unlock()
		}
	}, l.govs, "run", "-f", l.confPath(i), "--socket", l.sock(i))
	l.cmds[i-1] = cmd
}

// stopAll stops every running govs cleanly.
func (l *ecmpLab) stopAll() {
	for i, cmd := range l.cmds {
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		l.cmds[i] = nil
	}
}

// govsCtl runs a govs control command on director i.
func (l *ecmpLab) govsCtl(i int, args ...string) string {
	l.t.Helper()
	return l.directors[i-1].MustRun(l.govs, append(args, "--socket", l.sock(i))...)
}

// route is the router's kernel route to the VIP.
func (l *ecmpLab) route() string {
	out, _ := l.router.Run("ip", "route", "show", ecmpVIP)
	return out
}

// nextHops lists the directors (1-based) the router's route to the VIP
// goes through.
func (l *ecmpLab) nextHops() []int {
	r := l.route()
	var out []int
	for i := 1; i <= 4; i++ {
		if strings.Contains(r, fmt.Sprintf("dev d%d ", i)) || strings.HasSuffix(strings.TrimSpace(r), fmt.Sprintf("dev d%d", i)) {
			out = append(out, i)
		}
	}
	return out
}

func (l *ecmpLab) waitHops(what string, want ...int) {
	l.t.Helper()
	waitUntil(l.t, what, 60*time.Second, func() bool { return fmt.Sprint(l.nextHops()) == fmt.Sprint(want) })
}

// connections counts the entries of director i's connection table.
func (l *ecmpLab) connections(i int) int {
	out, err := l.directors[i-1].Run(l.govs, "list", "-c", "-n", "--socket", l.sock(i))
	if err != nil {
		return 0
	}
	return strings.Count(out, ecmpVIP+":80")
}

// TestPrivilegedECMPScaleOut: three directors announce the VIP to BIRD 2,
// whose multipath route (L4 hash) spreads 2,000 long-lived connections over
// them; each connection asks its real server's name every 200 ms. One
// after the other: a director is drained, it rejoins, another one's link
// goes down, a fourth director joins, and a real server is removed while a
// director is drained. Each step reports the connections it broke (reset,
// no answer within 2 s, or an answer from another real server) and the
// longest exchange. With govs's identical Maglev tables and the directors'
// shared connection table none may break; the baseline (rr, no sync: what
// plain ECMP in front of independent balancers gives) is reported beside it.
func TestPrivilegedECMPScaleOut(t *testing.T) {
	netnstest.RequireRoot(t)
	bird, err := exec.LookPath("bird")
	if err != nil {
		t.Skip("bird (Debian's bird2) is not installed")
	}
	govs := netnstest.BuildGovs(t)
	var report strings.Builder
	results := map[string][]*ecmpStep{}
	variants := []ecmpVariant{
		{"govs (mh, connection_sync)", "mh", "mh-port", true},
		{"Maglev alone (mh, no sync)", "mh", "mh-port", false},
		{"baseline (rr, no sync)", "rr", "", false},
	}
	for _, v := range variants {
		t.Run(strings.Fields(v.name)[0], func(t *testing.T) { results[v.name] = runECMP(t, govs, bird, v) })
	}
	fmt.Fprintf(&report, "%d long-lived connections, one exchange every %v; broken = reset + no answer in %v + another server answered\n",
		ecmpConns, ecmpInterval, ecmpStall)
	fmt.Fprintf(&report, "%-28s %-34s %6s %6s %6s %6s %6s %10s %9s\n", "variant", "step", "alive", "broken", "reset", "stall", "moved", "on-removed", "longest")
	for _, v := range variants {
		for _, s := range results[v.name] {
			fmt.Fprintf(&report, "%-28s %-34s %6d %6d %6d %6d %6d %10d %9v\n", v.name, s.name, s.alive, s.broken(),
				s.reset.Load(), s.stall.Load(), s.moved.Load(), s.onRemoved.Load(), time.Duration(s.longest.Load()).Round(time.Millisecond))
		}
	}
	for _, v := range variants {
		for _, s := range results[v.name] {
			if s.withdrawn != 0 {
				fmt.Fprintf(&report, "%s: the withdrawal reached the router's FIB %v after director 4 lost quorum\n", v.name, s.withdrawn.Round(time.Millisecond))
				// A regression (update batching, a timer in the path) shows
				// as seconds; the measured value is in the report.
				if s.withdrawn > time.Second {
					t.Errorf("%s: withdrawal reached the FIB %v after quorum loss", v.name, s.withdrawn)
				}
			}
		}
	}
	t.Log("\n" + report.String())
	dir := os.Getenv("GOVS_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "govs-artefacts")
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "ecmp-scale-out.txt"), []byte(report.String()), 0o644)
	}
	// The targets hold for govs; the baseline only shows what they are
	// measured against.
	for _, s := range results[variants[0].name] {
		limit := int64(0)
		if strings.HasPrefix(s.name, "remove") {
			// At most 1 in 1,000 of the connections that were not on the
			// removed server.
			limit = (s.alive - s.onRemoved.Load()) / 1000
		}
		if b := s.broken() - s.onRemoved.Load(); b > limit {
			t.Errorf("%s: %d connections broken (not counting %d on the removed server), want at most %d",
				s.name, b, s.onRemoved.Load(), limit)
		}
	}
}

// runECMP runs the steps with the directors set up as v says.
func runECMP(t *testing.T, govs, bird string, v ecmpVariant) []*ecmpStep {
	lab := newECMPLab(t, govs, bird)
	for i := 1; i <= 3; i++ {
		lab.start(i, v)
	}
	t.Cleanup(lab.stopAll)
	lab.waitHops("the router to route the VIP over the three directors", 1, 2, 3)
	load := startECMPLoad(t, lab.client)
	waitUntil(t, "every connection to have an answer", 30*time.Second, func() bool {
		return load.answered.Load()+int64(ecmpConns)-load.alive.Load() >= ecmpConns
	})
	if v.sync {
		// Each director holds the group's connections before anything
		// moves them.
		for i := 1; i <= 3; i++ {
			waitUntil(t, fmt.Sprintf("director %d to know every connection", i), 30*time.Second, func() bool {
				return lab.connections(i) >= ecmpConns
			})
		}
	}
	// observe lets the connections run through a step's aftermath: two
	// stall bounds after the router's route settled.
	observe := func() { time.Sleep(2 * ecmpStall) }

	lab.begin(load, "drain director 1", "")
	lab.govsCtl(1, "bgp", "drain")
	lab.waitHops("director 1 drained", 2, 3)
	observe()

	lab.begin(load, "director 1 rejoins", "")
	lab.govsCtl(1, "bgp", "undrain")
	lab.waitHops("director 1 back", 1, 2, 3)
	observe()

	lab.begin(load, "director 2's link goes down", "")
	lab.directors[1].MustRun("ip", "link", "set", "up0", "down")
	lab.waitHops("director 2 gone", 1, 3)
	observe()

	lab.begin(load, "director 4 joins", "")
	lab.start(4, v)
	lab.waitHops("director 4 in", 1, 3, 4)
	if v.sync {
		// It announced only with the group's connections in its table
		// (the dump is asked once its real servers are resolved).
		if n := lab.connections(4); n < int(load.alive.Load()) {
			t.Errorf("director 4 announced with %d of %d connections", n, load.alive.Load())
		}
	}
	observe()

	lab.begin(load, "remove rs3, drain director 3", "rs3")
	for i := 1; i <= 4; i++ {
		writeFile(t, lab.confPath(i), lab.config(i, v, ecmpReals[:2]))
		if cmd := lab.cmds[i-1]; cmd != nil {
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
	}
	lab.govsCtl(3, "bgp", "drain")
	lab.waitHops("director 3 drained", 1, 4)
	observe()

	// Director 4's checks fail (its own probes are refused; what it
	// forwards never meets netfilter): quorum is lost, the VIP withdrawn.
	lab.begin(load, "director 4 loses quorum", "")
	d4 := lab.directors[3]
	d4.MustRun("nft", "add table inet govs_test")
	d4.MustRun("nft", "add chain inet govs_test out { type filter hook output priority 0 ; }")
	d4.MustRun("nft", "add rule inet govs_test out tcp dport 80 reject with tcp reset")
	lab.waitHops("director 4 withdrawn", 1)
	var withdrawn time.Duration
	waitUntil(t, "director 4 to log the quorum loss and the router's FIB to change after it", 10*time.Second, func() bool {
		lab.mu.Lock()
		defer lab.mu.Unlock()
		lost, ok := lab.quorumLost[4]
		if !ok {
			return false
		}
		for _, at := range lab.fib {
			if !at.Before(lost.Truncate(time.Millisecond)) {
				withdrawn = at.Sub(lost)
				return true
			}
		}
		return false
	})
	load.step().withdrawn = withdrawn
	observe()
	load.stop()
	load.mu.Lock()
	defer load.mu.Unlock()
	return load.steps
}

// begin starts a step of the load (a method of the lab so the steps read
// in order).
func (l *ecmpLab) begin(load *ecmpLoad, name, removed string) { load.begin(name, removed) }
