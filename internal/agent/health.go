package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthMux serves /healthz (the loop has run within the watchdog timeout:
// a hung loop is as good as a dead agent, and the watchdog resets the
// node anyway), /readyz (armed and feeding) and /metrics.
func (a *Agent) healthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		stale := a.clock.Since(a.lastIteration)
		a.mu.Unlock()
		if stale > a.cfg.Bounds.WatchdogTimeout {
			http.Error(w, "the agent's loop has not run for "+stale.String(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		a.mu.Lock()
		ready := a.ready
		a.mu.Unlock()
		if !ready {
			http.Error(w, "the agent is not feeding the watchdog (not armed yet, or fenced)", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(a.m.Registry, promhttp.HandlerOpts{}))
	return mux
}
