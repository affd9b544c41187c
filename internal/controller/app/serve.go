package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/liberator-dev/liberator/internal/metrics"
)

// serve starts the metrics and health endpoints; the returned function
// shuts them down.
func (r *runner) serve(m *metrics.Metrics) func() {
	servers := []*http.Server{
		listen(r.cfg.MetricsAddr, metricsMux(m), r.serveErr),
		listen(r.cfg.HealthAddr, healthMux(r.c.Synced, r.watchdog), r.serveErr),
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
	}
}

// listen serves h on addr in the background; a failure goes to errs.
func listen(addr string, h http.Handler, errs chan<- error) *http.Server {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("cannot serve on %s: %w", addr, err)
		}
	}()
	return srv
}

// metricsMux serves /metrics: liberator's collectors and the standard
// client-go, workqueue and leader election ones, in the text format or,
// when the scraper asks for it, OpenMetrics.
func metricsMux(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Gatherer(), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	return mux
}

// healthMux serves /healthz (the leader election watchdog) and /readyz
// (synced: the controller's informer caches are synced).
func healthMux(synced func() bool, wd *leaderelection.HealthzAdaptor) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := wd.Check(r); err != nil {
			http.Error(w, "leader election: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !synced() {
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}
