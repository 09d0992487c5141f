package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/govs/govs/internal/realserver"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
)

// Web server kinds.
const (
	WebAuto    = "auto"    // nginx when installed, else builtin
	WebNginx   = "nginx"   // Debian's nginx
	WebBuiltin = "builtin" // govs lab webserver
)

// Options configures Up.
type Options struct {
	Name string
	// Webs is the number of web servers (default 2).
	Webs int
	// StateDir holds the state file and generated files; default
	// DefaultStateRoot/<name>.
	StateDir string
	// WebServer is WebAuto, WebNginx or WebBuiltin.
	WebServer string
	// Mode is ModeDR (default) or ModeNAT.
	Mode string
	// Directors, BGP and Resilient are Topology's.
	Directors      int
	BGP, Resilient bool
	// Govs is the govs binary, for the builtin web server and DirectorCmd;
	// default the running executable.
	Govs string
	// DirectorCmd, when set, is started in each director namespace, with
	// "{conf}" replaced by the director's generated keepalived.conf and
	// "{govs}" by the govs binary, "{dir}" by the director's name (dir1)
	// and "{state}" by the lab's state directory
	// (e.g. {govs} run -f {conf} --socket {state}/{dir}.sock).
	DirectorCmd []string
	// BeforeStep is called before each step of Up with the step's name; an
	// error aborts Up (which then removes what it made). For tests and hooks.
	BeforeStep func(step string) error
	Log        *slog.Logger
}

func (o *Options) defaults() {
	if o.Webs == 0 {
		o.Webs = 2
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(DefaultStateRoot, o.Name)
	}
	if o.WebServer == "" {
		o.WebServer = WebAuto
	}
	if o.Mode == "" {
		o.Mode = ModeDR
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// StateDirFor returns the state directory of lab name given a flag value
// (empty: the default).
func StateDirFor(name, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return filepath.Join(DefaultStateRoot, name)
}

type builder struct {
	opts  Options
	topo  Topology
	state *State
}

// Up builds the lab. On failure it removes everything it made.
func Up(opts Options) (*State, error) {
	opts.defaults()
	topo := Topology{Name: opts.Name, Webs: opts.Webs, Mode: opts.Mode, Directors: opts.Directors, BGP: opts.BGP, Resilient: opts.Resilient}
	if err := topo.Validate(); err != nil {
		return nil, err
	}
	if topo.BGP {
		if _, err := exec.LookPath("bird"); err != nil {
			return nil, errors.New("lab up: --bgp needs BIRD 2 on the router (Debian: apt-get install bird2)")
		}
	}
	if existing, err := ExistingNamespaces(topo.Name); err != nil {
		return nil, err
	} else if len(existing) > 0 {
		return nil, fmt.Errorf("lab up: lab %q exists (%s); run lab down first", topo.Name, strings.Join(existing, ", "))
	}
	switch opts.WebServer {
	case WebAuto:
		opts.WebServer = WebBuiltin
		if _, err := exec.LookPath("nginx"); err == nil {
			opts.WebServer = WebNginx
		}
	case WebNginx, WebBuiltin:
	default:
		return nil, fmt.Errorf("lab up: web server %q is not auto, nginx or builtin", opts.WebServer)
	}
	if opts.Govs == "" && (opts.WebServer == WebBuiltin || len(opts.DirectorCmd) > 0 || opts.Resilient) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("lab up: find govs binary: %w", err)
		}
		opts.Govs = exe
	}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab up: create state dir: %w", err)
	}
	b := &builder{opts: opts, topo: topo, state: &State{Name: topo.Name, Webs: topo.Webs, WebServer: opts.WebServer, Mode: opts.Mode,
		Directors: topo.Directors, BGP: topo.BGP, Resilient: topo.Resilient, Files: map[string]string{}}}
	if err := b.build(); err != nil {
		if derr := Down(topo.Name, opts.StateDir, opts.Log); derr != nil {
			err = errors.Join(err, fmt.Errorf("clean up failed lab: %w", derr))
		}
		return nil, fmt.Errorf("lab up: %w", err)
	}
	return b.state, nil
}

func (b *builder) step(name string) error {
	b.opts.Log.Info("lab up", "lab", b.topo.Name, "step", name)
	if b.opts.BeforeStep != nil {
		if err := b.opts.BeforeStep(name); err != nil {
			return fmt.Errorf("step %s: %w", name, err)
		}
	}
	return nil
}

func (b *builder) save() error { return saveState(b.opts.StateDir, b.state) }

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsRun runs a command inside namespace ns.
func nsRun(ns string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func (b *builder) build() error {
	t := b.topo
	if err := b.save(); err != nil {
		return err
	}
	for _, role := range t.Roles() {
		if err := b.step("namespace " + role); err != nil {
			return err
		}
		ns := t.NS(role)
		if err := run("ip", "netns", "add", ns); err != nil {
			return err
		}
		b.state.Namespaces = append(b.state.Namespaces, ns)
		if err := b.save(); err != nil {
			return err
		}
		// rp_filter off before any interface exists, so every interface
		// inherits it from "default": DR replies take an asymmetric path.
		for _, cmd := range [][]string{
			{"ip", "link", "set", "lo", "up"},
			{"sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
				// No duplicate address detection: the lab's addresses are
				// unique by construction, and DAD would delay them by seconds.
				"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
		} {
			if err := nsRun(ns, cmd...); err != nil {
				return err
			}
		}
	}

	if err := b.step("lan bridge"); err != nil {
		return err
	}
	lan := t.NS("lan")
	if err := nsRun(lan, "ip", "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := nsRun(lan, "ip", "link", "set", "br0", "up"); err != nil {
		return err
	}
	for _, role := range t.LANRoles() {
		if err := b.step("lan port " + role); err != nil {
			return err
		}
		dev := "eth0"
		if role == "router" {
			dev = "lan0"
		}
		if err := b.veth(lan, role, t.NS(role), dev); err != nil {
			return err
		}
		if err := nsRun(lan, "ip", "link", "set", role, "master", "br0"); err != nil {
			return err
		}
		if strings.HasPrefix(role, "dir") {
			// The director's XDP_TX frames arrive on this end; a veth
			// delivers them only when it has a NAPI context of its own,
			// which an XDP program gives it (GRO alone does not, on this
			// kernel: frames then wait for unrelated traffic to be polled).
			if err := inNS(lan, func() error { return AttachXDPPass(role) }); err != nil {
				return fmt.Errorf("XDP pass program on %s: %w", role, err)
			}
		}
		addr, _ := t.LANAddr(role)
		addr6, _ := t.LANAddr6(role)
		if err := addAddrs(t.NS(role), dev, netip.PrefixFrom(addr, LANNet.Bits()), netip.PrefixFrom(addr6, LANNet6.Bits())); err != nil {
			return err
		}
		switch {
		case role == "router":
		case t.NAT() && strings.HasPrefix(role, "web"):
			// NAT: replies must cross the master director.
			if err := defaultRoutes(t.NS(role), GatewayVIP, GatewayVIP6); err != nil {
				return err
			}
		default:
			if err := defaultRoutes(t.NS(role), RouterLAN, RouterLAN6); err != nil {
				return err
			}
		}
	}

	if err := b.step("public link"); err != nil {
		return err
	}
	if err := b.veth(t.NS("client"), "eth0", t.NS("router"), "pub0"); err != nil {
		return err
	}
	if err := addAddrs(t.NS("client"), "eth0", netip.PrefixFrom(ClientIP, PublicNet.Bits()), netip.PrefixFrom(ClientIP6, PublicNet6.Bits())); err != nil {
		return err
	}
	if err := defaultRoutes(t.NS("client"), PublicIP, PublicIP6); err != nil {
		return err
	}
	if err := addAddrs(t.NS("router"), "pub0", netip.PrefixFrom(PublicIP, PublicNet.Bits()), netip.PrefixFrom(PublicIP6, PublicNet6.Bits())); err != nil {
		return err
	}

	if err := b.step("router"); err != nil {
		return err
	}
	if err := nsRun(t.NS("router"), "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
		return err
	}
	rules := filepath.Join(b.opts.StateDir, "router.nft")
	if err := os.WriteFile(rules, []byte(NftRuleset(NftTable)), 0o644); err != nil {
		return fmt.Errorf("write router rules: %w", err)
	}
	b.state.Files["router"] = rules
	if err := nsRun(t.NS("router"), "nft", "-f", rules); err != nil {
		return err
	}
	if t.BGP {
		if err := b.step("router BGP"); err != nil {
			return err
		}
		if err := b.routerBGP(); err != nil {
			return err
		}
	}

	for _, d := range t.DirectorRoles() {
		if err := b.step("director " + d); err != nil {
			return err
		}
		if err := nsRun(t.NS(d), "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
			return err
		}
		conf, err := t.KeepalivedConf(d)
		if err != nil {
			return err
		}
		path := filepath.Join(b.opts.StateDir, d+"-keepalived.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return fmt.Errorf("write keepalived.conf: %w", err)
		}
		b.state.Files[d] = path
		if err := b.save(); err != nil {
			return err
		}
		if len(b.opts.DirectorCmd) > 0 {
			argv := make([]string, len(b.opts.DirectorCmd))
			for i, a := range b.opts.DirectorCmd {
				argv[i] = strings.NewReplacer("{conf}", path, "{govs}", b.opts.Govs, "{dir}", d, "{state}", filepath.Dir(path)).Replace(a)
			}
			// The marker must survive in /proc/PID/cmdline: the conf path
			// when the command names it, else the whole command.
			marker := path
			if !strings.Contains(strings.Join(argv, " "), path) {
				marker = strings.Join(argv, " ")
			}
			if err := b.start(d, marker, argv); err != nil {
				return err
			}
		}
	}

	for _, w := range t.WebRoles() {
		if err := b.step("web server " + w); err != nil {
			return err
		}
		if err := b.web(w); err != nil {
			return err
		}
	}
	for _, w := range t.WebRoles() {
		if err := waitListening(t.NS(w), 5*time.Second); err != nil {
			return fmt.Errorf("web server %s: %w", w, err)
		}
	}
	return nil
}

// addAddrs adds prefixes to dev in ns.
func addAddrs(ns, dev string, prefixes ...netip.Prefix) error {
	for _, p := range prefixes {
		if err := nsRun(ns, "ip", "addr", "add", p.String(), "dev", dev); err != nil {
			return err
		}
	}
	return nil
}

// defaultRoutes sets the IPv4 and IPv6 default routes of ns.
func defaultRoutes(ns string, gw4, gw6 netip.Addr) error {
	if err := nsRun(ns, "ip", "route", "add", "default", "via", gw4.String()); err != nil {
		return err
	}
	return nsRun(ns, "ip", "-6", "route", "add", "default", "via", gw6.String())
}

// veth connects aDev in namespace a with bDev in namespace b, created inside
// the namespaces (the host's own namespace is never touched), and applies
// the settings an XDP data plane on veths needs: TX checksum offload off
// (veth hands on partial checksums that XDP_TX would leave unfinished) and
// GRO on (a veth receiving XDP_TX/redirected frames needs a NAPI context).
func (b *builder) veth(a, aDev, bNS, bDev string) error {
	if err := run("ip", "-n", a, "link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", bNS); err != nil {
		return err
	}
	for _, end := range [][2]string{{a, aDev}, {bNS, bDev}} {
		if err := nsRun(end[0], "ethtool", "-K", end[1], "tx", "off", "gro", "on"); err != nil {
			return err
		}
		if err := nsRun(end[0], "ip", "link", "set", end[1], "up"); err != nil {
			return err
		}
	}
	return nil
}

// AttachXDPPass attaches a program that passes every frame to dev, through
// netlink so that it stays when this process exits (a bpf_link would not).
func AttachXDPPass(dev string) error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "govs_lab_pass",
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()},
	})
	if err != nil {
		return fmt.Errorf("load XDP pass program: %w", err)
	}
	defer prog.Close()
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return err
	}
	return netlink.LinkSetXdpFdWithFlags(l, prog.FD(), nl.XDP_FLAGS_DRV_MODE)
}

// web prepares web server role as a DR real server and starts its HTTP server.
func (b *builder) web(role string) error {
	ns := b.topo.NS(role)
	rsState := filepath.Join(b.opts.StateDir, role+"-realserver.json")
	// A NAT or FullNAT real server holds no VIP (a NAT one's default
	// route is set already).
	if !b.topo.NAT() && !b.topo.FNAT() {
		if err := inNS(ns, func() error {
			h, err := realserver.NewLinuxHost()
			if err != nil {
				return err
			}
			defer h.Close()
			m := &realserver.Manager{Host: h, StatePath: rsState}
			vips := []realserver.VIP{{Addr: VIP, Mode: realserver.ModeDR}, {Addr: VIP6, Mode: realserver.ModeDR}}
			if b.topo.Mode == ModeTUN || b.topo.Mode == ModeGUE {
				// govs's XDP decapsulation on the LAN interface, whether
				// or not the kernel has ipip (docs/realserver.md).
				for i := range vips {
					vips[i].Mode, vips[i].Decap = realserver.ModeTUN, "eth0"
					if b.topo.Mode == ModeGUE {
						vips[i].GUEPort = GUEPort
					}
				}
			}
			_, err = m.Up(vips)
			return err
		}); err != nil {
			return fmt.Errorf("prepare real server %s: %w", role, err)
		}
	}
	switch b.opts.WebServer {
	case WebNginx:
		conf := filepath.Join(b.opts.StateDir, role+"-nginx.conf")
		if err := os.MkdirAll(filepath.Join(b.opts.StateDir, role+"-nginx-tmp"), 0o755); err != nil {
			return fmt.Errorf("create nginx temp dir: %w", err)
		}
		if err := os.WriteFile(conf, []byte(NginxConf(role, b.opts.StateDir)), 0o644); err != nil {
			return fmt.Errorf("write nginx.conf: %w", err)
		}
		b.state.Files[role] = conf
		return b.start(role, conf, []string{"nginx", "-c", conf})
	default:
		marker := "--state-dir=" + b.opts.StateDir
		return b.start(role, marker, []string{b.opts.Govs, "lab", "webserver", "--name", role, "--listen", fmt.Sprintf(":%d", Port), marker})
	}
}

// start starts argv in role's namespace as its own session (it outlives
// govs lab up) and records its PID.
func (b *builder) start(role, marker string, argv []string) error {
	return b.startIn(role, role, marker, argv)
}

// startIn starts process role in namespace nsRole's namespace.
func (b *builder) startIn(nsRole, role, marker string, argv []string) error {
	p, err := startProcess(b.topo.NS(nsRole), b.opts.StateDir, role, marker, argv)
	if err != nil {
		return err
	}
	if nsRole != role {
		p.NSRole = nsRole
	}
	b.state.Processes = append(b.state.Processes, p)
	return b.save()
}

// routerBGP makes the router a BGP router: BIRD peering with every
// director, flows hashed over the multipath routes by their ports, and in
// the resilient mode govs lab nexthops turning BIRD's routes into
// resilient nexthop groups.
func (b *builder) routerBGP() error {
	t, ns := b.topo, b.topo.NS("router")
	if err := nsRun(ns, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"); err != nil {
		return err
	}
	conf := filepath.Join(b.opts.StateDir, "router-bird.conf")
	if err := os.WriteFile(conf, []byte(t.BirdConf()), 0o644); err != nil {
		return fmt.Errorf("write bird.conf: %w", err)
	}
	b.state.Files["bird"] = conf
	if err := b.startIn("router", "bird", conf, []string{"bird", "-f", "-c", conf, "-s", BirdSocket(b.opts.StateDir)}); err != nil {
		return err
	}
	if t.Resilient {
		marker := "--state-dir=" + b.opts.StateDir
		if err := b.startIn("router", "nexthops", marker, []string{b.opts.Govs, "lab", "nexthops", "--table", strconv.Itoa(ResilientTable), "--dev", "lan0", marker}); err != nil {
			return err
		}
	}
	return nil
}

// BirdSocket is the control socket of the router's BIRD in a BGP lab.
func BirdSocket(stateDir string) string { return filepath.Join(stateDir, "router-bird.ctl") }

// startProcess starts argv in namespace ns as its own session, logging to
// DIR/ROLE.log.
func startProcess(ns, stateDir, role, marker string, argv []string) (Process, error) {
	logPath := filepath.Join(stateDir, role+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Process{}, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Process{}, fmt.Errorf("start %s in %s: %w", argv[0], role, err)
	}
	// Reaped here if it ends while this process lives (tests); otherwise
	// init inherits it.
	go func() { _ = cmd.Wait() }()
	return Process{Role: role, PID: cmd.Process.Pid, Marker: marker, Argv: argv}, nil
}

// Restart starts role's recorded process of lab name again (after a test
// killed it), stopping it first if it still runs, and records the new PID.
func Restart(name, stateDir, role string) (Process, error) {
	st, err := loadState(stateDir)
	if err != nil {
		return Process{}, err
	}
	if st == nil {
		return Process{}, fmt.Errorf("lab restart: no lab state in %s", stateDir)
	}
	topo := st.Topology()
	for i, p := range st.Processes {
		if p.Role != role {
			continue
		}
		if len(p.Argv) == 0 {
			return Process{}, fmt.Errorf("lab restart: %s has no recorded command", role)
		}
		if err := stopProcess(p); err != nil {
			return Process{}, err
		}
		nsRole := role
		if p.NSRole != "" {
			nsRole = p.NSRole
		}
		np, err := startProcess(topo.NS(nsRole), stateDir, role, p.Marker, p.Argv)
		if err != nil {
			return Process{}, err
		}
		np.NSRole = p.NSRole
		st.Processes[i] = np
		return np, saveState(stateDir, st)
	}
	return Process{}, fmt.Errorf("lab restart: no process for %s", role)
}

// LoadState returns the recorded state of the lab in stateDir.
func LoadState(stateDir string) (*State, error) {
	st, err := loadState(stateDir)
	if err == nil && st == nil {
		err = fmt.Errorf("no lab state in %s", stateDir)
	}
	return st, err
}

// inNS runs fn on a thread switched into namespace name.
func inNS(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// A thread left in the wrong namespace must not be reused.
			panic(fmt.Sprintf("lab: restore netns: %v", err))
		}
	}()
	return fn()
}

// waitListening waits until something accepts TCP on port 80 in ns.
func waitListening(ns string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := inNS(ns, func() error {
			c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(Port)), 500*time.Millisecond)
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d after %s: %w", Port, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ExistingNamespaces lists the namespaces of lab name that exist now.
func ExistingNamespaces(name string) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	prefix := Topology{Name: name}.Prefix()
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Down stops the lab's processes and deletes its namespaces and state dir.
// Without a state file it still deletes every namespace with the lab's
// prefix, after stopping the processes running inside them (only the lab
// starts processes there).
func Down(name, stateDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab down: bad lab name %q", name)
	}
	if stateDir == "" {
		stateDir = filepath.Join(DefaultStateRoot, name)
	}
	var errs []error
	st, err := loadState(stateDir)
	if err != nil {
		errs = append(errs, err)
	}
	if st != nil {
		for _, p := range slices.Backward(st.Processes) {
			if err := stopProcess(p); err != nil {
				errs = append(errs, err)
			} else {
				log.Info("lab down: stopped", "role", p.Role, "pid", p.PID)
			}
		}
	}
	existing, err := ExistingNamespaces(name)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range existing {
		for _, pid := range pidsInNS(ns) {
			if err := stopProcess(Process{Role: ns, PID: pid}); err != nil {
				errs = append(errs, err)
			}
		}
		if err := run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		} else {
			log.Info("lab down: deleted", "netns", ns)
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(stateDir); err != nil {
			errs = append(errs, fmt.Errorf("remove state dir: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

// alive reports whether pid runs (a zombie does not) and, when marker is
// set, has marker in its command line.
func alive(pid int, marker string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	if marker == "" {
		return true
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(strings.ReplaceAll(string(cmdline), "\x00", " "), marker)
}

// stopProcess sends SIGTERM, then SIGKILL after 3 s, to a recorded process
// that still carries its marker.
func stopProcess(p Process) error {
	if p.PID <= 1 || !alive(p.PID, p.Marker) {
		return nil
	}
	proc, err := os.FindProcess(p.PID)
	if err != nil {
		return nil
	}
	_ = proc.Signal(syscall.SIGTERM)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(p.PID, p.Marker) {
			return nil
		}
	}
	_ = proc.Signal(syscall.SIGKILL)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(p.PID, p.Marker) {
			return nil
		}
	}
	return fmt.Errorf("stop %s (pid %d): still running", p.Role, p.PID)
}

// pidsInNS lists processes whose network namespace is ns.
func pidsInNS(ns string) []int {
	var target syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &target); err != nil {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil {
			continue
		}
		if st.Ino == target.Ino && st.Dev == target.Dev {
			pids = append(pids, pid)
		}
	}
	return pids
}

// NodeStatus is one namespace's or process's state.
type NodeStatus struct {
	What string
	OK   bool
	Note string
}

// Status reports the lab's namespaces and processes.
func Status(name, stateDir string) ([]NodeStatus, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("lab status: bad lab name %q", name)
	}
	st, err := loadState(StateDirFor(name, stateDir))
	if err != nil {
		return nil, fmt.Errorf("lab status: %w", err)
	}
	existing, err := ExistingNamespaces(name)
	if err != nil {
		return nil, fmt.Errorf("lab status: %w", err)
	}
	if st == nil {
		if len(existing) == 0 {
			return nil, fmt.Errorf("lab status: lab %q is not up", name)
		}
		var out []NodeStatus
		for _, ns := range existing {
			out = append(out, NodeStatus{What: "netns " + ns, OK: false, Note: "exists but no state file; run lab down"})
		}
		return out, nil
	}
	var out []NodeStatus
	topo := st.Topology()
	for _, role := range topo.Roles() {
		ns := topo.NS(role)
		ok := slices.Contains(existing, ns)
		note := "missing"
		if ok {
			note = "exists"
			if a, has := topo.LANAddr(role); has {
				note += ", LAN " + a.String()
			}
		}
		out = append(out, NodeStatus{What: "netns " + ns, OK: ok, Note: note})
	}
	for _, p := range st.Processes {
		ok := alive(p.PID, p.Marker)
		note := "running"
		if !ok {
			note = "not running"
		}
		out = append(out, NodeStatus{What: fmt.Sprintf("%s pid %d", p.Role, p.PID), OK: ok, Note: note})
	}
	for _, role := range slices.Sorted(maps.Keys(st.Files)) {
		out = append(out, NodeStatus{What: "file " + st.Files[role], OK: fileExists(st.Files[role]), Note: role})
	}
	return out, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Fetch sends one HTTP GET to addr:port from inside namespace ns and returns
// the response body.
func Fetch(ns string, addr netip.Addr, port int, timeout time.Duration) (string, error) {
	var body string
	err := inNS(ns, func() error {
		// Dial creates the socket on this goroutine, so inside ns.
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(addr, uint16(port)).String(), timeout)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", netip.AddrPortFrom(addr, uint16(port))); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		body = string(b)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("fetch http://%s from %s: %w", netip.AddrPortFrom(addr, uint16(port)), ns, err)
	}
	return body, nil
}
