package metrics

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
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
	body := scrapeOpenMetrics(t, m.Registry)

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

	mfs, err := m.Registry.Gather()
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
