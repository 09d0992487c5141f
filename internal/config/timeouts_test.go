package config

import (
	"testing"
	"time"
)

func TestLVSTimeouts(t *testing.T) {
	runCases(t, []caseT{
		{
			name: "all three",
			src:  "global_defs {\n  lvs_timeouts tcp 7200 tcpfin 60 udp 30\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "LVSTimeouts", c.Global.LVSTimeouts, LVSTimeouts{TCP: 7200 * time.Second, TCPFin: 60 * time.Second, UDP: 30 * time.Second})
			},
		},
		{
			name: "one",
			src:  "global_defs {\n  lvs_timeouts udp 5\n}\n",
			check: func(t *testing.T, c *Config) {
				eq(t, "LVSTimeouts", c.Global.LVSTimeouts, LVSTimeouts{UDP: 5 * time.Second})
			},
		},
		{
			name: "bad",
			src:  "global_defs {\n  lvs_timeouts tcp\n  lvs_timeouts sctp 5\n  lvs_timeouts tcp 0\n  lvs_timeouts\n  lvs_timeouts tcp 5 udp\n}\n",
			diags: []string{
				"t.conf:2: lvs_timeouts: expects 2 values, got 1",
				"t.conf:3: lvs_timeouts: unknown timeout 'sctp' (want tcp, tcpfin or udp)",
				"t.conf:4: lvs_timeouts: tcp: invalid timeout '0' (want 1..2147483 seconds)",
				"t.conf:5: lvs_timeouts: expects 2 values, got 0",
				"t.conf:6: lvs_timeouts: want pairs of tcp|tcpfin|udp and seconds",
			},
		},
	})
}
