package agent

import (
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// Under OpenMetrics a counter X_total and a gauge X are one family X: the
// agent's /metrics must hold no such pair.
func TestMetricsFamiliesDoNotCollide(t *testing.T) {
	m := NewMetrics()
	m.Armed.Set(1)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]dto.MetricType{}
	for _, f := range fams {
		kinds[f.GetName()] = f.GetType()
	}
	for name, typ := range kinds {
		if typ != dto.MetricType_COUNTER || !strings.HasSuffix(name, "_total") {
			continue
		}
		if other, ok := kinds[strings.TrimSuffix(name, "_total")]; ok {
			t.Errorf("counter %s and %s %s are one OpenMetrics family", name, other, strings.TrimSuffix(name, "_total"))
		}
	}
}
