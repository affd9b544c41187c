package metrics

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientmetrics "k8s.io/client-go/tools/metrics"
	// The priority queue package registers controller-runtime's workqueue
	// metrics provider: every named client-go workqueue then reports
	// workqueue_*{name} on ctrlmetrics.Registry.
	_ "sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// requestLatency is client-go's request latency, by verb and host, with
// the name and buckets the Kubernetes components use. controller-runtime
// registers only rest_client_requests_total.
var requestLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "rest_client_request_duration_seconds",
	Help:    "Request latency in seconds. Broken down by verb and host.",
	Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0},
}, []string{"verb", "host"})

type latencyAdapter struct{ m *prometheus.HistogramVec }

func (a latencyAdapter) Observe(_ context.Context, verb string, u url.URL, latency time.Duration) {
	a.m.WithLabelValues(verb, u.Host).Observe(latency.Seconds())
}

func init() {
	ctrlmetrics.Registry.MustRegister(requestLatency)
	// controller-runtime's init (imported above, so run before this one)
	// has used client-go's one-time Register for the request results;
	// the latency hook is a plain variable set here, before any request.
	clientmetrics.RequestLatency = latencyAdapter{requestLatency}
}
