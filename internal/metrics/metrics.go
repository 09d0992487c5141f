// Package metrics exports a govs director's state to Prometheus. The
// collector reads a status snapshot at scrape time, so it holds no state of
// its own; the IPVS metrics are named and labelled like node_exporter's ipvs
// collector (node_ipvs_* there, govs_ipvs_* here) so dashboards and alerts
// written for LVS directors carry over.
package metrics

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/govs/govs/internal/status"
	"github.com/govs/govs/internal/webui"
)

// StatusFunc returns the director's current state; it is called once per
// scrape.
type StatusFunc func() status.Snapshot

// Label names shared with node_exporter's ipvs collector.
var (
	serviceLabels = []string{"local_address", "local_port", "proto", "local_mark"}
	backendLabels = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}
	checkerLabels = append(slices.Clone(backendLabels), "checker")
)

// counterSet describes the five IPVS counters under one prefix.
type counterSet struct {
	conns, inPkts, outPkts, inBytes, outBytes *prometheus.Desc
}

func newCounterSet(prefix, what string, labels []string) counterSet {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prefix+name, help+what+".", labels, nil)
	}
	return counterSet{
		conns:    d("connections_total", "The total number of connections made"),
		inPkts:   d("incoming_packets_total", "The total number of incoming packets"),
		outPkts:  d("outgoing_packets_total", "The total number of outgoing packets (zero in direct routing: replies bypass the director)"),
		inBytes:  d("incoming_bytes_total", "The total amount of incoming data"),
		outBytes: d("outgoing_bytes_total", "The total amount of outgoing data (zero in direct routing: replies bypass the director)"),
	}
}

func (cs counterSet) describe(ch chan<- *prometheus.Desc) {
	ch <- cs.conns
	ch <- cs.inPkts
	ch <- cs.outPkts
	ch <- cs.inBytes
	ch <- cs.outBytes
}

func (cs counterSet) collect(ch chan<- prometheus.Metric, c status.Counters, labels ...string) {
	m := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	m(cs.conns, c.Conns)
	m(cs.inPkts, c.InPkts)
	m(cs.outPkts, c.OutPkts)
	m(cs.inBytes, c.InBytes)
	m(cs.outBytes, c.OutBytes)
}

// Collector is a prometheus.Collector over a StatusFunc.
type Collector struct {
	status StatusFunc

	totals, service, backend                              counterSet
	backendActive, backendInactive, backendWeight, realUp *prometheus.Desc
	vrrpState, vrrpPriority, vrrpEffectivePriority        *prometheus.Desc
	drops, connTableSize, connTableEntries, buildInfo     *prometheus.Desc
	reloads, reloadOK, reloadSuccessTime, embryoTableSize *prometheus.Desc
	vrrpAdverts, vrrpDropped, vrrpTransitions, vrrpStop   *prometheus.Desc
	sync                                                  syncDescs
	packets                                               *prometheus.Desc
	bgpSessionUp, bgpAnnounced, bgpWithheld, bgpUpdates   *prometheus.Desc
	checkerUp, checkerResults, checkerTransitions         *prometheus.Desc
	checkerLatency, checkerLastLatency                    *prometheus.Desc
}

// syncDescs are connection synchronisation's series (lvs_sync_daemon),
// present while it runs.
type syncDescs struct {
	complete, messages, entries, inserted, rejected *prometheus.Desc
	requests, dumps, newConns, newConnsLost, scans  *prometheus.Desc
}

func newSyncDescs() syncDescs {
	l := []string{"iname"}
	dir := []string{"iname", "direction"}
	return syncDescs{
		complete: prometheus.NewDesc("govs_connsync_complete",
			"Whether this director holds every connection of the master (a dump answered its request): 1 or 0.", l, nil),
		messages: prometheus.NewDesc("govs_connsync_messages_total",
			"Connection sync messages sent or received (and accepted), since it started.", dir, nil),
		entries: prometheus.NewDesc("govs_connsync_entries_total",
			"Connections sent or received in sync messages, since it started.", dir, nil),
		inserted: prometheus.NewDesc("govs_connsync_inserted_total",
			"Received connections that were new in this director's table.", l, nil),
		rejected: prometheus.NewDesc("govs_connsync_rejected_total",
			"Sync messages dropped, by reason (while_master, unauthenticated, replayed, other).", []string{"iname", "reason"}, nil),
		requests: prometheus.NewDesc("govs_connsync_dump_requests_total",
			"Dump requests sent (by a director lacking the master's connections) or received.", dir, nil),
		dumps: prometheus.NewDesc("govs_connsync_dumps_total",
			"Dumps of the whole connection table sent in answer to requests.", l, nil),
		newConns: prometheus.NewDesc("govs_connsync_new_connections_total",
			"New connections the data plane recorded for sync to send at once.", l, nil),
		newConnsLost: prometheus.NewDesc("govs_connsync_new_connections_lost_total",
			"New connections the data plane could not record (a full ring); table scans send them later.", l, nil),
		scans: prometheus.NewDesc("govs_connsync_table_scans_total",
			"Scans of the whole connection table by the sync sender.", l, nil),
	}
}

func (s syncDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{s.complete, s.messages, s.entries, s.inserted, s.rejected, s.requests, s.dumps, s.newConns, s.newConnsLost, s.scans}
}

func (s syncDescs) collect(ch chan<- prometheus.Metric, st *status.ConnSync) {
	if st == nil {
		return
	}
	counter := func(d *prometheus.Desc, n uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), append([]string{st.Instance}, labels...)...)
	}
	ch <- prometheus.MustNewConstMetric(s.complete, prometheus.GaugeValue, boolValue(st.Complete), st.Instance)
	counter(s.messages, st.MessagesSent, "sent")
	counter(s.messages, st.MessagesReceived, "received")
	counter(s.entries, st.EntriesSent, "sent")
	counter(s.entries, st.EntriesReceived, "received")
	counter(s.inserted, st.Inserted)
	for _, reason := range sortedKeys(st.Rejected) {
		counter(s.rejected, st.Rejected[reason], reason)
	}
	counter(s.requests, st.RequestsSent, "sent")
	counter(s.requests, st.RequestsReceived, "received")
	counter(s.dumps, st.Dumps)
	counter(s.newConns, st.NewConnections)
	counter(s.newConnsLost, st.NewConnectionsLost)
	counter(s.scans, st.Scans)
}

// NewCollector returns a collector that calls fn on every scrape.
func NewCollector(fn StatusFunc) *Collector {
	return &Collector{
		status: fn,
		sync:   newSyncDescs(),
		packets: prometheus.NewDesc("govs_dataplane_packets_total",
			"Packets the data plane handled outside the services' counters, by what it did (pass_* went to the kernel, and why; icmp_forwarded, fragments_forwarded, nat_replies, nat_icmp, nat_unlearnt, tun_too_big, fwmark_miss).",
			[]string{"counter"}, nil),
		totals:  newCounterSet("govs_ipvs_", "", nil),
		service: newCounterSet("govs_ipvs_service_", " by virtual service", serviceLabels),
		backend: newCounterSet("govs_ipvs_backend_", " by virtual service and real server", backendLabels),
		backendActive: prometheus.NewDesc("govs_ipvs_backend_connections_active",
			"The current active connections by local and remote address.", backendLabels, nil),
		backendInactive: prometheus.NewDesc("govs_ipvs_backend_connections_inactive",
			"The current inactive connections by local and remote address.", backendLabels, nil),
		backendWeight: prometheus.NewDesc("govs_ipvs_backend_weight",
			"The current backend weight by local and remote address.", backendLabels, nil),
		realUp: prometheus.NewDesc("govs_realserver_up",
			"Whether the health checks pass for the real server (1) or not (0).", backendLabels, nil),
		vrrpState: prometheus.NewDesc("govs_vrrp_state",
			"The VRRP instance's state: 1 for the series whose state label is the current state, 0 for the others.",
			[]string{"iname", "interface", "vrid", "state"}, nil),
		vrrpPriority: prometheus.NewDesc("govs_vrrp_priority",
			"The VRRP instance's configured priority.", []string{"iname"}, nil),
		vrrpEffectivePriority: prometheus.NewDesc("govs_vrrp_effective_priority",
			"The VRRP instance's advertised priority after tracking adjustments.", []string{"iname"}, nil),
		buildInfo: prometheus.NewDesc("govs_build_info",
			"Always 1; the labels say which govs runs.", []string{"version"}, nil),
		drops: prometheus.NewDesc("govs_dataplane_drops_total",
			"Packets the data plane dropped, by reason.", []string{"reason"}, nil),
		connTableSize: prometheus.NewDesc("govs_connection_table_size",
			"The capacity of the data plane's connection table.", nil, nil),
		connTableEntries: prometheus.NewDesc("govs_connection_table_entries",
			"Connections in the data plane's connection table (active plus inactive over all real servers).", nil, nil),
		vrrpAdverts: prometheus.NewDesc("govs_vrrp_adverts_total",
			"VRRP adverts the instance sent or received (and accepted past the receive rules), since it started.", []string{"iname", "direction"}, nil),
		vrrpDropped: prometheus.NewDesc("govs_vrrp_adverts_dropped_total",
			"VRRP adverts the instance dropped, by reason (receive rules, decoding), since it started.", []string{"iname", "reason"}, nil),
		vrrpTransitions: prometheus.NewDesc("govs_vrrp_master_transitions_total",
			"Times the instance became MASTER (to=master) or left MASTER (to=other), since it started.", []string{"iname", "to"}, nil),
		vrrpStop: prometheus.NewDesc("govs_vrrp_priority_zero_adverts_total",
			"Priority 0 adverts (a master stepping down) the instance sent or received, since it started.", []string{"iname", "direction"}, nil),
		embryoTableSize: prometheus.NewDesc("govs_embryo_table_size",
			"The capacity of the data plane's embryonic-flow table (TCP flows of which only the SYN was seen).", nil, nil),
		reloads: prometheus.NewDesc("govs_config_reloads_total",
			"Configuration reloads by result (success, failure); a failed one leaves the running configuration in place.", []string{"result"}, nil),
		reloadOK: prometheus.NewDesc("govs_config_last_reload_successful",
			"Whether the latest configuration load, at start or on reload, succeeded (1) or not (0).", nil, nil),
		checkerUp: prometheus.NewDesc("govs_checker_up",
			"Whether the health checker passes (1) or not (0).", checkerLabels, nil),
		checkerResults: prometheus.NewDesc("govs_checker_results_total",
			"Probe results of the health checker, by result (success, failure).", append(slices.Clone(checkerLabels), "result"), nil),
		checkerTransitions: prometheus.NewDesc("govs_checker_transitions_total",
			"Times the health checker went up or down.", checkerLabels, nil),
		checkerLatency: prometheus.NewDesc("govs_checker_probe_duration_seconds",
			"How long the health checker's probes took.", checkerLabels, nil),
		checkerLastLatency: prometheus.NewDesc("govs_checker_last_probe_duration_seconds",
			"How long the health checker's latest probe took.", checkerLabels, nil),
		bgpSessionUp: prometheus.NewDesc("govs_bgp_session_up",
			"Whether the BGP session with the neighbor is established (1) or not (0).", []string{"neighbor", "remote_as"}, nil),
		bgpAnnounced: prometheus.NewDesc("govs_bgp_announced",
			"1 for each prefix (a VIP's host route) the BGP speaker announces now.", []string{"prefix"}, nil),
		bgpWithheld: prometheus.NewDesc("govs_bgp_withheld",
			"1 for each VIP the BGP speaker does not announce now, with why (drained, quorum lost, held down ...).", []string{"vip", "reason"}, nil),
		bgpUpdates: prometheus.NewDesc("govs_bgp_updates_total",
			"Announcements and withdrawals of VIPs since the start, by type (announce, withdraw).", []string{"type"}, nil),
		reloadSuccessTime: prometheus.NewDesc("govs_config_last_reload_success_timestamp_seconds",
			"When the running configuration was loaded, in seconds since the Unix epoch.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.totals.describe(ch)
	c.service.describe(ch)
	c.backend.describe(ch)
	for _, d := range []*prometheus.Desc{c.backendActive, c.backendInactive, c.backendWeight, c.realUp,
		c.vrrpState, c.vrrpPriority, c.vrrpEffectivePriority, c.drops, c.connTableSize, c.connTableEntries, c.buildInfo,
		c.reloads, c.reloadOK, c.reloadSuccessTime, c.embryoTableSize,
		c.vrrpAdverts, c.vrrpDropped, c.vrrpTransitions, c.vrrpStop, c.bgpSessionUp, c.bgpAnnounced, c.bgpWithheld, c.bgpUpdates,
		c.checkerUp, c.checkerResults, c.checkerTransitions, c.checkerLatency, c.checkerLastLatency} {
		ch <- d
	}
	for _, d := range c.sync.all() {
		ch <- d
	}
	ch <- c.packets
}

// backendSum aggregates real servers that map to the same label values, as
// node_exporter does; a registry rejects duplicate series.
type backendSum struct {
	labels        []string
	active, inact uint64
	weight        int
	up            bool
	stats         status.Counters
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, s.Version)
	ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(s.Reloads.Succeeded), "success")
	ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(s.Reloads.Failed), "failure")
	ok := 0.0
	if s.Reloads.LastOK {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(c.reloadOK, prometheus.GaugeValue, ok)
	if !s.Reloads.LastSuccess.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.reloadSuccessTime, prometheus.GaugeValue, float64(s.Reloads.LastSuccess.UnixNano())/1e9)
	}
	c.totals.collect(ch, s.Totals)
	ch <- prometheus.MustNewConstMetric(c.connTableSize, prometheus.GaugeValue, float64(s.ConnTableSize))
	ch <- prometheus.MustNewConstMetric(c.embryoTableSize, prometheus.GaugeValue, float64(s.EmbryoTableSize))

	services := map[string]*struct {
		labels []string
		stats  status.Counters
	}{}
	backends := map[string]*backendSum{}
	removed := map[string][]string{}
	seenCheckers := map[string]bool{}
	var entries uint64
	for _, svc := range s.Services {
		sl := serviceLabelValues(svc)
		key := strings.Join(sl, "\x00")
		agg, ok := services[key]
		if !ok {
			agg = &struct {
				labels []string
				stats  status.Counters
			}{labels: sl}
			services[key] = agg
		}
		addCounters(&agg.stats, svc.Stats)
		for _, r := range svc.Reals {
			bl := []string{sl[0], sl[1], r.Addr.String(), strconv.FormatUint(uint64(r.Port), 10), sl[2], sl[3]}
			bkey := strings.Join(bl, "\x00")
			b, ok := backends[bkey]
			if !ok {
				b = &backendSum{labels: bl, up: true}
				backends[bkey] = b
			}
			b.active += r.ActiveConn
			b.inact += r.InactConn
			b.weight += r.Weight
			b.up = b.up && r.Healthy
			addCounters(&b.stats, r.Stats)
			entries += r.ActiveConn + r.InactConn
		}
		for _, r := range append(slices.Clone(svc.Reals), svc.Removed...) {
			bl := []string{sl[0], sl[1], r.Addr.String(), strconv.FormatUint(uint64(r.Port), 10), sl[2], sl[3]}
			c.collectCheckers(ch, seenCheckers, bl, r.CheckStats)
		}
		// Servers the checks took out stay visible as down, so an alert
		// on govs_realserver_up == 0 can fire; IPVS (and so the
		// node_exporter-style series) no longer has them.
		for _, r := range svc.Removed {
			bl := []string{sl[0], sl[1], r.Addr.String(), strconv.FormatUint(uint64(r.Port), 10), sl[2], sl[3]}
			removed[strings.Join(bl, "\x00")] = bl
		}
	}
	ch <- prometheus.MustNewConstMetric(c.connTableEntries, prometheus.GaugeValue, float64(entries))
	for _, key := range sortedKeys(services) {
		agg := services[key]
		c.service.collect(ch, agg.stats, agg.labels...)
	}
	for _, key := range sortedKeys(backends) {
		b := backends[key]
		ch <- prometheus.MustNewConstMetric(c.backendActive, prometheus.GaugeValue, float64(b.active), b.labels...)
		ch <- prometheus.MustNewConstMetric(c.backendInactive, prometheus.GaugeValue, float64(b.inact), b.labels...)
		ch <- prometheus.MustNewConstMetric(c.backendWeight, prometheus.GaugeValue, float64(b.weight), b.labels...)
		ch <- prometheus.MustNewConstMetric(c.realUp, prometheus.GaugeValue, boolValue(b.up), b.labels...)
		c.backend.collect(ch, b.stats, b.labels...)
	}
	for _, key := range sortedKeys(removed) {
		if _, listed := backends[key]; !listed {
			ch <- prometheus.MustNewConstMetric(c.realUp, prometheus.GaugeValue, 0, removed[key]...)
		}
	}

	seen := map[string]bool{}
	for _, v := range s.VRRP {
		if seen[v.Name] {
			continue // instance names are unique in a valid configuration
		}
		seen[v.Name] = true
		vrid := strconv.Itoa(int(v.VRID))
		states := status.VRRPStates[:]
		if !slices.Contains(states, v.State) {
			states = append(slices.Clone(states), v.State)
		}
		for _, st := range states {
			ch <- prometheus.MustNewConstMetric(c.vrrpState, prometheus.GaugeValue, boolValue(st == v.State),
				v.Name, v.Interface, vrid, st)
		}
		ch <- prometheus.MustNewConstMetric(c.vrrpPriority, prometheus.GaugeValue, float64(v.Priority), v.Name)
		ch <- prometheus.MustNewConstMetric(c.vrrpEffectivePriority, prometheus.GaugeValue, float64(v.EffectivePriority), v.Name)
		counter := func(d *prometheus.Desc, n uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), append([]string{v.Name}, labels...)...)
		}
		st := v.Stats
		counter(c.vrrpAdverts, st.AdvertsSent, "sent")
		counter(c.vrrpAdverts, st.AdvertsReceived, "received")
		counter(c.vrrpTransitions, st.BecameMaster, "master")
		counter(c.vrrpTransitions, st.ReleasedMaster, "other")
		counter(c.vrrpStop, st.PriorityZeroSent, "sent")
		counter(c.vrrpStop, st.PriorityZeroReceived, "received")
		for _, reason := range slices.Sorted(maps.Keys(st.Dropped)) {
			counter(c.vrrpDropped, st.Dropped[reason], reason)
		}
	}
	for _, reason := range sortedKeys(s.Drops) {
		ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(s.Drops[reason]), reason)
	}
	for _, name := range sortedKeys(s.Packets) {
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets[name]), name)
	}
	c.sync.collect(ch, s.Sync)
	if b := s.BGP; b != nil {
		for _, p := range b.Peers {
			ch <- prometheus.MustNewConstMetric(c.bgpSessionUp, prometheus.GaugeValue, boolValue(p.Established), p.Addr.String(), strconv.FormatUint(uint64(p.RemoteAS), 10))
		}
		for _, p := range b.Announced {
			ch <- prometheus.MustNewConstMetric(c.bgpAnnounced, prometheus.GaugeValue, 1, p.String())
		}
		for _, v := range b.VIPs {
			if v.Announced {
				continue
			}
			reason := v.Reason
			if v.HeldUntil != nil {
				reason = "held down"
			}
			ch <- prometheus.MustNewConstMetric(c.bgpWithheld, prometheus.GaugeValue, 1, v.VIP.String(), reason)
		}
		ch <- prometheus.MustNewConstMetric(c.bgpUpdates, prometheus.CounterValue, float64(b.Announcements), "announce")
		ch <- prometheus.MustNewConstMetric(c.bgpUpdates, prometheus.CounterValue, float64(b.Withdrawals), "withdraw")
	}
}

// serviceLabelValues returns local_address, local_port, proto, local_mark the
// way node_exporter fills them from /proc/net/ip_vs: a firewall-mark service
// has proto "FWM", an empty address, port 0 and its mark as eight hex digits.
func serviceLabelValues(s status.Service) []string {
	if s.Fwmark != 0 {
		return []string{"", "0", "FWM", fmt.Sprintf("%08X", s.Fwmark)}
	}
	return []string{s.VIP.String(), strconv.FormatUint(uint64(s.Port), 10), s.Protocol.String(), ""}
}

func addCounters(dst *status.Counters, c status.Counters) {
	dst.Conns += c.Conns
	dst.InPkts += c.InPkts
	dst.OutPkts += c.OutPkts
	dst.InBytes += c.InBytes
	dst.OutBytes += c.OutBytes
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectCheckers exports a real server's checkers once per label set.
func (c *Collector) collectCheckers(ch chan<- prometheus.Metric, seen map[string]bool, backend []string, checks []status.CheckerStats) {
	for _, st := range checks {
		labels := append(slices.Clone(backend), st.Name)
		key := strings.Join(labels, "\x00")
		if seen[key] {
			continue
		}
		seen[key] = true
		ch <- prometheus.MustNewConstMetric(c.checkerUp, prometheus.GaugeValue, boolValue(st.Up), labels...)
		ch <- prometheus.MustNewConstMetric(c.checkerResults, prometheus.CounterValue, float64(st.Successes), append(slices.Clone(labels), "success")...)
		ch <- prometheus.MustNewConstMetric(c.checkerResults, prometheus.CounterValue, float64(st.Failures), append(slices.Clone(labels), "failure")...)
		ch <- prometheus.MustNewConstMetric(c.checkerTransitions, prometheus.CounterValue, float64(st.Transitions), labels...)
		if !st.Checked {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.checkerLastLatency, prometheus.GaugeValue, st.LastLatency.Seconds(), labels...)
		buckets := map[float64]uint64{}
		for i, b := range st.LatencyBuckets {
			if i < len(st.LatencyCounts) {
				buckets[b.Seconds()] = st.LatencyCounts[i]
			}
		}
		ch <- prometheus.MustNewConstHistogram(c.checkerLatency, st.Successes+st.Failures, st.LatencySum.Seconds(), buckets, labels...)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Handler returns an http.Handler serving the director's metrics, together
// with the Go runtime and process metrics of the daemon itself, in the
// Prometheus exposition format.
func Handler(fn StatusFunc) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		NewCollector(fn),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:            reg,
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// APIStatusPath is where Routes serves the status snapshot as JSON.
const APIStatusPath = "/api/v1/status"

// Routes is everything the daemon's HTTP listener serves: the metrics at
// /metrics, and a read-only JSON API whose /api/v1/status is the status
// snapshot `govs list` shows (without the connection table, which can be
// large; `govs list -c` reads it over the control socket).
func Routes(fn StatusFunc) http.Handler { return RoutesWith(fn, nil) }

// APIConnectionsPath is where RoutesWith streams the connection table.
const APIConnectionsPath = "/api/v1/connections"

// ConnectionStream walks the connection table, calling fn for each entry.
type ConnectionStream func(fn func(status.Connection)) error

// connWriteWindow is how long a client of the connection stream may take
// to read each batch before the response is cut.
const connWriteWindow = 10 * time.Second

// RoutesWith is Routes with the connection table streamed at
// /api/v1/connections: one JSON object per line (NDJSON), written as the
// table is walked, so neither side holds the whole table; a client that
// stops reading for connWriteWindow is cut off.
func RoutesWith(fn StatusFunc, conns ConnectionStream) http.Handler {
	mux := http.NewServeMux()
	if conns != nil {
		mux.HandleFunc("GET "+APIConnectionsPath, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			rc := http.NewResponseController(w)
			bw := bufio.NewWriterSize(w, 64<<10)
			enc := json.NewEncoder(bw)
			var werr error
			n := 0
			err := conns(func(c status.Connection) {
				if werr != nil || r.Context().Err() != nil {
					return
				}
				if n%1024 == 0 {
					_ = rc.SetWriteDeadline(time.Now().Add(connWriteWindow))
				}
				n++
				werr = enc.Encode(c)
			})
			if werr == nil {
				werr = bw.Flush()
			}
			if err != nil && werr == nil {
				// Headers are out: say so in the stream's last line.
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			}
		})
	}
	mux.Handle("GET /metrics", Handler(fn))
	mux.HandleFunc("GET "+APIStatusPath, func(w http.ResponseWriter, _ *http.Request) {
		snap := fn()
		snap.Connections = nil
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(snap)
	})
	mux.Handle("GET /{$}", webui.Handler())
	return mux
}

// Serve listens on addr and serves handler (Routes) until ctx is done.
func Serve(ctx context.Context, addr string, handler http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen metrics: %w", err)
	}
	return ServeListener(ctx, ln, handler)
}

// ServeListener serves handler (Routes) on ln until ctx is done, then
// shuts the server down, giving in-flight scrapes five seconds to finish.
func ServeListener(ctx context.Context, ln net.Listener, handler http.Handler) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve metrics: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down metrics server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}
