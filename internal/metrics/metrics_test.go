package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/govs/govs/internal/status"
)

func snapshot() status.Snapshot {
	a := netip.MustParseAddr
	return status.Snapshot{
		Version:         "v1.0.0-test",
		ConnTableSize:   65536,
		EmbryoTableSize: 16384,
		Reloads:         status.Reloads{Succeeded: 3, Failed: 1, LastOK: false, LastSuccess: time.Unix(1796140800, 0), LastError: "bad"},
		Packets:         map[string]uint64{"nat_replies": 12, "tun_too_big": 1},
		Sync: &status.ConnSync{Instance: "VI_1", Interface: "eth0", Complete: true, MessagesSent: 5, EntriesSent: 300,
			MessagesReceived: 7, EntriesReceived: 400, Inserted: 350,
			Rejected:     map[string]uint64{"while_master": 1, "unauthenticated": 2, "replayed": 0, "other": 4},
			RequestsSent: 1, RequestsReceived: 2, Dumps: 2, NewConnections: 90, NewConnectionsLost: 3, Scans: 6},
		Totals: status.Counters{Conns: 30, InPkts: 300, InBytes: 30000},
		Services: []status.Service{
			{
				Protocol: status.TCP, VIP: a("198.18.0.100"), Port: 80, Scheduler: "rr",
				Stats: status.Counters{Conns: 20, InPkts: 200, InBytes: 20000},
				Reals: []status.Real{
					{Addr: a("198.18.0.11"), Port: 80, Weight: 1, ActiveConn: 2, InactConn: 5, Healthy: true,
						Stats: status.Counters{Conns: 20, InPkts: 200, InBytes: 20000}},
					{Addr: a("198.18.0.12"), Port: 80, Weight: 0, Healthy: false},
				},
				// Taken out by its checks without inhibit_on_failure.
				Removed: []status.Real{{Addr: a("198.18.0.13"), Port: 80}},
			},
			{
				Fwmark: 10, Scheduler: "wlc",
				Stats: status.Counters{Conns: 10, InPkts: 100, OutPkts: 90, InBytes: 10000, OutBytes: 9000},
				Reals: []status.Real{
					{Addr: a("2001:db8::11"), Port: 0, Method: status.Masq, Weight: 3, ActiveConn: 1, Healthy: true,
						Stats: status.Counters{Conns: 10, InPkts: 100, OutPkts: 90, InBytes: 10000, OutBytes: 9000}},
				},
			},
		},
		VRRP: []status.VRRPInstance{
			{Name: "VI_1", Interface: "eth0", VRID: 51, State: status.StateBackup, Priority: 100, EffectivePriority: 90,
				Stats: status.VRRPStats{AdvertsSent: 12, AdvertsReceived: 300, BecameMaster: 2, ReleasedMaster: 2, PriorityZeroReceived: 1,
					Dropped: map[string]uint64{"invalid_password": 4, "decode_bad_checksum": 1}}},
		},
		Drops: map[string]uint64{"no_service": 7, "malformed": 1},
	}
}

func TestCollectorNodeExporterMetrics(t *testing.T) {
	const want = `
# HELP govs_ipvs_connections_total The total number of connections made.
# TYPE govs_ipvs_connections_total counter
govs_ipvs_connections_total 30
# HELP govs_ipvs_incoming_bytes_total The total amount of incoming data.
# TYPE govs_ipvs_incoming_bytes_total counter
govs_ipvs_incoming_bytes_total 30000
# HELP govs_ipvs_incoming_packets_total The total number of incoming packets.
# TYPE govs_ipvs_incoming_packets_total counter
govs_ipvs_incoming_packets_total 300
# HELP govs_ipvs_outgoing_bytes_total The total amount of outgoing data (zero in direct routing: replies bypass the director).
# TYPE govs_ipvs_outgoing_bytes_total counter
govs_ipvs_outgoing_bytes_total 0
# HELP govs_ipvs_outgoing_packets_total The total number of outgoing packets (zero in direct routing: replies bypass the director).
# TYPE govs_ipvs_outgoing_packets_total counter
govs_ipvs_outgoing_packets_total 0
# HELP govs_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE govs_ipvs_backend_connections_active gauge
govs_ipvs_backend_connections_active{local_address="",local_mark="0000000A",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="0"} 1
govs_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.11",remote_port="80"} 2
govs_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80"} 0
# HELP govs_ipvs_backend_connections_inactive The current inactive connections by local and remote address.
# TYPE govs_ipvs_backend_connections_inactive gauge
govs_ipvs_backend_connections_inactive{local_address="",local_mark="0000000A",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="0"} 0
govs_ipvs_backend_connections_inactive{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.11",remote_port="80"} 5
govs_ipvs_backend_connections_inactive{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80"} 0
# HELP govs_ipvs_backend_weight The current backend weight by local and remote address.
# TYPE govs_ipvs_backend_weight gauge
govs_ipvs_backend_weight{local_address="",local_mark="0000000A",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="0"} 3
govs_ipvs_backend_weight{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.11",remote_port="80"} 1
govs_ipvs_backend_weight{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80"} 0
`
	c := NewCollector(snapshot)
	err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"govs_ipvs_connections_total", "govs_ipvs_incoming_packets_total", "govs_ipvs_outgoing_packets_total",
		"govs_ipvs_incoming_bytes_total", "govs_ipvs_outgoing_bytes_total",
		"govs_ipvs_backend_connections_active", "govs_ipvs_backend_connections_inactive", "govs_ipvs_backend_weight")
	if err != nil {
		t.Error(err)
	}
}

func TestCollectorGovsMetrics(t *testing.T) {
	const want = `
# HELP govs_build_info Always 1; the labels say which govs runs.
# TYPE govs_build_info gauge
govs_build_info{version="v1.0.0-test"} 1
# HELP govs_config_last_reload_success_timestamp_seconds When the running configuration was loaded, in seconds since the Unix epoch.
# TYPE govs_config_last_reload_success_timestamp_seconds gauge
govs_config_last_reload_success_timestamp_seconds 1.7961408e+09
# HELP govs_config_last_reload_successful Whether the latest configuration load, at start or on reload, succeeded (1) or not (0).
# TYPE govs_config_last_reload_successful gauge
govs_config_last_reload_successful 0
# HELP govs_config_reloads_total Configuration reloads by result (success, failure); a failed one leaves the running configuration in place.
# TYPE govs_config_reloads_total counter
govs_config_reloads_total{result="failure"} 1
govs_config_reloads_total{result="success"} 3
# HELP govs_connection_table_entries Connections in the data plane's connection table (active plus inactive over all real servers).
# TYPE govs_connection_table_entries gauge
govs_connection_table_entries 8
# HELP govs_connection_table_size The capacity of the data plane's connection table.
# TYPE govs_connection_table_size gauge
govs_connection_table_size 65536
# HELP govs_dataplane_drops_total Packets the data plane dropped, by reason.
# TYPE govs_dataplane_drops_total counter
govs_dataplane_drops_total{reason="malformed"} 1
govs_dataplane_drops_total{reason="no_service"} 7
# HELP govs_realserver_up Whether the health checks pass for the real server (1) or not (0).
# TYPE govs_realserver_up gauge
govs_realserver_up{local_address="",local_mark="0000000A",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="0"} 1
govs_realserver_up{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.11",remote_port="80"} 1
govs_realserver_up{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80"} 0
govs_realserver_up{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.13",remote_port="80"} 0
# HELP govs_vrrp_effective_priority The VRRP instance's advertised priority after tracking adjustments.
# TYPE govs_vrrp_effective_priority gauge
govs_vrrp_effective_priority{iname="VI_1"} 90
# HELP govs_vrrp_adverts_dropped_total VRRP adverts the instance dropped, by reason (receive rules, decoding), since it started.
# TYPE govs_vrrp_adverts_dropped_total counter
govs_vrrp_adverts_dropped_total{iname="VI_1",reason="decode_bad_checksum"} 1
govs_vrrp_adverts_dropped_total{iname="VI_1",reason="invalid_password"} 4
# HELP govs_vrrp_adverts_total VRRP adverts the instance sent or received (and accepted past the receive rules), since it started.
# TYPE govs_vrrp_adverts_total counter
govs_vrrp_adverts_total{direction="received",iname="VI_1"} 300
govs_vrrp_adverts_total{direction="sent",iname="VI_1"} 12
# HELP govs_vrrp_master_transitions_total Times the instance became MASTER (to=master) or left MASTER (to=other), since it started.
# TYPE govs_vrrp_master_transitions_total counter
govs_vrrp_master_transitions_total{iname="VI_1",to="master"} 2
govs_vrrp_master_transitions_total{iname="VI_1",to="other"} 2
# HELP govs_vrrp_priority_zero_adverts_total Priority 0 adverts (a master stepping down) the instance sent or received, since it started.
# TYPE govs_vrrp_priority_zero_adverts_total counter
govs_vrrp_priority_zero_adverts_total{direction="received",iname="VI_1"} 1
govs_vrrp_priority_zero_adverts_total{direction="sent",iname="VI_1"} 0
# HELP govs_vrrp_priority The VRRP instance's configured priority.
# TYPE govs_vrrp_priority gauge
govs_vrrp_priority{iname="VI_1"} 100
# HELP govs_vrrp_state The VRRP instance's state: 1 for the series whose state label is the current state, 0 for the others.
# TYPE govs_vrrp_state gauge
govs_vrrp_state{iname="VI_1",interface="eth0",state="BACKUP",vrid="51"} 1
govs_vrrp_state{iname="VI_1",interface="eth0",state="FAULT",vrid="51"} 0
govs_vrrp_state{iname="VI_1",interface="eth0",state="INIT",vrid="51"} 0
govs_vrrp_state{iname="VI_1",interface="eth0",state="MASTER",vrid="51"} 0
# HELP govs_embryo_table_size The capacity of the data plane's embryonic-flow table (TCP flows of which only the SYN was seen).
# TYPE govs_embryo_table_size gauge
govs_embryo_table_size 16384
# HELP govs_ipvs_service_connections_total The total number of connections made by virtual service.
# TYPE govs_ipvs_service_connections_total counter
govs_ipvs_service_connections_total{local_address="",local_mark="0000000A",local_port="0",proto="FWM"} 10
govs_ipvs_service_connections_total{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP"} 20
# HELP govs_ipvs_backend_outgoing_bytes_total The total amount of outgoing data (zero in direct routing: replies bypass the director) by virtual service and real server.
# TYPE govs_ipvs_backend_outgoing_bytes_total counter
govs_ipvs_backend_outgoing_bytes_total{local_address="",local_mark="0000000A",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="0"} 9000
govs_ipvs_backend_outgoing_bytes_total{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.11",remote_port="80"} 0
govs_ipvs_backend_outgoing_bytes_total{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80"} 0
# HELP govs_dataplane_packets_total Packets the data plane handled outside the services' counters, by what it did (pass_* went to the kernel, and why; icmp_forwarded, fragments_forwarded, nat_replies, nat_icmp, nat_unlearnt, tun_too_big, fwmark_miss).
# TYPE govs_dataplane_packets_total counter
govs_dataplane_packets_total{counter="nat_replies"} 12
govs_dataplane_packets_total{counter="tun_too_big"} 1
# HELP govs_connsync_complete Whether this director holds every connection of the master (a dump answered its request): 1 or 0.
# TYPE govs_connsync_complete gauge
govs_connsync_complete{iname="VI_1"} 1
# HELP govs_connsync_entries_total Connections sent or received in sync messages, since it started.
# TYPE govs_connsync_entries_total counter
govs_connsync_entries_total{direction="received",iname="VI_1"} 400
govs_connsync_entries_total{direction="sent",iname="VI_1"} 300
# HELP govs_connsync_rejected_total Sync messages dropped, by reason (while_master, unauthenticated, replayed, other).
# TYPE govs_connsync_rejected_total counter
govs_connsync_rejected_total{iname="VI_1",reason="other"} 4
govs_connsync_rejected_total{iname="VI_1",reason="replayed"} 0
govs_connsync_rejected_total{iname="VI_1",reason="unauthenticated"} 2
govs_connsync_rejected_total{iname="VI_1",reason="while_master"} 1
# HELP govs_connsync_new_connections_lost_total New connections the data plane could not record (a full ring); table scans send them later.
# TYPE govs_connsync_new_connections_lost_total counter
govs_connsync_new_connections_lost_total{iname="VI_1"} 3
# HELP govs_connsync_dumps_total Dumps of the whole connection table sent in answer to requests.
# TYPE govs_connsync_dumps_total counter
govs_connsync_dumps_total{iname="VI_1"} 2
`
	c := NewCollector(snapshot)
	err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"govs_build_info", "govs_config_last_reload_success_timestamp_seconds", "govs_config_last_reload_successful", "govs_config_reloads_total", "govs_connection_table_entries", "govs_connection_table_size", "govs_dataplane_drops_total", "govs_embryo_table_size",
		"govs_realserver_up", "govs_vrrp_effective_priority", "govs_vrrp_priority", "govs_vrrp_state",
		"govs_vrrp_adverts_dropped_total", "govs_vrrp_adverts_total", "govs_vrrp_master_transitions_total", "govs_vrrp_priority_zero_adverts_total",
		"govs_ipvs_service_connections_total", "govs_ipvs_backend_outgoing_bytes_total",
		"govs_dataplane_packets_total", "govs_connsync_complete", "govs_connsync_entries_total", "govs_connsync_rejected_total", "govs_connsync_new_connections_lost_total", "govs_connsync_dumps_total")
	if err != nil {
		t.Error(err)
	}
}

// TestCollectorLint runs client_golang's metric linter (naming, units,
// counters ending in _total) over everything the collector exports.
func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(NewCollector(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestCollectorDuplicatesAndUnknownState(t *testing.T) {
	s := snapshot()
	// The same real server listed twice (a reload race in the daemon) must
	// not make the registry reject the scrape; it is summed, like
	// node_exporter sums backends that share labels.
	s.Services[0].Reals = append(s.Services[0].Reals, s.Services[0].Reals[0])
	s.VRRP[0].State = "STOP"
	c := NewCollector(func() status.Snapshot { return s })
	if n := testutil.CollectAndCount(c, "govs_ipvs_backend_weight"); n != 3 {
		t.Errorf("backend_weight series = %d, want 3", n)
	}
	const want = `
# HELP govs_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE govs_ipvs_backend_connections_active gauge
govs_ipvs_backend_connections_active{local_address="",local_mark="0000000A",local_port="0",proto="FWM",remote_address="2001:db8::11",remote_port="0"} 1
govs_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.11",remote_port="80"} 4
govs_ipvs_backend_connections_active{local_address="198.18.0.100",local_mark="",local_port="80",proto="TCP",remote_address="198.18.0.12",remote_port="80"} 0
# HELP govs_vrrp_state The VRRP instance's state: 1 for the series whose state label is the current state, 0 for the others.
# TYPE govs_vrrp_state gauge
govs_vrrp_state{iname="VI_1",interface="eth0",state="BACKUP",vrid="51"} 0
govs_vrrp_state{iname="VI_1",interface="eth0",state="FAULT",vrid="51"} 0
govs_vrrp_state{iname="VI_1",interface="eth0",state="INIT",vrid="51"} 0
govs_vrrp_state{iname="VI_1",interface="eth0",state="MASTER",vrid="51"} 0
govs_vrrp_state{iname="VI_1",interface="eth0",state="STOP",vrid="51"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"govs_ipvs_backend_connections_active", "govs_vrrp_state"); err != nil {
		t.Error(err)
	}
}

func TestServeHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, Routes(snapshot)) }()

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics: %s", resp.Status)
	}
	for _, want := range []string{
		`govs_vrrp_state{iname="VI_1",interface="eth0",state="BACKUP",vrid="51"} 1`,
		`govs_ipvs_connections_total 30`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The JSON API: the status snapshot, read-only.
	resp, err = client.Get("http://" + ln.Addr().String() + APIStatusPath)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var got status.Snapshot
	derr := json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	want := snapshot()
	if derr != nil || resp.Header.Get("Content-Type") != "application/json" || got.Version != want.Version ||
		len(got.Services) != len(want.Services) || len(got.VRRP) != len(want.VRRP) || got.Sync == nil || got.Sync.Inserted != want.Sync.Inserted {
		t.Errorf("GET %s: %s %q, decoded %+v (%v)", APIStatusPath, resp.Status, resp.Header.Get("Content-Type"), got, derr)
	}
	if resp, err := client.Post("http://"+ln.Addr().String()+APIStatusPath, "application/json", strings.NewReader("{}")); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %s, want 405 (the API is read-only)", APIStatusPath, resp.Status)
		}
	}
	if resp, err := client.Get("http://" + ln.Addr().String() + "/nope"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /nope: %s, want 404", resp.Status)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeListener: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeListener did not return after cancel")
	}
}

func TestServeBadAddress(t *testing.T) {
	if err := Serve(context.Background(), "127.0.0.1:notaport", Handler(snapshot)); err == nil {
		t.Fatal("Serve on a bad address succeeded")
	}
}

func TestCollectorBGP(t *testing.T) {
	s := snapshot()
	s.BGP = &status.BGP{LocalAS: 65001, RouterID: netip.MustParseAddr("198.18.0.2"),
		Peers: []status.BGPPeer{
			{Addr: netip.MustParseAddr("198.18.0.1"), RemoteAS: 65000, State: "established", Established: true},
			{Addr: netip.MustParseAddr("198.18.0.254"), RemoteAS: 65000, State: "active"},
		},
		Announced: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/32")}}
	c := NewCollector(func() status.Snapshot { return s })
	const want = `
# HELP govs_bgp_announced 1 for each prefix (a VIP's host route) the BGP speaker announces now.
# TYPE govs_bgp_announced gauge
govs_bgp_announced{prefix="198.18.0.100/32"} 1
# HELP govs_bgp_session_up Whether the BGP session with the neighbor is established (1) or not (0).
# TYPE govs_bgp_session_up gauge
govs_bgp_session_up{neighbor="198.18.0.1",remote_as="65000"} 1
govs_bgp_session_up{neighbor="198.18.0.254",remote_as="65000"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "govs_bgp_announced", "govs_bgp_session_up"); err != nil {
		t.Error(err)
	}
}

func TestCollectorCheckers(t *testing.T) {
	s := snapshot()
	s.Services = s.Services[:1]
	s.Services[0].Reals = s.Services[0].Reals[:1]
	s.Services[0].Removed = nil
	r := &s.Services[0].Reals[0]
	r.CheckStats = []status.CheckerStats{{Name: "TCP_CHECK 198.18.0.11:80", Up: true, Checked: true, Successes: 9, Failures: 1, Transitions: 2,
		LastLatency: 2 * time.Millisecond, LatencyBuckets: []time.Duration{time.Millisecond, 10 * time.Millisecond},
		LatencyCounts: []uint64{4, 10}, LatencySum: 30 * time.Millisecond}}
	c := NewCollector(func() status.Snapshot { return s })
	labels := fmt.Sprintf(`checker="TCP_CHECK 198.18.0.11:80",local_address="%s",local_mark="",local_port="80",proto="TCP",remote_address="%s",remote_port="80"`, s.Services[0].VIP, r.Addr)
	want := `
# HELP govs_checker_up Whether the health checker passes (1) or not (0).
# TYPE govs_checker_up gauge
govs_checker_up{` + labels + `} 1
# HELP govs_checker_results_total Probe results of the health checker, by result (success, failure).
# TYPE govs_checker_results_total counter
govs_checker_results_total{` + labels + `,result="failure"} 1
govs_checker_results_total{` + labels + `,result="success"} 9
# HELP govs_checker_transitions_total Times the health checker went up or down.
# TYPE govs_checker_transitions_total counter
govs_checker_transitions_total{` + labels + `} 2
# HELP govs_checker_probe_duration_seconds How long the health checker's probes took.
# TYPE govs_checker_probe_duration_seconds histogram
govs_checker_probe_duration_seconds_bucket{` + labels + `,le="0.001"} 4
govs_checker_probe_duration_seconds_bucket{` + labels + `,le="0.01"} 10
govs_checker_probe_duration_seconds_bucket{` + labels + `,le="+Inf"} 10
govs_checker_probe_duration_seconds_sum{` + labels + `} 0.03
govs_checker_probe_duration_seconds_count{` + labels + `} 10
# HELP govs_checker_last_probe_duration_seconds How long the health checker's latest probe took.
# TYPE govs_checker_last_probe_duration_seconds gauge
govs_checker_last_probe_duration_seconds{` + labels + `} 0.002
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "govs_checker_up", "govs_checker_results_total",
		"govs_checker_transitions_total", "govs_checker_probe_duration_seconds", "govs_checker_last_probe_duration_seconds"); err != nil {
		t.Error(err)
	}
}

// TestConnectionsStream: /api/v1/connections writes one JSON object per
// connection as the table is walked, and a walk that fails ends the
// stream with an error line.
func TestConnectionsStream(t *testing.T) {
	conns := []status.Connection{
		{Protocol: status.TCP, Client: netip.MustParseAddrPort("203.0.113.10:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"),
			Real: netip.MustParseAddrPort("198.18.0.11:80"), State: "ESTABLISHED", Expires: time.Minute},
		{Protocol: status.UDP, Client: netip.MustParseAddrPort("203.0.113.11:5353"), Virtual: netip.MustParseAddrPort("198.18.0.100:53"),
			Real: netip.MustParseAddrPort("198.18.0.12:53"), State: "NONE", Expires: time.Second},
	}
	fail := false
	stream := func(fn func(status.Connection)) error {
		for _, c := range conns {
			fn(c)
		}
		if fail {
			return fmt.Errorf("table gone")
		}
		return nil
	}
	srv := httptest.NewServer(RoutesWith(snapshot, stream))
	defer srv.Close()
	get := func() []string {
		resp, err := http.Get(srv.URL + APIConnectionsPath)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("content type %q", ct)
		}
		b, _ := io.ReadAll(resp.Body)
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	lines := get()
	if len(lines) != 2 {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	for i, l := range lines {
		var c status.Connection
		if err := json.Unmarshal([]byte(l), &c); err != nil || c != conns[i] {
			t.Errorf("line %d %q: %+v, %v; want %+v", i, l, c, err, conns[i])
		}
	}
	fail = true
	if lines := get(); len(lines) != 3 || !strings.Contains(lines[2], `"error":"table gone"`) {
		t.Errorf("a failed walk: %q", lines)
	}
	// Without a stream the path does not exist.
	srv2 := httptest.NewServer(Routes(snapshot))
	defer srv2.Close()
	if resp, err := http.Get(srv2.URL + APIConnectionsPath); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("connections without a stream: %v %v", resp.StatusCode, err)
	}
}
