package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/tools/leaderelection"

	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/internal/metrics"
)

// serve starts the metrics and health endpoints; the returned function
// shuts them down. With --metrics-secure, /metrics is served over HTTPS to
// the requests the API server authenticates and authorizes.
func (r *runner) serve(m *metrics.Metrics, o *Options) (func(), error) {
	var metricsTLS *tls.Config
	h := metricsMux(m)
	if o.MetricsSecure {
		pctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		err := controller.PreflightMetricsAuth(pctx, r.kube)
		cancel()
		if err != nil {
			return nil, err
		}
		if metricsTLS, err = serverTLS(o.MetricsCertFile, o.MetricsKeyFile); err != nil {
			return nil, err
		}
		h = newMetricsAuth(r.kube, r.log).wrap(h)
	}
	servers := []*http.Server{
		listen(r.cfg.MetricsAddr, h, metricsTLS, r.serveErr),
		listen(r.cfg.HealthAddr, healthMux(r.c.Synced, r.watchdog), nil, r.serveErr),
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
	}, nil
}

// listen serves h on addr in the background, over TLS when tlsConfig is
// set; a failure goes to errs.
func listen(addr string, h http.Handler, tlsConfig *tls.Config, errs chan<- error) *http.Server {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second, TLSConfig: tlsConfig}
	if tlsConfig != nil {
		// HTTP/1.1 only, as controller-runtime's secure metrics server:
		// no exposure to HTTP/2's stream-reset floods.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	go func() {
		var err error
		if tlsConfig != nil {
			err = srv.ListenAndServeTLS("", "")
		} else {
			err = srv.ListenAndServe()
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
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
