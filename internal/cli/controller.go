package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/controller"
	"github.com/liberator-dev/liberator/internal/metrics"
)

// controllerOptions are the controller command's flags. A flag that is set
// wins over the config file.
type controllerOptions struct {
	configPath      string
	kubeconfig      string
	kubeContext     string
	verbosity       int
	unhealthyAfter  time.Duration
	healthyDelay    time.Duration
	releaseStrategy string
	maxUnhealthy    string
	maxConcurrent   int
	dryRun          bool
	leaderElect     bool
	metricsAddr     string
	healthAddr      string
}

func (o *controllerOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.configPath, "config", "", "path of the ControllerConfig file (defaults apply when empty)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path of a kubeconfig (in-cluster config when empty and KUBECONFIG is unset)")
	fs.StringVar(&o.kubeContext, "context", "", "kubeconfig context to use")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity")
	fs.DurationVar(&o.unhealthyAfter, "unhealthy-after", 0, "overrides unhealthyAfter")
	fs.DurationVar(&o.healthyDelay, "healthy-delay", 0, "overrides healthyDelay")
	fs.StringVar(&o.releaseStrategy, "release-strategy", "", "overrides releaseStrategy (OutOfServiceTaint, DeleteNode, ForceDelete)")
	fs.StringVar(&o.maxUnhealthy, "max-unhealthy", "", "overrides maxUnhealthy (a count or a percentage)")
	fs.IntVar(&o.maxConcurrent, "max-concurrent", 0, "overrides maxConcurrent")
	fs.BoolVar(&o.dryRun, "dry-run", false, "overrides dryRun: log and record what would be done, do nothing")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "overrides leaderElection.enabled")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "overrides metricsAddr")
	fs.StringVar(&o.healthAddr, "health-addr", "", "overrides healthAddr")
}

// load reads the config file and applies the flags that were set.
func (o *controllerOptions) load(fs *pflag.FlagSet) (*config.Config, error) {
	cfg, err := config.Load(o.configPath)
	if err != nil {
		return nil, err
	}
	set := func(name string, f func()) {
		if fs.Changed(name) {
			f()
		}
	}
	set("unhealthy-after", func() { cfg.UnhealthyAfter.Duration = o.unhealthyAfter })
	set("healthy-delay", func() { cfg.HealthyDelay.Duration = o.healthyDelay })
	set("release-strategy", func() { cfg.ReleaseStrategy = o.releaseStrategy })
	set("max-unhealthy", func() { cfg.MaxUnhealthy = intstr.Parse(o.maxUnhealthy) })
	set("max-concurrent", func() { cfg.MaxConcurrent = o.maxConcurrent })
	set("dry-run", func() { cfg.DryRun = o.dryRun })
	set("leader-elect", func() { cfg.LeaderElection.Enabled = o.leaderElect })
	set("metrics-addr", func() { cfg.MetricsAddr = o.metricsAddr })
	set("health-addr", func() { cfg.HealthAddr = o.healthAddr })
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration (file and flags): %w", err)
	}
	return cfg, nil
}

func newControllerCommand(s IOStreams) *cobra.Command {
	o := &controllerOptions{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the takeover controller",
		Long: `Run the takeover controller. It watches Nodes, their Leases, Pods and
VolumeAttachments; when a node has been unhealthy for the whole unhealthyAfter
window it fences the node, releases its stateful pods and records the incident
as a Takeover. Flags override the config file.`,
		Example: `  # in the cluster (see config/manager)
  liberator controller --config=/etc/liberator/config.yaml

  # from a workstation, dry run
  liberator controller --kubeconfig ~/.kube/config --dry-run --leader-elect=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.load(cmd.Flags())
			if err != nil {
				return err
			}
			return runController(cmd.Context(), s, o, cfg)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
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

func runController(parent context.Context, s IOStreams, o *controllerOptions, cfg *config.Config) error {
	log := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(o.verbosity), textlogger.Output(s.ErrOut)))
	klog.SetLoggerWithOptions(log, klog.ContextualLogger(true))
	ctx, stop := signal.NotifyContext(parent, syscall.SIGTERM, os.Interrupt)
	defer stop()

	rc, err := restConfig(o.kubeconfig, o.kubeContext)
	if err != nil {
		return err
	}
	rc.UserAgent = "liberator-controller/" + Version
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cl, err := client.NewWithWatch(rc, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = controller.Preflight(pctx, kube, cfg.LeaderElection.Namespace, cfg.LeaderElection.Name)
	cancel()
	if err != nil {
		return err
	}

	m := metrics.New()
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "liberator"})

	c, err := controller.New(controller.Options{
		Config: cfg, Kube: kube, Client: cl, Clock: clock.RealClock{}, Metrics: m, Recorder: recorder, Log: log,
	})
	if err != nil {
		return err
	}
	log.Info("starting liberator controller", "version", Version, "unhealthyAfter", cfg.UnhealthyAfter.Duration,
		"releaseStrategy", cfg.ReleaseStrategy, "maxUnhealthy", cfg.MaxUnhealthy.String(), "dryRun", cfg.DryRun,
		"fenceClasses", len(cfg.Fencing.Classes))

	var le *leaderelection.LeaderElector
	watchdog := leaderelection.NewLeaderHealthzAdaptor(20 * time.Second)
	serveErr := make(chan error, 2)
	servers := []*http.Server{
		serve(cfg.MetricsAddr, metricsMux(m), serveErr),
		serve(cfg.HealthAddr, healthMux(c, watchdog), serveErr),
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
	}()
	if err := c.Start(ctx); err != nil {
		return err
	}

	if !cfg.LeaderElection.Enabled {
		log.Info("leader election disabled: acting as the only replica")
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		select {
		case err := <-serveErr:
			stop()
			<-done
			return err
		case <-done:
			return nil
		}
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		host, _ := os.Hostname()
		id = host
	}
	id += "_" + string(uuid.NewUUID())
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, cfg.LeaderElection.Namespace, cfg.LeaderElection.Name,
		kube.CoreV1(), kube.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: id, EventRecorder: recorder})
	if err != nil {
		return err
	}
	// The leader lease is released only after the work loop has finished its
	// steps, so the next leader never overlaps with a step under way.
	leCtx, leCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer leCancel()
	le, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, Name: cfg.LeaderElection.Name,
		LeaseDuration:   cfg.LeaderElection.LeaseDuration.Duration,
		RenewDeadline:   cfg.LeaderElection.RenewDeadline.Duration,
		RetryPeriod:     cfg.LeaderElection.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		WatchDog:        watchdog,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				log.Info("became leader", "identity", id)
				runCtx, cancel := context.WithCancel(ctx)
				go func() {
					select {
					case <-lctx.Done():
					case <-runCtx.Done():
					}
					cancel()
				}()
				c.Run(runCtx)
				leCancel()
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					// Lost the lease without being asked to stop: another
					// replica may act now, so this one must stop at once.
					log.Info("lost leadership; exiting so that only one replica acts")
					os.Exit(1)
				}
				log.Info("released leadership")
			},
			OnNewLeader: func(identity string) {
				if identity != id {
					log.Info("standing by", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		// If this replica never led, nothing runs to cancel the elector.
		if !c.Leading() {
			leCancel()
		}
	}()
	go func() {
		if err := <-serveErr; err != nil {
			log.Error(err, "server failed")
			stop()
		}
	}()
	le.Run(leCtx)
	return nil
}

func serve(addr string, h http.Handler, errs chan<- error) *http.Server {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("cannot serve on %s: %w", addr, err)
		}
	}()
	return srv
}

func metricsMux(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	return mux
}

func healthMux(c *controller.Controller, wd *leaderelection.HealthzAdaptor) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := wd.Check(r); err != nil {
			http.Error(w, "leader election: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !c.Synced() {
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}
