// Command list-metrics prints every metric family the controller's /metrics
// serves, one "NAME TYPE" line each, sorted, and for a histogram that holds
// a sample its bucket upper bounds ("NAME histogram 0.5,1,...,+Inf"): the descriptors of every
// collector behind metrics.New().Gatherer() (liberator's own and
// controller-runtime's registry), with the type each family has once it
// holds a sample. Families of a vector without children have no sample
// yet: the type then comes from liberator's Metrics field, or, for
// controller-runtime's, from one named work queue and one client-go
// request made here. A family whose type is still unknown prints
// "untyped".
//
// hack/monitoring's tests run it to check that every metric the alert
// rules and the dashboard query is one the controller exports.
package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"

	"github.com/liberator-dev/liberator/internal/metrics"
)

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "list-metrics:", err)
		os.Exit(1)
	}
}

func run() error {
	m := metrics.New()
	types := map[string]string{}

	// The served collectors' descriptors.
	gs, ok := m.Gatherer().(prometheus.Gatherers)
	if !ok {
		return fmt.Errorf("metrics.New().Gatherer() is a %T, not prometheus.Gatherers: cannot list its collectors", m.Gatherer())
	}
	for _, g := range gs {
		c, ok := g.(prometheus.Collector)
		if !ok {
			return fmt.Errorf("a gatherer of /metrics (%T) cannot describe its collectors", g)
		}
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if n := fqName.FindStringSubmatch(d.String()); n != nil {
				types[n[1]] = "untyped"
			}
		}
	}

	// Types of liberator's vectors, from their Go types.
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 16)
		c.Describe(ch)
		close(ch)
		for d := range ch {
			if n := fqName.FindStringSubmatch(d.String()); n != nil {
				types[n[1]] = kindOf(c)
			}
		}
	}

	// A named work queue and a client-go request give controller-runtime's
	// workqueue_* and rest_client_* vectors a child each.
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "list-metrics"})
	q.Add("x")
	item, _ := q.Get()
	q.Done(item)
	q.ShutDown()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"36","gitVersion":"v1.36.0"}`))
	}))
	defer srv.Close()
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		return err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return fmt.Errorf("client-go request to a test server: %w", err)
	}

	mfs, err := m.Gatherer().Gather()
	if err != nil {
		return err
	}
	buckets := map[string]string{}
	for _, mf := range mfs {
		if ms := mf.GetMetric(); len(ms) > 0 && ms[0].GetHistogram() != nil {
			var les []string
			for _, b := range ms[0].GetHistogram().GetBucket() {
				les = append(les, strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))
			}
			buckets[mf.GetName()] = " " + strings.Join(append(les, "+Inf"), ",")
		}
		if _, described := types[mf.GetName()]; described {
			types[mf.GetName()] = map[string]string{
				"COUNTER": "counter", "GAUGE": "gauge", "HISTOGRAM": "histogram", "SUMMARY": "summary",
				"GAUGE_HISTOGRAM": "histogram", "UNTYPED": "untyped",
			}[mf.GetType().String()]
		}
	}

	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Println(n + " " + types[n] + buckets[n])
	}
	return nil
}

// kindOf names the metric type of a vector of liberator's; the other
// collectors always hold a sample, and Gather gives their type.
func kindOf(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	}
	return "untyped"
}
