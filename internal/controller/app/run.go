package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/liberator-dev/liberator/internal/kubeutil"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/internal/metrics"
)

// Run runs the controller with the configuration cfg (see Options.Load)
// until ctx is cancelled, SIGTERM or SIGINT arrives, or an endpoint cannot
// be served. It returns at once, with a one-line error, when the cluster
// cannot be reached or lacks the CRD or the RBAC the controller needs.
func Run(parent context.Context, o *Options, cfg *config.Config) error {
	log, err := o.Logger()
	if err != nil {
		return err
	}
	klog.SetLoggerWithOptions(log, klog.ContextualLogger(true))
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, os.Interrupt)
	defer stop()

	cl, err := newClients(o)
	if err != nil {
		return err
	}
	if err := preflight(ctx, cl.kube, cfg); err != nil {
		return err
	}
	m := metrics.New()
	m.SetBuildInfo(o.Version, o.Revision)
	recorder, shutdownEvents := startEvents(ctx, cl)
	defer shutdownEvents()

	c, err := controller.New(controller.Options{
		Config: cfg, Kube: cl.kube, Client: cl.client, Clock: clock.RealClock{}, Metrics: m, Recorder: recorder, Log: log,
	})
	if err != nil {
		return err
	}
	startReloader(ctx, o, c, m, log)
	log.Info("starting liberator controller", "version", o.Version, "unhealthyAfter", cfg.UnhealthyAfter.Duration,
		"releaseStrategy", cfg.ReleaseStrategy, "maxUnhealthy", cfg.MaxUnhealthy.String(), "dryRun", cfg.DryRun,
		"fenceClasses", len(cfg.Fencing.Classes))

	r := &runner{ctx: ctx, stop: stop, log: log, cfg: cfg, c: c, kube: cl.kube, recorder: recorder,
		watchdog: leaderelection.NewLeaderHealthzAdaptor(20 * time.Second), serveErr: make(chan error, 2)}
	shutdownServers, err := r.serve(m, o)
	if err != nil {
		return err
	}
	defer shutdownServers()
	if err := c.Start(ctx); err != nil {
		return err
	}
	if !cfg.LeaderElection.Enabled {
		return r.runAlone()
	}
	return r.runElected()
}

// clients are what the controller talks to the cluster with.
type clients struct {
	kube   kubernetes.Interface
	client client.WithWatch
	scheme *runtime.Scheme
}

// newClients loads the kubeconfig and builds the clients.
func newClients(o *Options) (*clients, error) {
	rc, err := restConfig(o.Kubeconfig, o.KubeContext)
	if err != nil {
		return nil, err
	}
	rc.UserAgent = "liberator-controller/" + o.Version
	rc.QPS, rc.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	kube, cl, err := kubeutil.Clients(rc)
	if err != nil {
		return nil, err
	}
	return &clients{kube: kube, client: cl, scheme: cl.Scheme()}, nil
}

// restConfig loads the kubeconfig named by the flags, KUBECONFIG, or the
// in-cluster config.
func restConfig(path, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no usable kubeconfig (%w); pass --kubeconfig or run in a cluster", err)
	}
	return cfg, nil
}

// preflight refuses to start, with one line, when the CRD or a permission
// the controller needs is missing.
func preflight(ctx context.Context, kube kubernetes.Interface, cfg *config.Config) error {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return controller.Preflight(pctx, kube, cfg.LeaderElection.Namespace, cfg.LeaderElection.Name)
}

// startEvents starts recording events to the API server; the returned
// function stops it.
func startEvents(ctx context.Context, cl *clients) (record.EventRecorder, func()) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cl.kube.CoreV1().Events("")})
	return broadcaster.NewRecorder(cl.scheme, corev1.EventSource{Component: "liberator"}), broadcaster.Shutdown
}

// runner is a started controller and what its run needs.
type runner struct {
	ctx      context.Context
	stop     context.CancelFunc
	log      logr.Logger
	cfg      *config.Config
	c        *controller.Controller
	kube     kubernetes.Interface
	recorder record.EventRecorder
	watchdog *leaderelection.HealthzAdaptor
	// serveErr receives the error of an endpoint that cannot be served.
	serveErr chan error
}

// runAlone runs the controller without leader election, until ctx ends or
// an endpoint fails.
func (r *runner) runAlone() error {
	r.log.Info("leader election disabled: acting as the only replica")
	done := make(chan struct{})
	go func() { r.c.Run(r.ctx); close(done) }()
	select {
	case err := <-r.serveErr:
		r.stop()
		<-done
		return err
	case <-done:
		return nil
	}
}
