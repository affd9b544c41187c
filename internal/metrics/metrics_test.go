package metrics

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/workqueue"
)

// populate gives every vector of m one child, so that every family shows
// up in a scrape (an empty vector exposes nothing).
func populate(m *Metrics) {
	m.RebootNotProven.WithLabelValues("wait").Inc()
	m.APIErrors.WithLabelValues("getNode").Inc()
	m.OpenTakeovers.WithLabelValues("Fencing").Set(1)
	m.TakeoversOpened.Inc()
	m.TakeoversFinished.WithLabelValues("succeeded").Inc()
	m.Transitions.WithLabelValues("Fencing", "success").Inc()
	m.PhaseSeconds.WithLabelValues("Fenced").Observe(3)
	m.Downtime.Observe(50)
	m.DowntimeParts.WithLabelValues("fence").Observe(5)
	m.FenceCalls.WithLabelValues("wait", "success").Inc()
	m.FenceSeconds.WithLabelValues("wait").Observe(1)
	m.Decisions.WithLabelValues("Fence").Inc()
	m.FenceReady.WithLabelValues("n1").Set(1)
	m.FenceChecks.WithLabelValues("wait", "ok").Inc()
	m.FenceCheckSeconds.WithLabelValues("wait").Observe(1)
	m.PowerOns.WithLabelValues("success").Inc()
	m.ConfigReloads.WithLabelValues("applied").Inc()
	m.SetConfigHash("0123456789ab")
}

// scrapeOpenMetrics serves g the way the controller does and reads it back
// in the OpenMetrics text format.
func scrapeOpenMetrics(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Fatalf("Content-Type %q, want OpenMetrics", ct)
	}
	return string(body)
}

// sampleSuffixes are the sample names a family of each OpenMetrics type
// may expose, after its name.
var sampleSuffixes = map[string][]string{
	"counter":   {"_total", "_created"},
	"gauge":     {""},
	"histogram": {"_bucket", "_sum", "_count", "_created"},
	"summary":   {"", "_sum", "_count", "_created"},
	"info":      {"_info"},
	"unknown":   {""},
}

// openMetricsCollisions reads an OpenMetrics exposition and returns every
// family declared twice and every sample name two families expose (a
// gauge X next to a counter X_total, a gauge X_count next to a histogram
// X), and samples that belong to no declared family.
func openMetricsCollisions(body string) []string {
	var problems []string
	types := map[string]string{} // family -> type
	owner := map[string]string{} // sample name -> family
	family, typ := "", ""
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, t, _ := strings.Cut(f, " ")
			if prev, dup := types[name]; dup {
				problems = append(problems, "family "+name+" declared twice: as "+prev+" and as "+t)
			}
			types[name], family, typ = t, name, t
			for _, s := range sampleSuffixes[t] {
				if o, taken := owner[name+s]; taken && o != name {
					problems = append(problems, "sample name "+name+s+" of "+t+" "+name+" is also a sample of family "+o)
				}
				owner[name+s] = name
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sample := line[:strings.IndexAny(line, "{ ")]
		if o, ok := owner[sample]; !ok || o != family {
			problems = append(problems, "sample "+sample+" outside its family (in "+typ+" "+family+")")
		}
	}
	return problems
}

// nonBase are the unit words that have no place in a metric name.
var nonBase = map[string]bool{
	"ms": true, "millis": true, "milliseconds": true, "us": true, "microseconds": true, "ns": true, "nanoseconds": true,
	"minutes": true, "hours": true, "days": true,
	"kb": true, "kib": true, "kilobytes": true, "mb": true, "mib": true, "megabytes": true, "gb": true, "gigabytes": true, "bits": true,
}

// TestExpositionOpenMetrics scrapes every collector in the OpenMetrics
// format and fails on families that collide there, on counters without
// _total (or other types with it) and on names in non-base units.
func TestExpositionOpenMetrics(t *testing.T) {
	m := New()
	populate(m)
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: "lint"})
	defer q.ShutDown()
	q.Add("x")
	body := scrapeOpenMetrics(t, m.Gatherer())

	// Every collector of m has a family in the scrape (populate is complete).
	v := reflect.ValueOf(m).Elem()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for i := range v.NumField() {
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "Registry" {
			continue
		}
		ch := make(chan *prometheus.Desc, 1)
		c.Describe(ch)
		name := fqName.FindStringSubmatch((<-ch).String())[1]
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(_total|_bucket|_sum|_count)?[{ ]`).MatchString(body) {
			t.Errorf("%s (field %s) has no sample in the scrape: populate it", name, v.Type().Field(i).Name)
		}
	}

	for _, p := range openMetricsCollisions(body) {
		t.Errorf("OpenMetrics: %s", p)
	}

	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(problems, func(i, j int) bool { return problems[i].Metric < problems[j].Metric })
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	for _, mf := range mfs {
		isCounter := mf.GetType().String() == "COUNTER"
		if isCounter != strings.HasSuffix(mf.GetName(), "_total") {
			t.Errorf("%s is a %s: only counters, and every counter, end in _total", mf.GetName(), mf.GetType())
		}
		for _, word := range strings.Split(mf.GetName(), "_") {
			if nonBase[word] {
				t.Errorf("%s: %s is not a base unit; use seconds or bytes", mf.GetName(), word)
			}
		}
	}
}

// TestOpenMetricsCollisionsCatches shows the collision check finds what it
// is for.
func TestOpenMetricsCollisionsCatches(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"gauge X and counter X_total", "# TYPE x gauge\nx{phase=\"a\"} 1\n# TYPE x counter\nx_total 3\n# EOF\n", "family x declared twice"},
		{"gauge X_count and histogram X", "# TYPE y_count gauge\ny_count 1\n# TYPE y histogram\ny_bucket{le=\"+Inf\"} 1\ny_sum 1\ny_count 1\n# EOF\n", "sample name y_count of histogram y is also a sample of family y_count"},
	} {
		got := strings.Join(openMetricsCollisions(c.body), "\n")
		if !strings.Contains(got, c.want) {
			t.Errorf("%s: problems %q, want %q", c.name, got, c.want)
		}
	}
	if p := openMetricsCollisions("# TYPE z counter\nz_total 1\n# TYPE w gauge\nw 2\n# EOF\n"); len(p) != 0 {
		t.Errorf("clean exposition: %v", p)
	}
}

// TestStandardMetrics: a client-go request, a named workqueue and a leader
// election show up on the Gatherer as rest_client_*, workqueue_*{name} and
// leader_election_master_status.
func TestStandardMetrics(t *testing.T) {
	m := New()
	m.SetBuildInfo("v1.2.3", "abc123")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"36","gitVersion":"v1.36.3"}`))
	}))
	defer api.Close()
	kube := kubernetes.NewForConfigOrDie(&rest.Config{Host: api.URL})
	if _, err := kube.Discovery().ServerVersion(); err != nil {
		t.Fatal(err)
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "standard-test"})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs := fake.NewClientset()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, "ns", "standard-test", cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: "me"})
	if err != nil {
		t.Fatal(err)
	}
	led := make(chan struct{})
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: "standard-test", LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) { close(led) }, OnStoppedLeading: func() {}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go le.Run(ctx)
	select {
	case <-led:
	case <-ctx.Done():
		t.Fatal("never led")
	}

	host := strings.TrimPrefix(api.URL, "http://")
	mfs, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"liberator_build_info", map[string]string{"version": "v1.2.3", "revision": "abc123", "goversion": runtime.Version()}, 1},
		{"rest_client_requests_total", map[string]string{"code": "200", "method": "GET", "host": host}, 1},
		{"rest_client_request_duration_seconds", map[string]string{"verb": "GET", "host": host}, 1},
		{"workqueue_depth", map[string]string{"name": "standard-test"}, 2},
		{"workqueue_adds_total", map[string]string{"name": "standard-test"}, 2},
		{"leader_election_master_status", map[string]string{"name": "standard-test"}, 1},
	} {
		got, ok := sample(mfs, c.family, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.family, c.labels, got, ok, c.want)
		}
	}
	for _, p := range openMetricsCollisions(scrapeOpenMetrics(t, m.Gatherer())) {
		t.Errorf("OpenMetrics: %s", p)
	}
}

// sample returns the value of family's first metric carrying labels (a
// histogram's count).
func sample(mfs []*dto.MetricFamily, family string, labels map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}
