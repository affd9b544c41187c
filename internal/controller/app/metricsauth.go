package app

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// How long a decision of the API server on a token and a request is kept:
// a scrape every few seconds costs one TokenReview and one
// SubjectAccessReview a minute, and a token refused or revoked is refused
// again for a while without asking.
const (
	allowedTTL    = time.Minute
	refusedTTL    = 10 * time.Second
	maxDecisions  = 1024
	reviewTimeout = 10 * time.Second
)

// metricsAuth lets a request through only when the API server says so:
// its bearer token must be authenticated by a TokenReview (401 when it is
// missing or not), and the user it belongs to must be allowed, by a
// SubjectAccessReview, the request's verb on its path as a non-resource
// URL (403 when not: RBAC's nonResourceURLs ["/metrics"], verbs ["get"]).
// This is what kube-rbac-proxy and controller-runtime's metrics filter do.
type metricsAuth struct {
	kube kubernetes.Interface
	log  logr.Logger
	now  func() time.Time

	mu        sync.Mutex
	decisions map[[sha256.Size]byte]decision
}

type decision struct {
	status int // http.StatusOK, StatusUnauthorized or StatusForbidden
	until  time.Time
}

func newMetricsAuth(kube kubernetes.Interface, log logr.Logger) *metricsAuth {
	return &metricsAuth{kube: kube, log: log, now: time.Now, decisions: map[[sha256.Size]byte]decision{}}
}

// wrap returns h behind the authentication and authorization.
func (a *metricsAuth) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			http.Error(w, "Unauthorized: a bearer token is required", http.StatusUnauthorized)
			return
		}
		verb := strings.ToLower(r.Method)
		if r.Method == http.MethodHead {
			verb = "get"
		}
		status, err := a.decide(r, token, verb, r.URL.Path)
		switch {
		case err != nil:
			a.log.Error(err, "cannot authenticate or authorize a metrics request", "path", r.URL.Path)
			http.Error(w, "cannot authenticate or authorize the request", http.StatusInternalServerError)
		case status == http.StatusUnauthorized:
			http.Error(w, "Unauthorized", status)
		case status == http.StatusForbidden:
			http.Error(w, "Forbidden: "+verb+" "+r.URL.Path+" is not allowed", status)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func bearerToken(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// decide returns the kept decision for token, verb and path, or asks the
// API server.
func (a *metricsAuth) decide(r *http.Request, token, verb, path string) (int, error) {
	key := sha256.Sum256([]byte(verb + "\x00" + path + "\x00" + token))
	now := a.now()
	a.mu.Lock()
	d, ok := a.decisions[key]
	a.mu.Unlock()
	if ok && now.Before(d.until) {
		return d.status, nil
	}
	status, err := a.review(r, token, verb, path)
	if err != nil {
		return 0, err
	}
	ttl := refusedTTL
	if status == http.StatusOK {
		ttl = allowedTTL
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.decisions) >= maxDecisions {
		for k, d := range a.decisions {
			if !now.Before(d.until) {
				delete(a.decisions, k)
			}
		}
		if len(a.decisions) >= maxDecisions {
			clear(a.decisions)
		}
	}
	a.decisions[key] = decision{status: status, until: now.Add(ttl)}
	return status, nil
}

// review asks the API server who token is (TokenReview) and whether that
// user may verb path (SubjectAccessReview).
func (a *metricsAuth) review(r *http.Request, token, verb, path string) (int, error) {
	ctx, cancel := context.WithTimeout(r.Context(), reviewTimeout)
	defer cancel()
	tr, err := a.kube.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		return 0, err
	}
	if !tr.Status.Authenticated {
		return http.StatusUnauthorized, nil
	}
	u := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := a.kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
			NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: verb},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return 0, err
	}
	if !sar.Status.Allowed {
		return http.StatusForbidden, nil
	}
	return http.StatusOK, nil
}
