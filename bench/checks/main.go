// Command checks measures what health checking costs: it runs TCP_CHECKs at
// a fixed rate against a loopback listener (in a child process, so its CPU is
// not counted) for a bounded time, and prints the CPU time the checker process
// used per 1000 checks per second. The baseline, measured in the same run, is
// the cheapest possible checker: a ticker that dials at the same rate with one
// goroutine per check and no state at all.
//
//	go run ./bench/checks -rate 1000 -checkers 2000 -duration 10s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/govs/govs/internal/check"
	"github.com/govs/govs/internal/check/state"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "checks:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("checks", flag.ContinueOnError)
	rate := fs.Int("rate", 1000, "checks per second")
	checkers := fs.Int("checkers", 2000, "number of TCP_CHECKs (delay_loop = checkers/rate)")
	duration := fs.Duration("duration", 10*time.Second, "measuring time (bounded to 2m)")
	workers := fs.Int("workers", check.DefaultWorkers, "runner worker pool size")
	serve := fs.Bool("serve", false, "internal: be the loopback listener")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the govs runner phase to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *serve {
		return listen(out)
	}
	if *rate <= 0 || *checkers <= 0 || *duration <= 0 {
		return fmt.Errorf("rate, checkers and duration must be positive")
	}
	*duration = min(*duration, 2*time.Minute)

	addrs, stop, err := startListener()
	if err != nil {
		return err
	}
	defer stop()

	base, err := measure(*duration, func(ctx context.Context, count *counter) { naive(ctx, addrs, *rate, count) })
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("create profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start profile: %w", err)
		}
	}
	govs, err := measure(*duration, func(ctx context.Context, count *counter) {
		runGovs(ctx, addrs, *rate, *checkers, *workers, count)
	})
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "health checks: %d TCP_CHECKs, target %d checks/s, %v each, loopback listener in a child process\n",
		*checkers, *rate, *duration)
	fmt.Fprintf(out, "%-28s %10s %8s %10s %10s %22s %11s\n", "checker", "checks ok", "failed", "checks/s", "CPU (s)", "CPU ms/s per 1k chk/s", "goroutines")
	for _, m := range []struct {
		name string
		r    result
	}{{"baseline (ticker + dial)", base}, {"govs runner", govs}} {
		fmt.Fprintf(out, "%-28s %10d %8d %10.0f %10.3f %22.1f %11d\n", m.name, m.r.checks, m.r.failed, m.r.perSec(), m.r.cpu.Seconds(),
			m.r.cpuPer1k(), m.r.maxGoroutines)
	}
	fmt.Fprintf(out, "ratio govs/baseline CPU per 1k checks/s: %.2fx\n", govs.cpuPer1k()/base.cpuPer1k())
	return nil
}

// counter counts finished checks.
type counter struct{ ok, failed atomic.Int64 }

const listenPorts = 8

type result struct {
	checks        int64
	failed        int64
	wall          time.Duration
	cpu           time.Duration
	maxGoroutines int
}

func (r result) perSec() float64 { return float64(r.checks) / r.wall.Seconds() }

// cpuPer1k is CPU milliseconds per wall second for each 1000 checks/s.
func (r result) cpuPer1k() float64 {
	return float64(r.cpu.Milliseconds()) / r.wall.Seconds() / (r.perSec() / 1000)
}

func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// measure runs load for d (after a warm-up of a quarter of d that is not
// counted) and returns the checks done and the CPU used.
func measure(d time.Duration, load func(ctx context.Context, count *counter)) (result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var count counter
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load(ctx, &count) }()
	time.Sleep(d / 4)
	c0, err := cpuTime()
	if err != nil {
		cancel()
		return result{}, err
	}
	n0, f0, t0 := count.ok.Load(), count.failed.Load(), time.Now()
	maxG := 0
	for end := t0.Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		maxG = max(maxG, runtime.NumGoroutine())
	}
	c1, err := cpuTime()
	n1, f1, wall := count.ok.Load(), count.failed.Load(), time.Since(t0)
	cancel()
	wg.Wait()
	if err != nil {
		return result{}, err
	}
	return result{checks: n1 - n0, failed: f1 - f0, wall: wall, cpu: c1 - c0, maxGoroutines: maxG}, nil
}

// naive dials at rate, one goroutine per check; a 10ms ticker releases the
// checks due since the last tick, so dropped ticks do not lower the rate.
func naive(ctx context.Context, addrs []string, rate int, count *counter) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	start, issued := time.Now(), int64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * float64(rate))
		for ; issued < due; issued++ {
			addr := addrs[issued%int64(len(addrs))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					count.failed.Add(1)
					return
				}
				c.Close()
				count.ok.Add(1)
			}()
		}
	}
}

// runGovs runs the real Runner: checkers TCP_CHECKs with delay_loop
// checkers/rate, so together they probe rate times a second.
func runGovs(ctx context.Context, addrs []string, rate, checkers, workers int, count *counter) {
	loop := time.Duration(float64(time.Second) * float64(checkers) / float64(rate))
	var rss []check.RealServer
	for i := range checkers {
		ap := netip.MustParseAddrPort(addrs[i%len(addrs)])
		rss = append(rss, check.RealServer{Addr: ap, Weight: 1, Checkers: []check.Spec{{Type: check.TCP, DelayLoop: loop}}})
	}
	r, err := check.NewRunner([]check.VirtualServer{{Name: "bench", RealServers: rss}}, check.Options{
		Workers: workers,
		Log:     slog.New(slog.DiscardHandler),
		OnResult: func(_, _, _ int, res state.Result) {
			if res.OK {
				count.ok.Add(1)
			} else {
				count.failed.Add(1)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "checks:", err)
		return
	}
	r.Start(ctx)
	<-ctx.Done()
	r.Stop()
}

// startListener re-executes this program as the listener and returns its
// addresses and a function that stops it.
func startListener() ([]string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find executable: %w", err)
	}
	cmd := exec.Command(self, "-serve")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start listener: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("read listener address: %w", err)
	}
	return strings.Fields(line), stop, nil
}

// listen accepts and closes connections on several loopback ports until
// killed. Several ports keep TIME_WAIT from exhausting the ephemeral ports:
// a 4-tuple only blocks its own destination.
func listen(out io.Writer) error {
	var addrs []string
	errs := make(chan error, listenPorts)
	for range listenPorts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		addrs = append(addrs, l.Addr().String())
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					errs <- fmt.Errorf("accept: %w", err)
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Fprintln(out, strings.Join(addrs, " "))
	return <-errs
}
