// Command http is the HTTP-level benchmark: wrk in a client namespace
// against two nginx web servers, directly, through govs's data plane in DR
// mode (the scenario), and through HAProxy in mode tcp on the same
// director, for keep-alive and Connection: close. It prints requests per
// second, p50 and p99 latency, and the director's CPU per request: the
// balancer program's run time (bpf_stats) for govs, the haproxy process's
// user + system time for HAProxy. Both leave out the softirq work around
// them (the veth's receive path), which is the same kind of work for each;
// HAProxy's socket work in softirq is therefore not counted, which favours
// HAProxy.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/govs/govs/bench/benchns"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/lab"
	"github.com/govs/govs/internal/sched"
)

const (
	prefix     = "govs-bhttp-"
	clientIP   = "198.18.6.10"
	directorIP = "198.18.6.1"
	vip        = "198.18.6.100"
	proxyPort  = 8080
)

var webIPs = []string{"198.18.6.21", "198.18.6.22"}

type options struct {
	duration    time.Duration
	connections int
	threads     int
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "wrk run time per case (at most 60s)")
	flag.IntVar(&o.connections, "connections", 32, "wrk connections")
	flag.IntVar(&o.threads, "threads", 1, "wrk threads")
	flag.Parse()
	if o.duration <= 0 || o.duration > time.Minute || o.connections < 1 || o.connections > 1000 || o.threads < 1 || o.threads > 16 {
		fmt.Fprintln(os.Stderr, "bench-http: -duration in (0, 60s], -connections in [1, 1000], -threads in [1, 16]")
		os.Exit(2)
	}
	b := &bench{opts: o, out: os.Stdout}
	err := b.run()
	b.cleanup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-http: %v\n", err)
		os.Exit(1)
	}
}

type bench struct {
	opts    options
	out     io.Writer
	dir     string
	closers []func()
}

func (b *bench) cleanup() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

func ns(role string) string { return prefix + role }

// topology: one LAN bridge; client, director and the web servers on it.
func (b *bench) topology() error {
	roles := []string{"lan", "client", "dir", "web1", "web2"}
	for _, r := range roles {
		n := ns(r)
		_ = benchns.Sh("ip", "netns", "del", n) // left over from an interrupted run
		if err := benchns.Sh("ip", "netns", "add", n); err != nil {
			return err
		}
		b.closers = append(b.closers, func() { _ = benchns.Sh("ip", "netns", "del", n) })
		if err := benchns.NSSh(n, "ip", "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	if err := benchns.NSSh(ns("lan"), "ip", "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := benchns.NSSh(ns("lan"), "ip", "link", "set", "br0", "up"); err != nil {
		return err
	}
	addrs := map[string]string{"client": clientIP, "dir": directorIP, "web1": webIPs[0], "web2": webIPs[1]}
	for _, r := range roles[1:] {
		cmds := [][]string{
			{"ip", "link", "add", r, "netns", ns("lan"), "type", "veth", "peer", "name", "eth0", "netns", ns(r)},
		}
		for _, c := range cmds {
			if err := benchns.Sh(c...); err != nil {
				return err
			}
		}
		for _, c := range [][]string{
			{"ip", "link", "set", r, "master", "br0"},
			{"ip", "link", "set", r, "up"},
		} {
			if err := benchns.NSSh(ns("lan"), c...); err != nil {
				return err
			}
		}
		for _, c := range [][]string{
			{"ip", "addr", "add", addrs[r] + "/24", "dev", "eth0"},
			{"ip", "link", "set", "eth0", "up"},
			// XDP_TX forwards the client's frames as they came: their
			// checksums must be complete (docs/dataplane.md, veth notes).
			{"ethtool", "-K", "eth0", "tx", "off"},
		} {
			if err := benchns.NSSh(ns(r), c...); err != nil {
				return err
			}
		}
	}
	// The director's XDP_TX frames arrive on its bridge port, which needs
	// a NAPI context of its own to deliver them: an XDP_PASS program.
	if err := benchns.In(ns("lan"), func() error { return lab.AttachXDPPass("dir") }); err != nil {
		return fmt.Errorf("XDP pass program on the director's port: %w", err)
	}
	// The director answers ARP for the VIP; its XDP program takes the
	// service's packets before the stack does.
	if err := benchns.NSSh(ns("dir"), "ip", "addr", "add", vip+"/32", "dev", "eth0"); err != nil {
		return err
	}
	for _, w := range []string{"web1", "web2"} {
		for _, c := range [][]string{
			{"ip", "addr", "add", vip + "/32", "dev", "lo"},
			{"sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
				"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2"},
		} {
			if err := benchns.NSSh(ns(w), c...); err != nil {
				return err
			}
		}
	}
	return nil
}

// start runs argv in namespace role until cleanup.
func (b *bench) start(role string, argv ...string) (*exec.Cmd, error) {
	log, err := os.Create(filepath.Join(b.dir, role+"-"+filepath.Base(argv[0])+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns(role)}, argv...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s in %s: %w", argv[0], role, err)
	}
	b.closers = append(b.closers, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	return cmd, nil
}

// waitListening waits until addr accepts connections from the client.
func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := benchns.In(ns("client"), func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type result struct {
	name     string
	rps      float64
	p50, p99 time.Duration
	cpuPerRq time.Duration // -1: not measured
	requests float64
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	pctRE = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	reqRE = regexp.MustCompile(`(\d+) requests in`)
)

// wrk runs wrk from the client against url and parses its report.
func (b *bench) wrk(url string, closeConns bool) (result, error) {
	args := []string{"netns", "exec", ns("client"), "wrk", "--latency", "-t", strconv.Itoa(b.opts.threads),
		"-c", strconv.Itoa(b.opts.connections), "-d", fmt.Sprintf("%ds", int(b.opts.duration.Seconds()+0.5)), "--timeout", "5s"}
	if closeConns {
		args = append(args, "-H", "Connection: close")
	}
	out, err := exec.Command("ip", append(args, url)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %w: %s", url, err, out)
	}
	var r result
	if m := rpsRE.FindSubmatch(out); m != nil {
		r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := reqRE.FindSubmatch(out); m != nil {
		r.requests, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	for _, m := range pctRE.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(m[3])]
		d := time.Duration(v * float64(unit))
		if string(m[1]) == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.rps == 0 || r.p99 == 0 {
		return r, fmt.Errorf("wrk %s: no rate or latency in its report:\n%s", url, out)
	}
	if strings.Contains(string(out), "Socket errors") || strings.Contains(string(out), "Non-2xx") {
		fmt.Fprintf(b.out, "note: wrk %s reported errors:\n%s\n", url, out)
	}
	return r, nil
}

// procCPU is a process's user + system time.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	const hz = 100 // USER_HZ
	return time.Duration(ut+st) * time.Second / hz, nil
}

// haproxyPID is the haproxy process in the director namespace.
func haproxyPID(cmd *exec.Cmd) (int, error) {
	// ip netns exec execs haproxy in place: the PID is haproxy's.
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(string(comm)) != "haproxy" {
		return 0, fmt.Errorf("pid %d is %q, not haproxy", cmd.Process.Pid, strings.TrimSpace(string(comm)))
	}
	return cmd.Process.Pid, nil
}

// xdpRuntime is the run time bpf_stats counted for the balancer program.
func xdpRuntime() (time.Duration, error) {
	var id ebpf.ProgramID
	var total time.Duration
	found := false
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		if err != nil || info.Name != "govs_xdp" {
			p.Close()
			continue
		}
		st, err := p.Stats()
		p.Close()
		if err == nil {
			total += st.Runtime
			found = true
		}
	}
	if !found {
		return 0, errors.New("no govs_xdp program with run-time statistics")
	}
	return total, nil
}

func macOf(role string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := benchns.In(ns(role), func() error {
		l, err := netlink.LinkByName("eth0")
		if err == nil {
			mac = l.Attrs().HardwareAddr
		}
		return err
	})
	return mac, err
}

func (b *bench) run() error {
	dir, err := os.MkdirTemp("", "govs-bench-http-")
	if err != nil {
		return err
	}
	b.dir = dir
	b.closers = append(b.closers, func() { _ = os.RemoveAll(dir) })
	if err := b.topology(); err != nil {
		return err
	}
	for i, w := range []string{"web1", "web2"} {
		conf := filepath.Join(dir, w+"-nginx.conf")
		if err := os.MkdirAll(filepath.Join(dir, w+"-nginx-tmp"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(conf, []byte(lab.NginxConf(w, dir)), 0o644); err != nil {
			return err
		}
		if _, err := b.start(w, "nginx", "-c", conf); err != nil {
			return err
		}
		if err := waitListening(webIPs[i] + ":80"); err != nil {
			return err
		}
	}
	hcfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(hcfg, fmt.Appendf(nil, `global
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind %s:%d
    default_backend webs
backend webs
    balance roundrobin
    server web1 %s:80
    server web2 %s:80
`, directorIP, proxyPort, webIPs[0], webIPs[1]), 0o644); err != nil {
		return err
	}
	hap, err := b.start("dir", "haproxy", "-db", "-f", hcfg)
	if err != nil {
		return err
	}
	if err := waitListening(fmt.Sprintf("%s:%d", directorIP, proxyPort)); err != nil {
		return err
	}
	hpid, err := haproxyPID(hap)
	if err != nil {
		return err
	}

	// govs: the data plane alone, DR over both web servers.
	dp, err := dataplane.Open(dataplane.Options{})
	if err != nil {
		return err
	}
	defer dp.Close()
	var dirIfindex int
	if err := benchns.In(ns("dir"), func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		dirIfindex = l.Attrs().Index
		var reals []dataplane.Real
		for i, w := range []string{"web1", "web2"} {
			mac, err := macOf(w)
			if err != nil {
				return err
			}
			reals = append(reals, dataplane.Real{Addr: netip.MustParseAddr(webIPs[i]), Weight: 1, MAC: mac, Ifindex: dirIfindex})
		}
		if err := dp.Attach(dirIfindex, dataplane.Native); err != nil {
			return err
		}
		return dp.Apply(dataplane.State{Services: []dataplane.Service{{
			Addr: netip.MustParseAddr(vip), Port: 80, Protocol: dataplane.TCP, Scheduler: sched.Maglev, Reals: reals,
		}}})
	}); err != nil {
		return fmt.Errorf("set up govs: %w", err)
	}
	b.closers = append(b.closers, func() { _ = dp.Detach(dirIfindex) })
	if err := waitListening(vip + ":80"); err != nil {
		return err
	}
	// bpf_stats: the kernel counts each program's run time while enabled.
	prev, _ := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	if err := os.WriteFile("/proc/sys/kernel/bpf_stats_enabled", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable bpf_stats: %w", err)
	}
	b.closers = append(b.closers, func() { _ = os.WriteFile("/proc/sys/kernel/bpf_stats_enabled", prev, 0o644) })

	fmt.Fprintf(b.out, "govs HTTP benchmark: wrk -t%d -c%d for %s per case, 2 nginx web servers, director in DR (govs) or mode tcp (HAProxy)\n\n",
		b.opts.threads, b.opts.connections, b.opts.duration)
	for _, closeConns := range []bool{false, true} {
		mode := "keep-alive"
		if closeConns {
			mode = "Connection: close"
		}
		direct, err := b.wrk("http://"+webIPs[0]+"/", closeConns)
		if err != nil {
			return err
		}
		direct.name, direct.cpuPerRq = "direct (web1)", -1

		rt0, err := xdpRuntime()
		if err != nil {
			return err
		}
		viaGovs, err := b.wrk("http://"+vip+"/", closeConns)
		if err != nil {
			return err
		}
		rt1, err := xdpRuntime()
		if err != nil {
			return err
		}
		viaGovs.name = "govs DR"
		viaGovs.cpuPerRq = time.Duration(float64(rt1-rt0) / viaGovs.requests)

		c0, err := procCPU(hpid)
		if err != nil {
			return err
		}
		viaProxy, err := b.wrk(fmt.Sprintf("http://%s:%d/", directorIP, proxyPort), closeConns)
		if err != nil {
			return err
		}
		c1, err := procCPU(hpid)
		if err != nil {
			return err
		}
		viaProxy.name = "HAProxy mode tcp"
		viaProxy.cpuPerRq = time.Duration(float64(c1-c0) / viaProxy.requests)

		fmt.Fprintf(b.out, "%s\n%-18s %10s %10s %10s %16s\n", mode, "path", "req/s", "p50", "p99", "director CPU/req")
		for _, r := range []result{direct, viaGovs, viaProxy} {
			cpu := "-"
			if r.cpuPerRq >= 0 {
				cpu = r.cpuPerRq.String()
			}
			fmt.Fprintf(b.out, "%-18s %10.0f %10s %10s %16s\n", r.name, r.rps, r.p50, r.p99, cpu)
		}
		ratio := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
		cpuRatio := "n/a (HAProxy's time below the clock tick)"
		if viaProxy.cpuPerRq > 0 {
			cpuRatio = fmt.Sprintf("%.3fx", ratio(viaGovs.cpuPerRq, viaProxy.cpuPerRq))
		}
		fmt.Fprintf(b.out, "govs / direct: req/s %.2fx, p99 %.2fx;  govs / HAProxy: req/s %.2fx, p99 %.2fx, director CPU per request %s\n\n",
			viaGovs.rps/direct.rps, ratio(viaGovs.p99, direct.p99), viaGovs.rps/viaProxy.rps, ratio(viaGovs.p99, viaProxy.p99), cpuRatio)
	}
	return nil
}
