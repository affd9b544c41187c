package controller

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/liberator-dev/liberator/api/v1alpha1"
	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
	"github.com/liberator-dev/liberator/internal/metrics"
	"github.com/liberator-dev/liberator/internal/pause"
	"github.com/liberator-dev/liberator/internal/release"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Options are the controller's dependencies, injected.
type Options struct {
	Config   *config.Config
	Kube     kubernetes.Interface
	Client   client.WithWatch // Takeover objects
	Clock    clock.WithTicker
	Metrics  *metrics.Metrics
	Recorder record.EventRecorder
	Log      logr.Logger
	// Fencer returns the fencer for a class; nil means fence.Factory.For,
	// reading credentials Secrets from the leader election namespace.
	Fencer func(config.FenceClass) (fence.Fencer, error)
	// Workers is the number of nodes reconciled at once (default 4).
	Workers int
	// Tick is how often in-memory heartbeat ages are scanned (default 1 s).
	Tick time.Duration
	// StepTimeout bounds one step's API calls (default 30 s, plus the fence
	// timeout for fence steps).
	StepTimeout time.Duration
	// ReplacementWait bounds how long a release by OutOfServiceTaint waits
	// for the StatefulSet controller to recreate the force-deleted pods
	// before it adds the out-of-service taint (default 5 s; negative: no
	// wait).
	ReplacementWait time.Duration
}

// Controller is the takeover controller.
type Controller struct {
	// cfg is the configuration in force (settings.go): read it with conf
	// or confIn, once per decision.
	cfg      atomic.Pointer[settings]
	kube     kubernetes.Interface
	client   client.WithWatch
	clock    clock.WithTicker
	m        *metrics.Metrics
	recorder record.EventRecorder
	log      logr.Logger
	fencer   func(config.FenceClass) (fence.Fencer, error)
	workers  int
	tick     time.Duration
	stepTO   time.Duration
	replWait time.Duration

	health *healthTracker
	api    apiGuard
	queue  workqueue.TypedRateLimitingInterface[string]

	factory      informers.SharedInformerFactory
	leaseFactory informers.SharedInformerFactory
	nodes        cache.SharedIndexInformer
	leases       cache.SharedIndexInformer
	pods         cache.SharedIndexInformer
	vas          cache.SharedIndexInformer
	takeovers    cache.SharedIndexInformer

	// agents watches the agent Leases (agents.go); nil, with its informer,
	// when no fence class uses the agent provider.
	agents       *agentTracker
	agentFactory informers.SharedInformerFactory
	agentLeases  cache.SharedIndexInformer

	// pauseInf watches the pause ConfigMap (pause.go); paused is the pause
	// in force, nil when none.
	pauseFactory informers.SharedInformerFactory
	pauseInf     cache.SharedIndexInformer
	paused       atomic.Pointer[pause.State]

	// counts is the last tick's eligible/unhealthy tally (for metrics and
	// storm transitions); decisions on incidents recount.
	counts  atomic.Pointer[tally]
	stormOn atomic.Bool
	blindOn atomic.Bool
	synced  atomic.Bool
	leading atomic.Bool

	fenceChecks fenceCheckState

	// slots holds maxConcurrent exactly; seen is when this process first
	// saw each incident (monotonic), for the wait provider.
	slots  fenceSlots
	seenMu sync.Mutex
	seen   map[string]time.Time

	// closedOne asks the retention loop for a pass (retention.go).
	closedOne chan struct{}
}

// New builds the controller and its informers; Start runs the informers and
// Run does the work.
func New(o Options) (*Controller, error) {
	if o.Config == nil || o.Kube == nil || o.Client == nil {
		return nil, fmt.Errorf("controller: config, kube client and takeover client are required")
	}
	s, err := newSettings(o.Config)
	if err != nil {
		return nil, err
	}
	c := &Controller{
		kube: o.Kube, client: o.Client, clock: o.Clock, m: o.Metrics, recorder: o.Recorder,
		log: o.Log, fencer: o.Fencer, workers: o.Workers, tick: o.Tick, stepTO: o.StepTimeout, replWait: o.ReplacementWait,
		closedOne: make(chan struct{}, 1),
	}
	c.cfg.Store(s)
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.m == nil {
		c.m = metrics.New()
	}
	if c.recorder == nil {
		c.recorder = &record.FakeRecorder{}
	}
	if c.fencer == nil {
		c.fencer = c.defaultFencer(c.secretGetter())
		c.fenceChecks.defaultFencer = true
	}
	if c.workers <= 0 {
		c.workers = 4
	}
	if c.tick <= 0 {
		c.tick = time.Second
	}
	if c.stepTO <= 0 {
		c.stepTO = 30 * time.Second
	}
	if c.replWait == 0 {
		c.replWait = 5 * time.Second
	}
	c.health = newHealthTracker(c.clock, o.Config.UnhealthyAfter.Duration/2)
	c.api.threshold = int32(o.Config.APIGuard.FailureThreshold)
	c.counts.Store(&tally{})
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodes"})

	c.factory = informers.NewSharedInformerFactoryWithOptions(o.Kube, 0, informers.WithTransform(slim))
	c.leaseFactory = informers.NewSharedInformerFactoryWithOptions(o.Kube, 0,
		informers.WithNamespace(release.NodeLeaseNamespace), informers.WithTransform(slim))
	c.nodes = c.factory.Core().V1().Nodes().Informer()
	c.pods = c.factory.Core().V1().Pods().Informer()
	c.vas = c.factory.Storage().V1().VolumeAttachments().Informer()
	c.leases = c.leaseFactory.Coordination().V1().Leases().Informer()
	if err := c.pods.AddIndexers(cache.Indexers{byNode: podNodeIndex, byOwner: podOwnerIndex}); err != nil {
		return nil, err
	}
	if err := c.vas.AddIndexers(cache.Indexers{byNode: vaNodeIndex}); err != nil {
		return nil, err
	}
	c.takeovers = cache.NewSharedIndexInformer(c.takeoverListWatch(), &v1alpha1.Takeover{}, 0,
		cache.Indexers{byNode: takeoverNodeIndex, byPhase: takeoverPhaseIndex})
	infs := []cache.SharedIndexInformer{c.nodes, c.pods, c.vas, c.leases, c.takeovers}
	c.pauseFactory, c.pauseInf = newPauseInformer(o.Kube, c.secretNamespace())
	infs = append(infs, c.pauseInf)
	if found, margin := agentClasses(o.Config); found {
		c.agents = newAgentTracker(c.clock, margin)
		c.agents.blind = c.health.blind
		c.agentFactory, c.agentLeases = newAgentInformer(o.Kube, c.secretNamespace())
		infs = append(infs, c.agentLeases)
	}
	for _, inf := range infs {
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			c.apiResult("watch", err)
			if c.agents != nil && inf == c.agentLeases {
				c.agents.distrust() // what the relist delivers may be late
			}
		})
	}
	if err := c.addHandlers(); err != nil {
		return nil, err
	}
	if err := c.addPauseHandlers(); err != nil {
		return nil, err
	}
	if c.agents != nil {
		if err := c.addAgentHandlers(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Start runs the informers and waits for their caches. Standby replicas run
// them too, so a new leader acts on a warm cache.
func (c *Controller) Start(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	c.leaseFactory.Start(ctx.Done())
	go c.takeovers.RunWithContext(ctx)
	c.pauseFactory.Start(ctx.Done())
	// The pause is known before anything is decided: a controller that
	// restarts during a pause must not fence before its watch says so.
	synced := []cache.InformerSynced{c.nodes.HasSynced, c.leases.HasSynced, c.pods.HasSynced, c.vas.HasSynced, c.takeovers.HasSynced, c.pauseInf.HasSynced}
	if c.agents != nil {
		c.agentFactory.Start(ctx.Done())
		synced = append(synced, c.agentLeases.HasSynced)
	}
	c.log.Info("waiting for informer caches")
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informer caches did not sync: %w", ctx.Err())
	}
	if c.agents != nil {
		c.agents.synced() // Q starts here: no agent was known fresh before
	}
	c.synced.Store(true)
	c.log.Info("informer caches synced", "nodes", len(c.nodes.GetStore().ListKeys()), "pods", len(c.pods.GetStore().ListKeys()))
	return nil
}

// Leading reports whether Run is under way.
func (c *Controller) Leading() bool { return c.leading.Load() }

// Synced reports whether the caches have synced (readiness).
func (c *Controller) Synced() bool { return c.synced.Load() }

// Run reconciles nodes until ctx is cancelled. It must only run on the
// leader. On cancellation it stops taking new work, lets the steps under way
// finish (each is bounded by its timeout) and returns.
func (c *Controller) Run(ctx context.Context) {
	c.leading.Store(true)
	c.m.IsLeader.Set(1)
	defer func() {
		c.leading.Store(false)
		c.m.IsLeader.Set(0)
	}()
	// Every known node is looked at once on becoming leader.
	for _, name := range c.nodes.GetStore().ListKeys() {
		c.queue.Add(name)
	}
	for _, o := range c.takeovers.GetStore().List() {
		if t := o.(*v1alpha1.Takeover); !t.Status.Phase.Closed() {
			c.queue.Add(t.Spec.NodeName)
		}
	}
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			for c.processNext() {
			}
		})
	}
	wg.Go(func() { c.runFenceChecks(ctx) })
	wg.Go(func() { c.runRetention(ctx) })
	ticker := c.clock.NewTicker(c.tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			c.log.Info("stopping: finishing the steps under way")
			c.queue.ShutDownWithDrain()
			wg.Wait()
			c.log.Info("stopped")
			return
		case <-ticker.C():
			c.scan()
		}
	}
}

func (c *Controller) processNext() bool {
	name, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(name)
	// One configuration for the whole reconcile, however a reload goes.
	cfg := c.conf()
	// Steps run to completion even when the controller is told to stop: each
	// is bounded by its own timeout, and the next leader resumes from the
	// Takeover.
	ctx, cancel := context.WithTimeout(withSettings(context.Background(), cfg), c.stepTO+maxFenceTimeout(cfg))
	defer cancel()
	after, err := c.reconcile(ctx, name)
	switch {
	case err != nil:
		c.log.Error(err, "reconcile failed; retrying with backoff", "node", name)
		c.queue.AddRateLimited(name)
	case after > 0:
		c.queue.Forget(name)
		c.queue.AddAfter(name, after)
	default:
		c.queue.Forget(name)
	}
	return true
}

// maxFenceTimeout is the longest fence call of any class, so that a step
// which fences still has StepTimeout left to record the outcome.
func maxFenceTimeout(cfg *settings) time.Duration {
	var d time.Duration
	for _, fc := range cfg.Fencing.Classes {
		d = max(d, fc.Timeout.Duration)
	}
	return d
}
