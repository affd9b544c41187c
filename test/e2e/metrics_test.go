//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkTakeoverMetrics checks, on the controller that took one node over,
// the takeover counters and histograms, the build info, and the standard
// client-go, workqueue and leader election metrics; and that the OpenMetrics
// exposition declares no family twice.
func (e *env) checkTakeoverMetrics(p *controllerProc) {
	e.t.Helper()
	body := e.metrics(p)
	for _, want := range []string{
		`^liberator_takeovers_total 1$`,
		`^liberator_takeovers_finished_total\{result="succeeded"\} 1$`,
		`^liberator_takeover_downtime_seconds_count 1$`,
		`^liberator_takeover_downtime_part_seconds_count\{part="fence"\} 1$`,
		`^liberator_takeover_phase_seconds_count\{phase="Detected"\} 1$`,
		`^liberator_takeover_transitions_total\{phase="Fenced",result="success"\} 1$`,
		`^liberator_open_takeovers\{phase="WorkloadsReady"\} [0-9]+$`,
		`^liberator_build_info\{goversion="go[^"]+",revision="[^"]+",version="[^"]+"\} 1$`,
		`^rest_client_requests_total\{code="200",host="[^"]+",method="GET"\} [0-9]+$`,
		`^rest_client_request_duration_seconds_count\{host="[^"]+",verb="PUT"\} [0-9]+$`,
		`^workqueue_adds_total\{controller="nodes",name="nodes"\} [0-9]+$`,
		`^workqueue_depth\{controller="nodes",name="nodes",priority=""\} [0-9]+$`,
		`^leader_election_master_status\{name="liberator-controller"\} 1$`,
	} {
		if !regexp.MustCompile(`(?m)` + want).MatchString(body) {
			e.t.Errorf("/metrics of %s has no line matching %s", p.Name, want)
		}
	}
	if regexp.MustCompile(`(?m)^liberator_open_takeovers\{phase="Recovered"\}`).MatchString(body) {
		e.t.Errorf("/metrics of %s counts Recovered Takeovers as open", p.Name)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+p.metricsAddr+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	om, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		e.t.Fatalf("asked for OpenMetrics, got %q", ct)
	}
	families := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(string(om), -1) {
		if prev, ok := families[m[1]]; ok {
			e.t.Errorf("OpenMetrics family %s declared twice (%s and %s)", m[1], prev, m[2])
		}
		families[m[1]] = m[2]
	}
	if families["liberator_takeovers"] != "counter" || families["liberator_open_takeovers"] != "gauge" {
		e.t.Errorf("OpenMetrics families liberator_takeovers %q, liberator_open_takeovers %q; want counter, gauge",
			families["liberator_takeovers"], families["liberator_open_takeovers"])
	}
	e.t.Logf("%d metric families on /metrics of %s", len(families), p.Name)
}

// checkSecureMetrics starts a second replica with --metrics-secure (it
// stands by: the first one leads) and checks its /metrics against the real
// API server: no token 401, the token of a ServiceAccount without
// liberator-metrics-reader 403, with it 200.
func (e *env) checkSecureMetrics(cfg string) {
	e.t.Helper()
	ctx := context.Background()
	leader, leaderCfg := e.ctl, e.ctlConfig
	p := e.startController("liberator-secure", cfg, "--metrics-secure")
	defer func() {
		p.Stop()
		e.ctl, e.ctlConfig = leader, leaderCfg
	}()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the endpoint's certificate is self-signed
	get := func(token string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+p.metricsAddr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	e.waitFor("the secure metrics endpoint of "+p.Name, time.Minute, func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("%s exited:\n%s", p.Name, tail(p.logText(), 20))
		}
		_, _, err := get("")
		return err == nil, err
	})
	// Go's TLS server answers a plain HTTP request 400 Bad Request.
	if resp, err := client.Get("http://" + p.metricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			e.t.Errorf("the secure endpoint answers plain HTTP with %s, want 400", resp.Status)
		}
	}

	token := func(sa string) string {
		e.t.Helper()
		if _, err := e.kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		tr, err := e.kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		return tr.Status.Token
	}
	stranger, scraper := token("stranger"), token("scraper")
	if _, err := e.kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scraper-liberator-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "liberator-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "scraper", Namespace: "default"}},
	}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	for _, c := range []struct {
		who, token string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a token the API server does not know", "not-a-token", http.StatusUnauthorized},
		{"ServiceAccount default/stranger (no role)", stranger, http.StatusForbidden},
		{"ServiceAccount default/scraper (liberator-metrics-reader)", scraper, http.StatusOK},
	} {
		// RBAC reaches the authorizer's cache within a moment: retry a
		// little until the status is the expected one or the time is up.
		var got int
		var body string
		deadline := time.Now().Add(20 * time.Second)
		for {
			var err error
			if got, body, err = get(c.token); err != nil {
				e.t.Fatal(err)
			}
			if got == c.want || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if got != c.want {
			e.t.Errorf("/metrics over HTTPS with %s: %d, want %d (%s)", c.who, got, c.want, strings.TrimSpace(body))
			continue
		}
		if c.want == http.StatusOK && !strings.Contains(body, "liberator_build_info{") {
			e.t.Errorf("/metrics over HTTPS with %s: no liberator_build_info in %d bytes", c.who, len(body))
		}
		e.t.Logf("/metrics over HTTPS with %s: %d", c.who, got)
	}
}
