package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govs/govs/internal/control"
	"github.com/govs/govs/internal/status"
	"github.com/vishvananda/netlink"
)

// Timings of the generated keepalived.conf, which the checks compare with.
const (
	checkDelayLoop   = 2 * time.Second
	checkTimeout     = 1 * time.Second
	checkRetry       = 1
	checkRetryDelay  = 1 * time.Second
	advertInterval   = 1 * time.Second
	backupPriority   = 100
	requestTimeout   = 2 * time.Second
	longLivedConns   = 8
	streamInterval   = 50 * time.Millisecond
	longLivedRequest = 100 * time.Millisecond
	longLivedTimeout = 15 * time.Second
)

// DetectionBound is how long a health checker may take to take a dead web
// server out: delay_loop + retry × delay_before_retry + connect_timeout.
func DetectionBound() time.Duration {
	return checkDelayLoop + checkRetry*checkRetryDelay + checkTimeout
}

// TakeoverBound is VRRP's Master_Down_Interval for the backup: 3 ×
// advert_int + skew, plus 10% for scheduling on a loaded machine.
func TakeoverBound() time.Duration {
	skew := time.Duration(256-backupPriority) * time.Second / 256
	return (3*advertInterval + skew) * 11 / 10
}

// TestOptions configure RunTest.
type TestOptions struct {
	Name     string
	StateDir string
	// Requests is the number of requests of the distribution check (1000).
	Requests int
	// ExpectSync makes "long-lived connections survive a master kill" a
	// failing check rather than a reported number.
	ExpectSync bool
	// Out receives the report as checks finish (nil: discarded).
	Out io.Writer
}

// CheckResult is one line of the report.
type CheckResult struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Report is what RunTest found, plus the measured numbers the Go test
// asserts on.
type Report struct {
	Checks []CheckResult `json:"checks"`

	Requests          int            `json:"requests"`
	Failed            int            `json:"failed"`
	PerServer         map[string]int `json:"per_server"`
	RepliesAtDirector uint64         `json:"replies_at_director"`
	WebTx             uint64         `json:"web_tx_packets"`
	MasterInPkts      uint64         `json:"master_in_pkts"`
	// MasterOutPkts are the replies the master's XDP rewrote back to the
	// VIP (NAT; 0 in DR).
	MasterOutPkts   uint64        `json:"master_out_pkts"`
	Mode            string        `json:"mode"`
	PersistentSeen  int           `json:"persistent_servers_seen"`
	NonPersistSeen  int           `json:"non_persistent_servers_seen"`
	WebDownAfter    time.Duration `json:"web_down_after_ns"`
	WebDownFailures int           `json:"web_down_failures"`
	WebLateFailures int           `json:"web_failures_after_out"`
	WebBackAfter    time.Duration `json:"web_back_after_ns"`
	TakeoverAfter   time.Duration `json:"takeover_after_ns"`
	ServiceGap      time.Duration `json:"service_gap_ns"`
	TakeoverFails   int           `json:"takeover_failures"`
	LongLivedOK     int           `json:"long_lived_ok"`
	LongLivedTotal  int           `json:"long_lived_total"`
	BadReloadError  string        `json:"bad_reload_error"`
	BadReloadFails  int           `json:"bad_reload_failures"`
	// PerDirector and BGPSteps are the BGP lab's: the connections each
	// director scheduled, and what each disruption did.
	PerDirector map[string]int `json:"per_director,omitempty"`
	BGPSteps    []BGPStep      `json:"bgp_steps,omitempty"`
}

// OK reports whether every check passed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if !c.Pass {
			return false
		}
	}
	return len(r.Checks) > 0
}

type tester struct {
	o     TestOptions
	topo  Topology
	state *State
	rep   *Report
}

func (t *tester) result(name string, pass bool, format string, args ...any) {
	c := CheckResult{Name: name, Pass: pass, Detail: fmt.Sprintf(format, args...)}
	t.rep.Checks = append(t.rep.Checks, c)
	if t.o.Out != nil {
		verdict := "PASS"
		if !pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(t.o.Out, "%-4s %-28s %s\n", verdict, name, c.Detail)
	}
}

// RunTest exercises a running lab (directors started) the way issue 6 asks:
// distribution, DR bypass, persistence, a bad reload, a web server dying and
// the master director dying. It leaves the lab running as it found it.
func RunTest(ctx context.Context, o TestOptions) (*Report, error) {
	if o.Requests <= 0 {
		o.Requests = 1000
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(DefaultStateRoot, o.Name)
	}
	st, err := LoadState(o.StateDir)
	if err != nil {
		return nil, err
	}
	t := &tester{o: o, topo: st.Topology(), state: st, rep: &Report{PerServer: map[string]int{}, Mode: st.Mode}}
	if t.rep.Mode == "" {
		t.rep.Mode = ModeDR
	}
	ready := t.waitReady
	steps := []func(context.Context) error{t.distribution, t.ipv6, t.persistence, t.badReload, t.webServerDies, t.masterDies}
	if st.BGP {
		ready = t.waitReadyBGP
		steps = []func(context.Context) error{t.bgpSpread, t.ipv6, t.badReload, t.webServerDies, t.bgpDisruptions}
	}
	if err := ready(ctx); err != nil {
		return t.rep, err
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return t.rep, err
		}
		if err := step(ctx); err != nil {
			return t.rep, err
		}
	}
	return t.rep, nil
}

func (t *tester) socket(dir string) string { return filepath.Join(t.o.StateDir, dir+".sock") }

func (t *tester) status(ctx context.Context, dir string) (status.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, t.socket(dir))
	if err != nil {
		return status.Snapshot{}, err
	}
	defer c.Close()
	return c.Status(ctx)
}

func (t *tester) reload(ctx context.Context, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := control.DialContext(ctx, t.socket(dir))
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Reload(ctx)
}

func vrrpState(s status.Snapshot) string {
	if len(s.VRRP) == 0 {
		return ""
	}
	return s.VRRP[0].State
}

// weightOf returns the weight of real server addr (in whichever service
// holds it: the IPv4 and IPv6 services have distinct real addresses), or -1.
func weightOf(s status.Snapshot, addr netip.Addr) int {
	for _, svc := range s.Services {
		for _, r := range svc.Reals {
			if r.Addr == addr {
				return r.Weight
			}
		}
	}
	return -1
}

func (t *tester) isState(ctx context.Context, dir, state string) bool {
	s, err := t.status(ctx, dir)
	return err == nil && vrrpState(s) == state
}

// waitReady waits until dir1 is MASTER, every web server is resolved and
// in the pool, and a request through the public address succeeds.
func (t *tester) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		s, err := t.status(ctx, t.dirs()[0])
		switch {
		case err != nil:
			last = err
		case vrrpState(s) != "MASTER":
			last = fmt.Errorf("dir1 is %q, not MASTER", vrrpState(s))
		case !t.isState(ctx, t.dirs()[1], "BACKUP"):
			// Right after start dir2 may hold the VIP for a moment.
			last = errors.New("dir2 is not BACKUP yet")
		default:
			last = nil
			for _, w := range t.topo.WebRoles() {
				a, _ := t.topo.LANAddr(w)
				a6, _ := t.topo.LANAddr6(w)
				for _, a := range []netip.Addr{a, a6} {
					if weightOf(s, a) != 1 {
						last = fmt.Errorf("%s (%s) has weight %d", w, a, weightOf(s, a))
					}
				}
			}
			if last == nil {
				if _, err := t.get(); err != nil {
					last = err
				} else {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("lab test: lab not ready after 20s: %w", last)
}

// get sends one request through the router's public address on a new
// connection and returns the answering web server's name.
func (t *tester) get() (string, error) {
	body, err := Fetch(t.topo.NS("client"), PublicIP, Port, requestTimeout)
	return strings.TrimSpace(body), err
}

// packets returns the RX or TX packet counter of role's eth0.
func (t *tester) packets(role string, rx bool) (uint64, error) {
	var n uint64
	err := inNS(t.topo.NS(role), func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if s := l.Attrs().Statistics; s != nil {
			n = s.TxPackets
			if rx {
				n = s.RxPackets
			}
		}
		return nil
	})
	return n, err
}

func (t *tester) sum(roles []string, rx bool) (uint64, error) {
	var sum uint64
	for _, r := range roles {
		n, err := t.packets(r, rx)
		if err != nil {
			return 0, fmt.Errorf("counters of %s: %w", r, err)
		}
		sum += n
	}
	return sum, nil
}

func (t *tester) distribution(ctx context.Context) error {
	before, err := t.status(ctx, t.dirs()[0])
	if err != nil {
		return err
	}
	// Count, in each director's IP stack, packets from a web server's port
	// 80 to a client: replies that crossed the director. XDP passes such
	// packets up (they are for no service), so prerouting sees them.
	if err := t.replyCounters(true); err != nil {
		return err
	}
	defer func() { _ = t.replyCounters(false) }()
	webTx0, err := t.sum(t.topo.WebRoles(), false)
	if err != nil {
		return err
	}
	n := t.sendRequests(ctx)
	crossed, err := t.readReplyCounters()
	if err != nil {
		return err
	}
	webTx1, _ := t.sum(t.topo.WebRoles(), false)
	after, err := t.status(ctx, t.dirs()[0])
	if err != nil {
		return err
	}
	t.rep.RepliesAtDirector, t.rep.WebTx = crossed, webTx1-webTx0
	if len(before.Services) > 0 && len(after.Services) > 0 {
		t.rep.MasterInPkts = after.Services[0].Stats.InPkts - before.Services[0].Stats.InPkts
		t.rep.MasterOutPkts = after.Services[0].Stats.OutPkts - before.Services[0].Stats.OutPkts
	}

	t.result("requests", t.rep.Failed == 0, "%d/%d requests through %s:%d succeeded", n-t.rep.Failed, n, PublicIP, Port)
	share := 1 / float64(t.topo.Webs)
	ok := len(t.rep.PerServer) == t.topo.Webs
	var parts []string
	for _, w := range t.topo.WebRoles() {
		got := float64(t.rep.PerServer[w]) / float64(n)
		ok = ok && got >= share-0.05 && got <= share+0.05
		parts = append(parts, fmt.Sprintf("%s %.1f%%", w, 100*got))
	}
	t.result("rr distribution", ok, "%s (want %.0f%% ± 5%% each)", strings.Join(parts, ", "), 100*share)
	// Each HTTP/1.0 exchange makes the web server send at least SYN-ACK,
	// the response and a FIN, so web servers send more than n packets,
	// none of which may reach a director's IP stack: in DR they bypass the
	// directors, in NAT the master's XDP program rewrites each of them.
	if t.topo.NAT() || t.topo.FNAT() {
		t.result("replies rewritten by the master ("+strings.ToUpper(t.topo.Mode)+")", crossed == 0 && t.rep.WebTx >= uint64(n) && t.rep.MasterOutPkts >= uint64(n),
			"master's XDP forwarded %d client packets and rewrote %d replies; web servers sent %d packets, %d of them reached a director's IP stack",
			t.rep.MasterInPkts, t.rep.MasterOutPkts, t.rep.WebTx, crossed)
		return nil
	}
	t.result("replies bypass director", crossed == 0 && t.rep.WebTx >= uint64(n) && t.rep.MasterInPkts >= uint64(n),
		"master's XDP forwarded %d client packets; web servers sent %d packets, %d of them reached a director",
		t.rep.MasterInPkts, t.rep.WebTx, crossed)
	return nil
}

// ipv6Requests is how many requests the IPv6 step sends.
const ipv6Requests = 100

// ipv6 sends requests through the router's public IPv6 address to the IPv6
// virtual server. Its real servers being at weight 1 (waitReady) shows
// the IPv6 TCP_CHECKs succeed; they would time out if they left from the
// VIP, whose replies go to whichever host holds it.
func (t *tester) ipv6(ctx context.Context) error {
	seen := map[string]int{}
	failed := 0
	for i := 0; i < ipv6Requests && ctx.Err() == nil; i++ {
		body, err := Fetch(t.topo.NS("client"), PublicIP6, Port, requestTimeout)
		if err != nil {
			failed++
			continue
		}
		seen[strings.TrimSpace(body)]++
	}
	s, err := t.status(ctx, t.dirs()[0])
	if err != nil {
		return err
	}
	var up []string
	for _, w := range t.topo.WebRoles() {
		if a, _ := t.topo.LANAddr6(w); weightOf(s, a) == 1 {
			up = append(up, w)
		}
	}
	t.result("ipv6", failed == 0 && len(seen) == t.topo.Webs && len(up) == t.topo.Webs,
		"%d/%d requests through [%s]:%d succeeded, answered by %d server(s); IPv6 TCP_CHECK keeps %d of %d up",
		ipv6Requests-failed, ipv6Requests, PublicIP6, Port, len(seen), len(up), t.topo.Webs)
	return nil
}

// rewriteConfs applies edit to every director's keepalived.conf and
// returns a function that puts the original files back.
func (t *tester) rewriteConfs(edit func(dir, conf string) string, dirs ...string) (restore func() error, err error) {
	orig := map[string][]byte{}
	for _, d := range dirs {
		path := t.state.Files[d]
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		orig[path] = b
		if err := os.WriteFile(path, []byte(edit(d, string(b))), 0o644); err != nil {
			return nil, err
		}
	}
	return func() error {
		var errs []error
		for p, b := range orig {
			errs = append(errs, os.WriteFile(p, b, 0o644))
		}
		return errors.Join(errs...)
	}, nil
}

func (t *tester) reloadAll(ctx context.Context) error {
	for _, d := range t.dirs() {
		if err := t.reload(ctx, d); err != nil {
			return fmt.Errorf("reload %s: %w", d, err)
		}
	}
	return nil
}

func (t *tester) serversSeen(k int) (int, error) {
	seen := map[string]bool{}
	for range k {
		name, err := t.get()
		if err != nil {
			return 0, err
		}
		seen[name] = true
	}
	return len(seen), nil
}

func (t *tester) persistence(ctx context.Context) error {
	restore, err := t.rewriteConfs(func(_, conf string) string {
		// The first virtual server (IPv4), whatever its lb_kind.
		return strings.Replace(conf, "    lb_algo rr\n", "    lb_algo rr\n    persistence_timeout 60\n", 1)
	}, t.dirs()...)
	if err != nil {
		return err
	}
	if err := t.reloadAll(ctx); err != nil {
		_ = restore()
		return err
	}
	seen, err := t.serversSeen(50)
	t.rep.PersistentSeen = seen
	if err != nil {
		_ = restore()
		return err
	}
	if err := restore(); err != nil {
		return err
	}
	if err := t.reloadAll(ctx); err != nil {
		return err
	}
	t.rep.NonPersistSeen, err = t.serversSeen(50)
	if err != nil {
		return err
	}
	t.result("persistence", t.rep.PersistentSeen == 1 && t.rep.NonPersistSeen == t.topo.Webs,
		"with persistence_timeout 60 one client saw %d server(s) in 50 requests; without, %d", t.rep.PersistentSeen, t.rep.NonPersistSeen)
	return nil
}

// stream sends a request every interval until stop is closed and records
// when each one failed.
type stream struct {
	mu       sync.Mutex
	fails    []time.Time
	errs     []string  // the errors of fails
	firstOK  time.Time // first success after mark
	mark     time.Time
	requests int
}

func (t *tester) startStream(interval time.Duration) (*stream, func()) {
	s := &stream{}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			began := time.Now()
			_, err := t.get()
			now := time.Now()
			s.mu.Lock()
			s.requests++
			if err != nil {
				s.fails = append(s.fails, now)
				s.errs = append(s.errs, fmt.Sprintf("%s (began %s, took %s)", err, began.Format("15:04:05.000"), now.Sub(began).Round(time.Millisecond)))
			} else if !s.mark.IsZero() && s.firstOK.IsZero() && now.After(s.mark) && len(s.fails) > 0 && s.fails[len(s.fails)-1].After(s.mark) {
				s.firstOK = now
			}
			s.mu.Unlock()
		}
	}()
	return s, func() { close(done); <-stopped }
}

func (s *stream) setMark(at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mark = at
}

// errorsBetween lists the errors of the failures in [from, to).
func (s *stream) errorsBetween(from, to time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i, f := range s.fails {
		if !f.Before(from) && (to.IsZero() || f.Before(to)) {
			out = append(out, s.errs[i])
		}
	}
	return out
}

// failuresBetween counts failures in [from, to) (to zero: no end).
func (s *stream) failuresBetween(from, to time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.fails {
		if !f.Before(from) && (to.IsZero() || f.Before(to)) {
			n++
		}
	}
	return n
}

func (t *tester) badReload(ctx context.Context) error {
	before, err := t.status(ctx, t.dirs()[0])
	if err != nil {
		return err
	}
	restore, err := t.rewriteConfs(func(_, conf string) string {
		return conf + "\nvirtual_server 1921681169 80 {\n    lb_algo nonsense\n"
	}, t.dirs()[0])
	if err != nil {
		return err
	}
	s, stop := t.startStream(streamInterval)
	start := time.Now()
	reloadErr := t.reload(ctx, t.dirs()[0])
	time.Sleep(time.Second)
	stop()
	if err := restore(); err != nil {
		return err
	}
	after, err := t.status(ctx, t.dirs()[0])
	if err != nil {
		return err
	}
	logText, _ := os.ReadFile(filepath.Join(t.o.StateDir, t.dirs()[0]+".log"))
	logged := strings.Contains(string(logText), "reload rejected") && strings.Contains(string(logText), "1921681169")
	if reloadErr != nil {
		t.rep.BadReloadError = reloadErr.Error()
	}
	t.rep.BadReloadFails = s.failuresBetween(start, time.Time{})
	unchanged := len(before.Services) == len(after.Services) && len(after.Services) > 0 &&
		len(before.Services[0].Reals) == len(after.Services[0].Reals) && before.Services[0].Scheduler == after.Services[0].Scheduler
	t.result("bad reload rejected", reloadErr != nil && logged && unchanged && t.rep.BadReloadFails == 0,
		"reload refused (%v), errors logged: %v, table unchanged: %v, %d of %d requests failed meanwhile",
		firstLine(t.rep.BadReloadError), logged, unchanged, t.rep.BadReloadFails, s.requests)
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

func (t *tester) process(role string) (Process, error) {
	st, err := LoadState(t.o.StateDir)
	if err != nil {
		return Process{}, err
	}
	for _, p := range st.Processes {
		if p.Role == role {
			return p, nil
		}
	}
	return Process{}, fmt.Errorf("no process recorded for %s", role)
}

// killHard SIGKILLs a recorded process and everything in its session (nginx
// workers too), as a crash would.
func killHard(p Process) error {
	if !alive(p.PID, p.Marker) {
		return fmt.Errorf("%s (pid %d) is not running", p.Role, p.PID)
	}
	// The lab starts every process as a session leader: its PID is the
	// process group of its children.
	if err := syscall.Kill(-p.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s (pid %d): %w", p.Role, p.PID, err)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !alive(p.PID, p.Marker) {
			return nil
		}
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Role, p.PID)
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < timeout && ctx.Err() == nil {
		if cond() {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), false
}

func (t *tester) webServerDies(ctx context.Context) error {
	victim := t.topo.WebRoles()[0]
	addr, _ := t.topo.LANAddr(victim)
	p, err := t.process(victim)
	if err != nil {
		return err
	}
	s, stop := t.startStream(streamInterval)
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := killHard(p); err != nil {
		stop()
		return err
	}
	// The master's checker decides; with BGP every director's does, each
	// for the flows the router sends it.
	deciders := t.dirs()[:1]
	if t.topo.BGP {
		deciders = t.dirs()
	}
	weightIs := func(w int) func() bool {
		return func() bool {
			for _, d := range deciders {
				snap, err := t.status(ctx, d)
				if err != nil || weightOf(snap, addr) != w {
					return false
				}
			}
			return true
		}
	}
	downAfter, down := waitFor(ctx, 3*DetectionBound(), weightIs(0))
	out := time.Now()
	time.Sleep(time.Second)
	stop()
	t.rep.WebDownAfter = downAfter
	t.rep.WebDownFailures = s.failuresBetween(killed, out)
	t.rep.WebLateFailures = s.failuresBetween(out.Add(100*time.Millisecond), time.Time{})
	late := ""
	if t.rep.WebLateFailures > 0 {
		late = fmt.Sprintf(" (out at %s: %s)", out.Format("15:04:05.000"), strings.Join(s.errorsBetween(out.Add(100*time.Millisecond), time.Time{}), "; "))
	}
	t.result("web server dies", down && downAfter <= DetectionBound() && t.rep.WebLateFailures == 0,
		"%s killed: weight 0 after %s (bound %s), %d requests failed before that, %d after%s",
		victim, downAfter.Round(10*time.Millisecond), DetectionBound(), t.rep.WebDownFailures, t.rep.WebLateFailures, late)

	restarted := time.Now()
	if _, err := Restart(t.o.Name, t.o.StateDir, victim); err != nil {
		return err
	}
	backAfter, back := waitFor(ctx, 3*DetectionBound(), weightIs(1))
	t.rep.WebBackAfter = time.Since(restarted)
	_ = backAfter
	t.result("web server returns", back, "%s restarted: weight 1 again after %s", victim, t.rep.WebBackAfter.Round(10*time.Millisecond))
	return nil
}

// longLived is a keep-alive HTTP/1.1 connection from the client.
type longLived struct {
	c  net.Conn
	br *bufio.Reader
}

func (t *tester) dialLongLived() (*longLived, error) {
	var c net.Conn
	err := inNS(t.topo.NS("client"), func() error {
		var err error
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(PublicIP, Port).String(), requestTimeout)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &longLived{c: c, br: bufio.NewReader(c)}, nil
}

func (l *longLived) request() error {
	_, err := l.ask()
	return err
}

// ask sends one request and returns the answering web server's name.
func (l *longLived) ask() (string, error) {
	// A request caught in the takeover waits for TCP to retransmit once the
	// backup has the VIP: give it longer than a new connection gets.
	if err := l.c.SetDeadline(time.Now().Add(longLivedTimeout)); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(l.c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", PublicIP); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(l.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

func (t *tester) masterDies(ctx context.Context) error {
	var conns []*longLived
	defer func() {
		for _, l := range conns {
			l.c.Close()
		}
	}()
	for range longLivedConns {
		l, err := t.dialLongLived()
		if err != nil {
			return fmt.Errorf("open long-lived connection: %w", err)
		}
		if err := l.request(); err != nil {
			return fmt.Errorf("first request on long-lived connection: %w", err)
		}
		conns = append(conns, l)
	}
	// Keep them busy, as a browser or an API client would be.
	broken := make([]bool, len(conns))
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i, l := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				case <-time.After(longLivedRequest):
				}
				if err := l.request(); err != nil {
					mu.Lock()
					broken[i] = true
					mu.Unlock()
					return
				}
			}
		}()
	}

	p, err := t.process(t.dirs()[0])
	if err != nil {
		close(done)
		wg.Wait()
		return err
	}
	s, stop := t.startStream(streamInterval)
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	s.setMark(killed)
	// A director machine that dies takes its link with it; killing only the
	// process would leave the VIP on its kernel, which resets every flow
	// until the backup's gratuitous ARP moves the router (docs/lab.md).
	if err := t.setLink(t.dirs()[0], false); err != nil {
		stop()
		close(done)
		wg.Wait()
		return err
	}
	if err := killHard(p); err != nil {
		stop()
		close(done)
		wg.Wait()
		return err
	}
	takeover, ok := waitFor(ctx, 3*TakeoverBound(), func() bool {
		snap, err := t.status(ctx, t.dirs()[1])
		return err == nil && vrrpState(snap) == "MASTER"
	})
	time.Sleep(2 * time.Second)
	stop()
	close(done)
	wg.Wait()
	t.rep.TakeoverAfter = takeover
	t.rep.TakeoverFails = s.failuresBetween(killed, time.Time{})
	s.mu.Lock()
	if !s.firstOK.IsZero() {
		t.rep.ServiceGap = s.firstOK.Sub(killed)
	}
	s.mu.Unlock()
	t.result("master director dies", ok && takeover <= TakeoverBound(),
		"dir1 down (link down + SIGKILL): dir2 MASTER after %s (bound %s), %d of %d new requests failed, service back after %s",
		takeover.Round(10*time.Millisecond), TakeoverBound(), t.rep.TakeoverFails, s.requests, t.rep.ServiceGap.Round(10*time.Millisecond))

	// The connections were kept busy through the takeover; each must still
	// answer on the same TCP connection.
	t.rep.LongLivedTotal = len(conns)
	for i, l := range conns {
		if !broken[i] && l.request() == nil {
			t.rep.LongLivedOK++
		}
	}
	pass := t.rep.LongLivedOK == t.rep.LongLivedTotal || !t.o.ExpectSync
	t.result("long-lived connections", pass, "%d of %d keep-alive connections opened before the kill still work after it%s",
		t.rep.LongLivedOK, t.rep.LongLivedTotal, map[bool]string{true: "", false: " (not required: connection sync off)"}[t.o.ExpectSync])

	// Put the lab back: dir1 returns and, with the higher priority, takes
	// the VIP back.
	if err := t.setLink(t.dirs()[0], true); err != nil {
		return err
	}
	if _, err := Restart(t.o.Name, t.o.StateDir, t.dirs()[0]); err != nil {
		return err
	}
	if _, ok := waitFor(ctx, 15*time.Second, func() bool {
		snap, err := t.status(ctx, t.dirs()[0])
		return err == nil && vrrpState(snap) == "MASTER"
	}); !ok {
		return errors.New("dir1 did not become MASTER again after its restart")
	}
	return nil
}

// setLink takes role's eth0 down or up.
func (t *tester) setLink(role string, up bool) error {
	return inNS(t.topo.NS(role), func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if up {
			return netlink.LinkSetUp(l)
		}
		return netlink.LinkSetDown(l)
	})
}

const replyTable = "govs_labtest"

// replyCounters adds (or removes) a counter of web-server replies to
// clients in every director's prerouting hook.
func (t *tester) replyCounters(add bool) error {
	for _, d := range t.dirs() {
		ns := t.topo.NS(d)
		if !add {
			_ = nsRun(ns, "nft", "delete", "table", "inet", replyTable)
			continue
		}
		rules := [][]string{
			{"add", "table", "inet", replyTable},
			{"add", "chain", "inet", replyTable, "pre", "{ type filter hook prerouting priority -300; }"},
			{"add", "rule", "inet", replyTable, "pre", "ip", "daddr", PublicNet.String(), "tcp", "sport", strconv.Itoa(Port), "counter"},
		}
		for _, r := range rules {
			if err := nsRun(ns, append([]string{"nft"}, r...)...); err != nil {
				return fmt.Errorf("reply counter in %s: %w", d, err)
			}
		}
	}
	return nil
}

var counterRE = regexp.MustCompile(`counter packets (\d+)`)

func (t *tester) readReplyCounters() (uint64, error) {
	var total uint64
	for _, d := range t.dirs() {
		out, err := exec.Command("ip", "netns", "exec", t.topo.NS(d), "nft", "list", "table", "inet", replyTable).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("read reply counter in %s: %w: %s", d, err, out)
		}
		m := counterRE.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("no counter in %s's %s table", d, replyTable)
		}
		n, _ := strconv.ParseUint(string(m[1]), 10, 64)
		total += n
	}
	return total, nil
}

func (t *tester) dirs() []string { return t.topo.DirectorRoles() }

// sendRequests sends the distribution check's requests, each on a new
// connection, counting failures and the servers that answered.
func (t *tester) sendRequests(ctx context.Context) int {
	n := t.o.Requests
	for i := 0; i < n && ctx.Err() == nil; i++ {
		name, err := t.get()
		if err != nil {
			t.rep.Failed++
			continue
		}
		t.rep.PerServer[name]++
	}
	t.rep.Requests = n
	return n
}
