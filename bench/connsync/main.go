// Command connsync measures connection synchronisation at scale, between
// two network namespaces with a real data plane on each side:
//
//   - dump: a master holding -entries connections, and a director that
//     starts and asks for them; the time until it holds them all, against
//     the same messages sent and received by bare sockets in the same run
//     (the wire's own rate);
//
//   - steady state: the master's CPU and memory over -steady with that
//     table and no receiver, sending new connections as the program
//     records them (govs), against the same daemon finding them by table
//     scans (what a data plane without records gets).
//
//     sudo go run ./bench/connsync [-entries 100000] [-steady 1m]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/govs/govs/bench/benchns"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/connsync/proto"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

const (
	nsA, nsB = "govs-bench-sync-a", "govs-bench-sync-b"
	group    = "224.0.0.81"
	vip      = "203.0.113.1"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "connsync:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("connsync", flag.ContinueOnError)
	entries := fs.Int("entries", 100000, "connections in the master's table (at most 250000)")
	steady := fs.Duration("steady", time.Minute, "steady-state measuring time per variant (at most 5m; covers two scans at 1m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *entries <= 0 || *entries > 250000 || *steady <= 0 {
		return errors.New("entries must be 1..250000, steady positive")
	}
	*steady = min(*steady, 5*time.Minute)
	cleanup, err := topology()
	defer cleanup()
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; cleanup(); os.Exit(1) }()

	a, err := openDP(nsA)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := openDP(nsB)
	if err != nil {
		return err
	}
	defer b.Close()
	conns := table(*entries)
	if n, err := a.InsertConnections(conns); err != nil || n != len(conns) {
		return fmt.Errorf("fill the master's table: %d of %d: %v", n, len(conns), err)
	}
	fmt.Fprintf(out, "table: %d IPv4 TCP connections; messages of 1472 bytes, unauthenticated\n\n", len(conns))

	wire, err := bareWire(conns)
	if err != nil {
		return err
	}
	dump, err := measureDump(a, b, len(conns))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "dump to a director that starts (until it holds every connection):\n")
	fmt.Fprintf(out, "  bare sockets, same messages, no insertion  %8.0f entries/s\n", wire)
	fmt.Fprintf(out, "  govs (request, dump, insert, marker)       %8.0f entries/s  = %.2fx the wire\n", dump, dump/wire)
	fmt.Fprintf(out, "  (recorded before this design: about 820 entries/s, 4096 a round)\n\n")

	fmt.Fprintf(out, "master steady state over %v, %d connections, no receiver:\n", *steady, len(conns))
	for _, v := range []struct {
		name string
		dp   connsync.DataPlane
	}{
		{"table scans only (no records; baseline)", scanOnly{a}},
		{"govs: records + a scan every 30 s", a},
	} {
		cpu, rss, held, err := measureSteady(v.dp, *steady)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-42s CPU %5.2f%% of a core, heap the daemon holds %4.0f MB, process peak RSS %4.0f MB\n", v.name, cpu*100, held, rss)
	}
	fmt.Fprintf(out, "  (the process also holds this benchmark's table and a second data plane; recorded in govs run before this\n")
	fmt.Fprintf(out, "  design: 19.5%% of a core and 143-283 MB RSS at 100k entries, 19 MB without sync)\n")
	return nil
}

// topology makes two namespaces joined by a veth pair.
func topology() (func(), error) {
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		closers = nil
	}
	for _, ns := range []string{nsA, nsB} {
		_ = benchns.Sh("ip", "netns", "del", ns) // left over from an interrupted run
		if err := benchns.Sh("ip", "netns", "add", ns); err != nil {
			return cleanup, err
		}
		closers = append(closers, func() { _ = benchns.Sh("ip", "netns", "del", ns) })
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "eth0", "netns", nsA, "type", "veth", "peer", "name", "eth0", "netns", nsB},
		{"ip", "-n", nsA, "addr", "add", "198.18.5.1/24", "dev", "eth0"},
		{"ip", "-n", nsB, "addr", "add", "198.18.5.2/24", "dev", "eth0"},
		{"ip", "-n", nsA, "link", "set", "eth0", "up"},
		{"ip", "-n", nsB, "link", "set", "eth0", "up"},
		{"ip", "-n", nsA, "link", "set", "lo", "up"},
		{"ip", "-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := benchns.Sh(c...); err != nil {
			return cleanup, err
		}
	}
	return cleanup, nil
}

// openDP opens a data plane with one service of two real servers behind
// the namespace's eth0 (not attached: only its tables are used).
func openDP(ns string) (*dataplane.Dataplane, error) {
	d, err := dataplane.Open(dataplane.Options{})
	if err != nil {
		return nil, err
	}
	err = benchns.In(ns, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		var reals []dataplane.Real
		for i := range 2 {
			reals = append(reals, dataplane.Real{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), Weight: 1,
				MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(11 + i)}, Ifindex: ifi.Index})
		}
		return d.Apply(dataplane.State{Services: []dataplane.Service{{Addr: netip.MustParseAddr(vip), Port: 80,
			Protocol: dataplane.TCP, Scheduler: sched.RoundRobin, Reals: reals}}})
	})
	if err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// table is n distinct connections to the service.
func table(n int) []dataplane.Conn {
	now := time.Now()
	out := make([]dataplane.Conn, n)
	for i := range out {
		out[i] = dataplane.Conn{Protocol: dataplane.TCP,
			Client:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(1024+i>>16)),
			VIP:      netip.AddrPortFrom(netip.MustParseAddr(vip), 80),
			Real:     netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i%2)}),
			LastSeen: now}
	}
	return out
}

func daemonConfig(master bool) connsync.Config {
	return connsync.Config{Interface: "eth0", SyncID: 51, MaxLen: 1472, Group: netip.MustParseAddr(group), Port: 8848, TTL: 1,
		IsMaster: func() bool { return master }, Logger: logger()}
}

func logger() *slog.Logger {
	if os.Getenv("BENCH_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// measureDump starts a master on a and a director on b that asks for the
// table; it returns entries per second until b holds them all.
func measureDump(a, b *dataplane.Dataplane, n int) (float64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var master, backup *connsync.Daemon
	if err := benchns.In(nsA, func() (err error) { master, err = connsync.Start(ctx, daemonConfig(true), a); return err }); err != nil {
		return 0, err
	}
	defer master.Close()
	// The master's first scan (it just became MASTER) sends the table
	// too: it is not the dump, so the director starts after it.
	for master.Stats().EntriesSent < uint64(n) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := benchns.In(nsB, func() (err error) { backup, err = connsync.Start(ctx, daemonConfig(false), b); return err }); err != nil {
		return 0, err
	}
	defer backup.Close()
	deadline := start.Add(time.Minute)
	for !backup.Complete() {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("dump: not complete after a minute: %+v", backup.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	got, err := b.Connections()
	if err != nil {
		return 0, err
	}
	if len(got) < n {
		return 0, fmt.Errorf("dump: complete with %d of %d connections (%+v)", len(got), n, backup.Stats())
	}
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "dump took %v\nbackup %+v\nmaster %+v\n", took, backup.Stats(), master.Stats())
	}
	return float64(n) / took.Seconds(), nil
}

// bareWire sends the dump's messages from one bare socket to another and
// returns entries per second received.
func bareWire(conns []dataplane.Conn) (float64, error) {
	wire := make([]proto.Conn, len(conns))
	for i, c := range conns {
		wire[i] = proto.Conn{Protocol: proto.TCP, Client: c.Client, VIP: c.VIP, Real: c.Real}
	}
	start := time.Now()
	msgs, err := proto.Encode(51, wire, 1472)
	if err != nil {
		return 0, err
	}
	var rx *ipv4.PacketConn
	if err := benchns.In(nsB, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("udp4", group+":8849")
		if err != nil {
			return err
		}
		if uc, ok := c.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(16 << 20)
		}
		rx = ipv4.NewPacketConn(c)
		return rx.JoinGroup(ifi, &net.UDPAddr{IP: net.ParseIP(group)})
	}); err != nil {
		return 0, err
	}
	defer rx.Close()
	var tx *ipv4.PacketConn
	if err := benchns.In(nsA, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return err
		}
		tx = ipv4.NewPacketConn(c)
		return tx.SetMulticastInterface(ifi)
	}); err != nil {
		return 0, err
	}
	defer tx.Close()
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 65536)
		n := 0
		for n < len(conns) {
			_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, _, err := rx.ReadFrom(buf)
			if err != nil {
				break
			}
			if m, err := proto.Decode(buf[:k]); err == nil {
				n += len(m.Conns)
			}
		}
		got <- n
	}()
	dst := &net.UDPAddr{IP: net.ParseIP(group), Port: 8849}
	for _, m := range msgs {
		if _, err := tx.WriteTo(m, nil, dst); err != nil {
			return 0, err
		}
	}
	n := <-got
	if n < len(conns) {
		return 0, fmt.Errorf("bare sockets: %d of %d entries arrived", n, len(conns))
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// scanOnly hides the data plane's records: the daemon falls back to
// finding new connections by scanning the table.
type scanOnly struct{ d *dataplane.Dataplane }

func (s scanOnly) Connections() ([]dataplane.Conn, error)            { return s.d.Connections() }
func (s scanOnly) InsertConnections(c []dataplane.Conn) (int, error) { return s.d.InsertConnections(c) }

// measureSteady runs a master over dp for d and returns the process's CPU
// (share of one core), its peak RSS in MB during that time, and the live
// heap the daemon added (MB, after a GC).
func measureSteady(dp connsync.DataPlane, d time.Duration) (float64, float64, float64, error) {
	base := liveHeap()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var master *connsync.Daemon
	if err := benchns.In(nsA, func() (err error) { master, err = connsync.Start(ctx, daemonConfig(true), dp); return err }); err != nil {
		return 0, 0, 0, err
	}
	defer master.Close()
	// Its first scan sends the whole table: not the steady state.
	for master.Stats().Scans == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if err := resetPeakRSS(); err != nil {
		return 0, 0, 0, err
	}
	before, start := cpuTime(), time.Now()
	time.Sleep(d)
	cpu := (cpuTime() - before).Seconds() / time.Since(start).Seconds()
	rss, err := peakRSS()
	held := float64(int64(liveHeap())-int64(base)) / (1 << 20)
	return cpu, rss, held, err
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS restarts the kernel's peak-RSS count (VmHWM).
func resetPeakRSS() error { return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() (float64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.Atoi(f[1])
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
