package metrics

import "github.com/prometheus/client_golang/prometheus"

// The configuration file's reloads (the controller's --config,
// re-read while it runs).
func newConfigCollectors() (reloads *prometheus.CounterVec, lastOK, lastSuccess prometheus.Gauge, info *prometheus.GaugeVec) {
	reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "liberator_config_reloads_total", Help: "Changes of the configuration file seen while running, by result: applied, or refused (invalid, or needing a restart; the running configuration is kept).",
	}, []string{"result"})
	lastOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liberator_config_last_reload_successful", Help: "1 when the last change of the configuration file was applied (or none was seen since start), 0 when it was refused.",
	})
	lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "liberator_config_last_reload_success_timestamp_seconds", Help: "Unix time the configuration in force was loaded (at start, or by the last applied change).",
	})
	info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "liberator_config_info", Help: "1, labelled with the hash (first 12 hex digits of the SHA-256) of the configuration file content in force.",
	}, []string{"hash"})
	return reloads, lastOK, lastSuccess, info
}

// SetConfigHash labels liberator_config_info with the hash of the
// configuration in force.
func (m *Metrics) SetConfigHash(hash string) {
	m.ConfigInfo.Reset()
	m.ConfigInfo.WithLabelValues(hash).Set(1)
}
