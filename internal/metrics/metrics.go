// Package metrics defines every Prometheus collector liberator exports. All
// names carry the liberator_ prefix.
package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics holds the collectors and the registry that serves them.
type Metrics struct {
	// Registry holds liberator's collectors and the Go and process ones;
	// Gatherer adds the standard client-go, workqueue and leader election
	// metrics to it.
	Registry *prometheus.Registry

	// BuildInfo is 1, labelled with the build's version, revision and Go
	// version.
	BuildInfo *prometheus.GaugeVec

	EligibleNodes    prometheus.Gauge
	UnhealthyNodes   prometheus.Gauge
	StormGuardActive prometheus.Gauge
	StormGuardTrips  prometheus.Counter
	APIGuardActive   prometheus.Gauge
	APIErrors        *prometheus.CounterVec
	// OpenTakeovers counts the open (not Recovered) Takeovers by phase.
	OpenTakeovers *prometheus.GaugeVec
	// TakeoversOpened counts the takeovers opened (one per incident, at
	// detection); TakeoversFinished counts those that reached
	// WorkloadsReady (result succeeded) or were closed without a release
	// (aborted).
	TakeoversOpened   prometheus.Counter
	TakeoversFinished *prometheus.CounterVec
	// Transitions counts the phase changes by phase reached and result.
	Transitions *prometheus.CounterVec
	// PhaseSeconds times each phase from the last heartbeat seen.
	PhaseSeconds *prometheus.HistogramVec
	// Downtime and DowntimeParts observe a takeover's status.downtime once,
	// when it reaches WorkloadsReady.
	Downtime      prometheus.Histogram
	DowntimeParts *prometheus.HistogramVec
	FenceCalls    *prometheus.CounterVec
	FenceSeconds  *prometheus.HistogramVec
	Decisions     *prometheus.CounterVec
	IsLeader      prometheus.Gauge

	// FenceReady is 1 for a node whose fence path works, 0 when it does not
	// (by node); FenceChecks and FenceCheckSeconds count and time the checks.
	FenceReady        *prometheus.GaugeVec
	FenceChecks       *prometheus.CounterVec
	FenceCheckSeconds *prometheus.HistogramVec
	// PowerOns counts powerOnAfterTakeover calls by result.
	PowerOns *prometheus.CounterVec

	// ConfigReloads counts the changes of the configuration file seen
	// while running, by result (applied, refused);
	// ConfigLastReloadSuccessful is 0 after a refused one;
	// ConfigLastReloadSuccess is when the configuration in force was
	// loaded; ConfigInfo is 1, labelled with its hash (config.go).
	ConfigReloads              *prometheus.CounterVec
	ConfigLastReloadSuccessful prometheus.Gauge
	ConfigLastReloadSuccess    prometheus.Gauge
	ConfigInfo                 *prometheus.GaugeVec

	// ViewBlind is 1 while no Lease renewal of any node has been seen for
	// half the window; NotReadyLeaseRenewing counts eligible nodes NotReady
	// for the window while their Lease renews (reported, never taken over);
	// RebootNotProven counts nodes that returned after a fence with their
	// boot ID unchanged, by provider.
	ViewBlind             prometheus.Gauge
	NotReadyLeaseRenewing prometheus.Gauge
	RebootNotProven       *prometheus.CounterVec

	// Paused is 1 while an operator has paused liberator (liberator
	// pause): no takeover is opened and no node is fenced.
	Paused prometheus.Gauge
}

// durationBuckets are the upper bounds, in seconds, of the takeover
// duration histograms: a detection window of tens of seconds plus fencing
// that may take minutes.
var durationBuckets = []float64{0.5, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200}

// New creates the collectors and registers them, with the Go and process
// collectors, on a fresh registry. The build info reads version "dev"
// until SetBuildInfo.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liberator_build_info", Help: "1, labelled with the version, VCS revision and Go version liberator was built from.",
		}, []string{"version", "revision", "goversion"}),
		EligibleNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_eligible_nodes", Help: "Nodes liberator watches over (selector, opt-out and control-plane rules applied).",
		}),
		Paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_paused", Help: "1 while liberator is paused (liberator pause): no takeover is opened and no node is fenced; a node already fenced is still released.",
		}),
		ViewBlind: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_view_blind", Help: "1 while no Lease renewal of any node has been seen for half the window (API server, etcd or watch down); nothing is remediated.",
		}),
		NotReadyLeaseRenewing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_nodes_not_ready_lease_renewing", Help: "Eligible nodes NotReady for the whole window while their Lease renews: reported, never taken over.",
		}),
		RebootNotProven: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_reboot_not_proven_total", Help: "Fenced nodes that returned with their boot ID unchanged (for provider wait: the watchdog did not fire), by provider.",
		}, []string{"provider"}),
		UnhealthyNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_unhealthy_nodes", Help: "Eligible nodes unhealthy for the whole unhealthyAfter window.",
		}),
		StormGuardActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_storm_guard_active", Help: "1 while more than maxUnhealthy eligible nodes are unhealthy and nothing is remediated.",
		}),
		StormGuardTrips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liberator_storm_guard_trips_total", Help: "Times the storm guard started holding remediation.",
		}),
		APIGuardActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_api_guard_active", Help: "1 while the controller's own API calls fail and nothing is remediated.",
		}),
		APIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_api_errors_total", Help: "Failed API calls made by the controller, by operation.",
		}, []string{"operation"}),
		OpenTakeovers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liberator_open_takeovers", Help: "Open (not Recovered) Takeovers by current phase.",
		}, []string{"phase"}),
		TakeoversOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "liberator_takeovers_total", Help: "Takeovers opened: one per incident, at detection.",
		}),
		TakeoversFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_takeovers_finished_total", Help: "Takeovers finished, by result: succeeded (reached WorkloadsReady with every replacement Ready), timeout (workloadTimeout passed first) or aborted (closed as Recovered without a release).",
		}, []string{"result"}),
		Transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_takeover_transitions_total", Help: "Takeover phase changes, by phase reached and result (success, failed, aborted, paused).",
		}, []string{"phase", "result"}),
		PhaseSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liberator_takeover_phase_seconds",
			Help:    "Seconds from the node's last heartbeat seen (detection when none was seen) to reaching each phase.",
			Buckets: durationBuckets,
		}, []string{"phase"}),
		Downtime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "liberator_takeover_downtime_seconds",
			Help:    "A takeover's downtime (status.downtime.total: last heartbeat seen to the moved workloads Ready), observed when it reaches WorkloadsReady.",
			Buckets: durationBuckets,
		}),
		DowntimeParts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liberator_takeover_downtime_part_seconds",
			Help:    "The parts of a takeover's downtime (status.downtime: detection, fence, release, schedule, start), observed when it reaches WorkloadsReady.",
			Buckets: durationBuckets,
		}, []string{"part"}),
		FenceCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_fence_calls_total", Help: "Fence calls by provider and result (success, pending, error).",
		}, []string{"provider", "result"}),
		FenceSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liberator_fence_duration_seconds",
			Help:    "Duration of one fence call by provider.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"provider"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_decisions_total", Help: "Decisions taken, by action.",
		}, []string{"action"}),
		IsLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "liberator_leader", Help: "1 while this replica holds the leader Lease.",
		}),
		FenceReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "liberator_fence_ready", Help: "1 when the node's fence path was checked and works (the FenceReady condition), 0 when it does not.",
		}, []string{"node"}),
		FenceChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_fence_checks_total", Help: "Fence path checks by provider and result (ok, failed).",
		}, []string{"provider", "result"}),
		FenceCheckSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "liberator_fence_check_duration_seconds",
			Help:    "Duration of one fence path check (the provider's status) by provider.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}, []string{"provider"}),
		PowerOns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "liberator_power_on_total", Help: "Fenced nodes powered back on after their takeover (powerOnAfterTakeover), by result (success, error).",
		}, []string{"result"}),
	}
	m.Registry.MustRegister(
		goCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.BuildInfo,
		m.ViewBlind, m.NotReadyLeaseRenewing, m.RebootNotProven, m.Paused,
		m.EligibleNodes, m.UnhealthyNodes, m.StormGuardActive, m.StormGuardTrips, m.APIGuardActive, m.APIErrors,
		m.OpenTakeovers, m.TakeoversOpened, m.TakeoversFinished, m.Transitions, m.PhaseSeconds, m.Downtime, m.DowntimeParts,
		m.FenceCalls, m.FenceSeconds, m.Decisions, m.IsLeader,
		m.FenceReady, m.FenceChecks, m.FenceCheckSeconds, m.PowerOns,
	)
	m.ConfigReloads, m.ConfigLastReloadSuccessful, m.ConfigLastReloadSuccess, m.ConfigInfo = newConfigCollectors()
	m.Registry.MustRegister(m.ConfigReloads, m.ConfigLastReloadSuccessful, m.ConfigLastReloadSuccess, m.ConfigInfo)
	m.ConfigLastReloadSuccessful.Set(1)
	m.SetBuildInfo("dev", "unknown")
	return m
}

// SetBuildInfo labels liberator_build_info with the build's version and
// VCS revision.
func (m *Metrics) SetBuildInfo(version, revision string) {
	m.BuildInfo.Reset()
	m.BuildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
}

// Gatherer is what /metrics serves: m's registry and controller-runtime's,
// which holds client-go's rest_client_* metrics, the named workqueues'
// workqueue_* metrics and leader_election_master_status.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{m.Registry, ctrlmetrics.Registry}
}

// goCollector is the Go runtime collector without the memstats pair
// go_memstats_alloc_bytes (a gauge) and go_memstats_alloc_bytes_total (a
// counter), which are one family in OpenMetrics; the runtime/metrics
// equivalents (go_memory_classes_*, go_gc_heap_allocs_bytes_total, ...)
// take their place.
func goCollector() prometheus.Collector {
	return collectors.NewGoCollector(
		collectors.WithGoCollectorMemStatsMetricsDisabled(),
		collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler),
	)
}
