package agent

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the agent's collectors, all named liberator_agent_*, on
// their own registry with the Go and process collectors (the agent's RSS
// is process_resident_memory_bytes).
type Metrics struct {
	Registry *prometheus.Registry

	Armed               prometheus.Gauge
	Fenced              prometheus.Gauge
	Feeds               prometheus.Counter
	Renewals            prometheus.Counter
	RenewalAge          prometheus.Gauge
	APIFailures         *prometheus.CounterVec
	SelfFences          *prometheus.CounterVec
	Members             prometheus.Gauge
	Quorum              prometheus.Gauge
	PeerRounds          *prometheus.CounterVec
	PeerBytesSent       prometheus.Counter
	PeerBytesReceived   prometheus.Counter
	PeerMessagesDropped *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them on a fresh registry.
func NewMetrics() *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "liberator_agent_" + name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "liberator_agent_" + name, Help: help})
	}
	vec := func(name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "liberator_agent_" + name, Help: help}, []string{label})
	}
	m := &Metrics{
		Registry:          prometheus.NewRegistry(),
		Armed:             gauge("armed", "1 while the agent holds the watchdog armed (it may have stopped feeding it: see liberator_agent_fenced)."),
		Fenced:            gauge("fenced", "1 once the agent has stopped feeding the watchdog for good (self-fence or fence request): the node resets within the watchdog timeout."),
		Feeds:             counter("watchdog_feeds_total", "Times the agent fed the watchdog."),
		Renewals:          counter("lease_renewals_total", "Successful renewals of the agent's Lease."),
		RenewalAge:        gauge("seconds_since_renewal", "Seconds since the start of the last successful Lease renewal, on the agent's clock, at its last check."),
		APIFailures:       vec("api_failures_total", "Failed or timed-out API calls, by call (get, create, update, list).", "call"),
		SelfFences:        vec("self_fences_total", "Times the agent stopped feeding the watchdog for good, by cause (isolated: no quorum saw the API down for everyone; request: the controller asked).", "cause"),
		Members:           gauge("members", "The largest number of agents (this one included) the agent has seen."),
		Quorum:            gauge("quorum", "Agents (this one included) that must see the API down for the agent to keep running without it."),
		PeerRounds:        vec("peer_rounds_total", "Rounds of questions to the peers, by result (stay_up, self_fence).", "result"),
		PeerBytesSent:     counter("peer_bytes_sent_total", "Bytes of peer protocol datagrams sent (questions and answers)."),
		PeerBytesReceived: counter("peer_bytes_received_total", "Bytes of peer protocol datagrams received (questions and answers), invalid ones included."),
		PeerMessagesDropped: vec("peer_messages_dropped_total",
			"Peer datagrams dropped, by reason (unauthenticated, nonce, unknown_peer, duplicate, self, not_renewed).", "reason"),
	}
	// The Go collector without the memstats pair go_memstats_alloc_bytes
	// (a gauge) and go_memstats_alloc_bytes_total (a counter), one family in
	// OpenMetrics; its runtime/metrics equivalents take their place.
	goc := collectors.NewGoCollector(collectors.WithGoCollectorMemStatsMetricsDisabled(),
		collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler))
	m.Registry.MustRegister(goc, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Armed, m.Fenced, m.Feeds, m.Renewals, m.RenewalAge, m.APIFailures, m.SelfFences, m.Members, m.Quorum,
		m.PeerRounds, m.PeerBytesSent, m.PeerBytesReceived, m.PeerMessagesDropped)
	return m
}
