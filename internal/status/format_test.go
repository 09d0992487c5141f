package status

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/govs/govs/internal/config"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write golden: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// sampleSnapshot is a director with the scenario's DR service (persistent,
// one server failed and inhibited to weight 0), a UDP service with a
// persistence mask, IPv6, fwmark and SCTP services, and a pair of VRRP
// instances.
func sampleSnapshot() Snapshot {
	a := netip.MustParseAddr
	ap := netip.MustParseAddrPort
	return Snapshot{
		Time:          time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC),
		Version:       "1.0.0",
		ConnTableSize: 65536,
		Services: []Service{
			{
				Protocol: UDP, VIP: a("198.18.0.100"), Port: 53, Scheduler: "wrr",
				Persistent: 300 * time.Second, PersistenceBits: 24,
				Reals: []Real{
					{Addr: a("198.18.0.12"), Port: 53, Weight: 2, InactConn: 7, Healthy: true},
				},
			},
			{
				Protocol: TCP, VIP: a("198.18.0.100"), Port: 80, Scheduler: "rr", Persistent: 50 * time.Second,
				Stats: Counters{Conns: 123456789, InPkts: 98765432109, InBytes: 123456789012345, OutBytes: 0},
				Rates: Rates{CPS: 120, InPPS: 4500, InBPS: 250_000_000},
				Reals: []Real{
					{Addr: a("198.18.0.12"), Port: 80, Weight: 0, ActiveConn: 3, InactConn: 10, Healthy: false,
						Stats: Counters{Conns: 61728394, InPkts: 49382716054, InBytes: 61728394506172},
						Rates: Rates{CPS: 60, InPPS: 2250, InBPS: 125_000_000}},
					{Addr: a("198.18.0.11"), Port: 80, Weight: 1, ActiveConn: 1234, InactConn: 56, PersistConns: 17, Healthy: true,
						Stats: Counters{Conns: 61728395, InPkts: 49382716055, InBytes: 61728394506173},
						Rates: Rates{CPS: 60, InPPS: 2250, InBPS: 125_000_000}},
				},
			},
			{
				Protocol: TCP, VIP: a("2001:db8::100"), Port: 443, Scheduler: "mh",
				Persistent: 60 * time.Second, PersistenceBits: 64,
				Stats: Counters{Conns: 5, InPkts: 50, InBytes: 5000},
				Reals: []Real{
					{Addr: a("2001:db8::11"), Port: 443, Method: Tunnel, Weight: 100, ActiveConn: 5, Healthy: true,
						Stats: Counters{Conns: 5, InPkts: 50, InBytes: 5000}},
				},
			},
			{
				Fwmark: 1, Scheduler: "wlc", OnePacket: true,
				Reals: []Real{
					{Addr: a("198.18.0.13"), Port: 0, Method: Masq, Weight: 3, Healthy: true,
						Stats: Counters{Conns: 1, InPkts: 2, OutPkts: 3, InBytes: 4, OutBytes: 5}},
				},
			},
			{Fwmark: 2, IPv6: true, Scheduler: "sh"},
			{Protocol: SCTP, VIP: a("198.18.0.100"), Port: 3868, Scheduler: "lc"},
		},
		VRRP: []VRRPInstance{
			{Name: "VI_1", Interface: "eth0", VRID: 51, State: StateMaster, Priority: 100, EffectivePriority: 100,
				VIPs: []netip.Addr{a("198.18.0.100")}, Master: a("198.18.0.10")},
			{Name: "VI_6", Interface: "eth1", VRID: 52, State: StateBackup, Priority: 150, EffectivePriority: 130,
				VIPs: []netip.Addr{a("2001:db8::100"), a("198.18.0.101")}, Master: a("198.18.0.20")},
		},
		Connections: []Connection{
			{Protocol: TCP, Client: ap("203.0.113.7:51234"), Virtual: ap("198.18.0.100:80"), Real: ap("198.18.0.11:80"),
				State: "ESTABLISHED", Expires: 14*time.Minute + 58*time.Second},
			{Protocol: UDP, Client: ap("203.0.113.8:5353"), Virtual: ap("198.18.0.100:53"), Real: ap("198.18.0.12:53"),
				State: "UDP", Expires: 4*time.Minute + 59*time.Second + 600*time.Millisecond},
			{Protocol: TCP, Client: ap("[2001:db8:1::7]:40000"), Virtual: ap("[2001:db8::100]:443"), Real: ap("[2001:db8::11]:443"),
				State: "SYN_RECV", Expires: 59 * time.Second},
			{Protocol: TCP, Client: ap("203.0.113.9:1024"), Virtual: ap("198.18.0.100:80"), Real: ap("198.18.0.12:80"),
				State: "FIN_WAIT", Expires: 125 * time.Minute},
		},
		Totals: Counters{Conns: 123456795, InPkts: 98765432161, OutPkts: 3, InBytes: 123456789017349, OutBytes: 5},
		Drops:  map[string]uint64{"no_service": 17, "malformed": 2},
	}
}

func TestFormatGolden(t *testing.T) {
	tests := []struct {
		golden string
		snap   Snapshot
		opt    FormatOptions
	}{
		{"list.golden", sampleSnapshot(), FormatOptions{}},
		// ipvsadm's own first line, for scripts that parse ipvsadm -L -n.
		{"list-ipvsadm.golden", sampleSnapshot(), FormatOptions{IPVSHeader: true}},
		{"stats.golden", sampleSnapshot(), FormatOptions{View: ViewStats}},
		{"stats-exact.golden", sampleSnapshot(), FormatOptions{View: ViewStats, Exact: true}},
		{"rate.golden", sampleSnapshot(), FormatOptions{View: ViewRate}},
		{"thresholds.golden", sampleSnapshot(), FormatOptions{View: ViewThresholds}},
		{"persistent-conn.golden", sampleSnapshot(), FormatOptions{View: ViewPersistentConn}},
		{"connections.golden", sampleSnapshot(), FormatOptions{View: ViewConnections}},
		{"empty.golden", Snapshot{}, FormatOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Format(&buf, tt.snap, tt.opt); err != nil {
				t.Fatalf("Format: %v", err)
			}
			checkGolden(t, tt.golden, buf.Bytes())
		})
	}
}

// TestFormatKeepalivedGolden: govs save writes keepalived.conf blocks that
// govs check reads back (TestSaveReadsBack in cmd/govs).
func TestFormatKeepalivedGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := FormatKeepalived(&buf, sampleSnapshot()); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "save-keepalived.golden", buf.Bytes())
	// The configuration parser reads it back without an error.
	_, diags := config.ParseString("saved.conf", buf.String(), config.Options{})
	for _, d := range diags.Errors() {
		t.Errorf("saved file does not parse: %v", d)
	}
}

func TestFormatJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := FormatJSON(&buf, sampleSnapshot()); err != nil {
		t.Fatalf("FormatJSON: %v", err)
	}
	checkGolden(t, "snapshot.json.golden", buf.Bytes())
}

func TestJSONRoundTrip(t *testing.T) {
	want := sampleSnapshot()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got Snapshot
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	b2, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("marshal again: %v", err)
	}
	if !bytes.Equal(b, b2) {
		t.Errorf("round trip changed the snapshot:\n%s\n%s", b, b2)
	}
	if !got.Time.Equal(want.Time) || got.Services[1].Persistent != want.Services[1].Persistent ||
		got.Services[2].Reals[0].Method != Tunnel || got.Connections[2].Client != want.Connections[2].Client {
		t.Errorf("round trip lost fields: %+v", got)
	}
}

func TestLargeNum(t *testing.T) {
	tests := []struct {
		n     uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99_999_999, false, " 99999999"},
		{100_000_000, false, "  100000K"},
		{999_999_999, false, "  999999K"},
		{1_000_000_000, false, "    1000M"},
		{99_999_999_999, false, "   99999M"},
		{100_000_000_000, false, "     100G"},
		{99_999_999_999_999, false, "   99999G"},
		{100_000_000_000_000, false, "     100T"},
		{18446744073709551615, false, "18446744T"},
		{5, true, "        5"},
		{123456789012, true, " 123456789012"},
	}
	for _, tt := range tests {
		if got := largeNum(tt.n, tt.exact); got != tt.want {
			t.Errorf("largeNum(%d, %v) = %q, want %q", tt.n, tt.exact, got, tt.want)
		}
	}
}

// TestColumnsAlign checks the property the golden files are meant to pin:
// every real server line puts its columns where the title puts their heads.
func TestColumnsAlign(t *testing.T) {
	var buf bytes.Buffer
	if err := Format(&buf, sampleSnapshot(), FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	title := lines[2]
	fwd := strings.Index(title, "Forward")
	if fwd != 34 {
		t.Fatalf("Forward column at %d, want 34 (ipvsadm's)", fwd)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "  -> 198.") && !strings.HasPrefix(l[fwd:], "Route") && !strings.HasPrefix(l[fwd:], "Masq") {
			t.Errorf("forward method not under its head in %q", l)
		}
	}
}

func TestProtocolMethodText(t *testing.T) {
	for _, p := range []Protocol{TCP, UDP, SCTP} {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var q Protocol
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("protocol %v round trip: %v %v", p, q, err)
		}
	}
	if _, err := Protocol(99).MarshalText(); err == nil {
		t.Error("marshal of unknown protocol: want error")
	}
	var p Protocol
	if err := p.UnmarshalText([]byte("ICMP")); err == nil {
		t.Error("unmarshal ICMP: want error")
	}
	for in, want := range map[string]Method{"DR": Route, "Route": Route, "tun": Tunnel, "NAT": Masq, "Masq": Masq, "FNAT": FullNat, "FullNat": FullNat} {
		var m Method
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("method %q = %v, %v; want %v", in, m, err, want)
		}
	}
	var m Method
	if err := m.UnmarshalText([]byte("XDP")); err == nil {
		t.Error("unmarshal XDP: want error")
	}
}

func TestPersistenceMask(t *testing.T) {
	v4 := netip.MustParseAddr("198.18.0.100")
	v6 := netip.MustParseAddr("2001:db8::100")
	tests := []struct {
		vip  netip.Addr
		bits int
		want string
	}{
		{v4, 0, ""},
		{v4, -1, ""},
		{v4, 32, ""},
		{v4, 24, "255.255.255.0"},
		{v4, 20, "255.255.240.0"},
		{v4, 1, "128.0.0.0"},
		{v6, 0, ""},
		{v6, 128, ""},
		{v6, 64, "64"},
		{v6, 48, "48"},
	}
	for _, tt := range tests {
		s := Service{Protocol: TCP, VIP: tt.vip, Port: 80, PersistenceBits: tt.bits}
		if got := persistenceMask(s); got != tt.want {
			t.Errorf("persistenceMask(%v /%d) = %q, want %q", tt.vip, tt.bits, got, tt.want)
		}
	}
}

// TestFormatSave: the save view is ipvsadm -S -n's commands, with the
// protocol, scheduler flags, persistence mask, ops and each real server's
// forwarding method.
func TestFormatSave(t *testing.T) {
	s := Snapshot{Services: []Service{
		{Protocol: TCP, VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Scheduler: "mh", SchedFlags: []string{"mh-port"},
			Persistent: 300 * time.Second, PersistenceBits: 24,
			Reals: []Real{{Addr: netip.MustParseAddr("198.18.0.11"), Port: 80, Weight: 2}, {Addr: netip.MustParseAddr("198.18.0.12"), Port: 80, Method: Tunnel, Weight: 0}}},
		{Protocol: UDP, VIP: netip.MustParseAddr("2001:db8::100"), Port: 53, Scheduler: "rr", OnePacket: true,
			Reals: []Real{{Addr: netip.MustParseAddr("2001:db8::11"), Port: 53, Weight: 1}}},
	}}
	var b strings.Builder
	if err := Format(&b, s, FormatOptions{View: ViewSave}); err != nil {
		t.Fatal(err)
	}
	want := `-A -t 198.18.0.100:80 -s mh -b mh-port -p 300 -M 255.255.255.0
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2
-a -t 198.18.0.100:80 -r 198.18.0.12:80 -i -w 0
-A -u [2001:db8::100]:53 -s rr -o
-a -u [2001:db8::100]:53 -r [2001:db8::11]:53 -g -w 1
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
