package app

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/cert"
)

// fakeReviews answers TokenReviews (token "alice" and "bob" are those
// users) and SubjectAccessReviews (bob may get /metrics) and counts them.
func fakeReviews() (*fake.Clientset, *int) {
	kube := fake.NewClientset()
	calls := 0
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenReview)
		if tr.Spec.Token == "alice" || tr.Spec.Token == "bob" {
			tr.Status = authenticationv1.TokenReviewStatus{Authenticated: true, User: authenticationv1.UserInfo{Username: tr.Spec.Token, Groups: []string{"system:authenticated"}}}
		}
		return true, tr, nil
	})
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		na := sar.Spec.NonResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "bob" && na != nil && na.Path == "/metrics" && na.Verb == "get"
		return true, sar, nil
	})
	return kube, &calls
}

func TestMetricsAuth(t *testing.T) {
	kube, calls := fakeReviews()
	a := newMetricsAuth(kube, logr.Discard())
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	srv := httptest.NewServer(a.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })))
	defer srv.Close()
	get := func(path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "Basic Ym9iOmJvYg==", http.StatusUnauthorized},
		{"/metrics", "Bearer ", http.StatusUnauthorized},
		{"/metrics", "Bearer mallory", http.StatusUnauthorized},
		{"/metrics", "Bearer alice", http.StatusForbidden},
		{"/metrics", "Bearer bob", http.StatusOK},
		{"/metrics", "bearer bob", http.StatusOK},
		{"/other", "Bearer bob", http.StatusForbidden},
	} {
		if got := get(c.path, c.auth); got != c.want {
			t.Errorf("GET %s with %q: %d, want %d", c.path, c.auth, got, c.want)
		}
	}

	// Kept a minute when allowed, 10 s when refused.
	before := *calls
	if get("/metrics", "Bearer bob") != http.StatusOK || get("/metrics", "Bearer alice") != http.StatusForbidden || *calls != before {
		t.Fatalf("decisions not kept: %d more reviews", *calls-before)
	}
	now = now.Add(11 * time.Second)
	get("/metrics", "Bearer bob")
	if *calls != before {
		t.Fatalf("allowed decision not kept for a minute")
	}
	get("/metrics", "Bearer alice")
	if *calls != before+2 {
		t.Fatalf("refused decision kept past 10 s: %d reviews, want 2", *calls-before)
	}
	now = now.Add(time.Minute)
	get("/metrics", "Bearer bob")
	if *calls != before+4 {
		t.Fatalf("allowed decision kept past a minute: %d reviews, want 4", *calls-before)
	}
}

// The secure endpoint serves TLS with a self-signed certificate, or the
// given one, read again when it changes.
func TestServerTLS(t *testing.T) {
	serveWith := func(cfg *tls.Config) *x509Subject {
		t.Helper()
		l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), ReadHeaderTimeout: time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test reads the certificate served
		resp, err := client.Get("https://" + l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		c := resp.TLS.PeerCertificates[0]
		return &x509Subject{dns: c.DNSNames}
	}
	cfg, err := serverTLS("", "")
	if err != nil {
		t.Fatal(err)
	}
	if s := serveWith(cfg); !contains(s.dns, "liberator-controller-metrics") || !contains(s.dns, "localhost") {
		t.Errorf("self-signed certificate names %v", s.dns)
	}

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(host string, mod time.Time) {
		t.Helper()
		c, k, err := cert.GenerateSelfSignedCertKey(host, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for f, b := range map[string][]byte{certFile: c, keyFile: k} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, mod, mod); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("first.example", time.Now().Add(-time.Hour))
	cfg, err = serverTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if s := serveWith(cfg); !contains(s.dns, "first.example") {
		t.Errorf("served %+v, want first.example", s)
	}
	write("second.example", time.Now())
	if s := serveWith(cfg); !contains(s.dns, "second.example") {
		t.Errorf("served %+v after the files changed, want second.example", s)
	}
	if _, err := serverTLS(filepath.Join(dir, "missing.crt"), keyFile); err == nil {
		t.Error("a missing certificate file accepted")
	}
}

type x509Subject struct{ dns []string }

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
