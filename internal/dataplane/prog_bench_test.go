package dataplane

import (
	"testing"

	"github.com/govs/govs/internal/sched"
)

// BenchmarkProgram measures the balancer alone per packet (BPF_PROG_TEST_RUN
// with Repeat): an established flow (not a SYN: a SYN alone stays in the
// embryonic-flow table), a retransmitted SYN, and a packet for a port no
// service has.

func BenchmarkProgram(b *testing.B) {
	for _, tc := range []struct {
		name string
		svc  Service
		in   pktSpec
	}{
		{"established mh", svc4(sched.Maglev, 80, reals4(1, 1, 1)...), ack(tcp4(1000, 80))},
		// A bare SYN repeated: the embryonic-flow table's path (a
		// retransmitted SYN).
		{"embryonic mh", svc4(sched.Maglev, 80, reals4(1, 1, 1)...), tcp4(1000, 80)},
		{"passthrough", svc4(sched.Maglev, 80, reals4(1, 1, 1)...), ack(tcp4(1000, 81))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := openDP(b, state(tc.svc))
			in := frame(b, tc.in)
			runOut(b, d.program(), in)
			_, per, err := d.program().Benchmark(in, 1_000_000, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/packet")
			b.ReportMetric(0, "ns/op")
		})
	}
}
