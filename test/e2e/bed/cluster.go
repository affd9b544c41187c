package bed

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KeepEnv names the environment variable that, when set to a non-empty
// value, makes Stop leave the cluster's directory (logs, kubeconfigs) in
// place and log where it is.
const KeepEnv = "LIBERATOR_BED_KEEP"

// ControlPlaneNode is the name of the simulated control-plane node.
const ControlPlaneNode = "control-plane-1"

// Options configures Start.
type Options struct {
	// Workers is the number of simulated worker nodes, named worker-1..N.
	// A node ControlPlaneNode, labeled node-role.kubernetes.io/control-plane
	// and tainted NoSchedule, is always added.
	Workers int
	// LeaseDurationSeconds is the duration of each node's Lease; kwok renews
	// it every quarter of that, like the kubelet. Default 40.
	LeaseDurationSeconds int
	// KCMFlags are extra kube-controller-manager flags (name without dashes
	// to value). They override the defaults, which are Kubernetes' own:
	// node-monitor-grace-period=50s, node-monitor-period=5s.
	KCMFlags map[string]string
	// SchedulerFlags are extra kube-scheduler flags (name without dashes
	// to value), such as kube-api-qps for a cluster with many pods.
	SchedulerFlags map[string]string
	// EtcdFlags are extra etcd flags (name without dashes to value), such
	// as unsafe-no-fsync for a throwaway cluster whose disk would
	// otherwise bound its write rate.
	EtcdFlags map[string]string
	// AuditPolicy is the path of an audit policy file for the API server;
	// the audit log is then AuditLog(). Empty means no audit log.
	AuditPolicy string
	// Isolated puts every worker in a network namespace of its own on a
	// bridge of the cluster's, with a watchdog device, ready for an agent
	// (StartAgents): the bed can then cut it off for real (Partition). It
	// needs root and ip(8). See netns.go.
	Isolated bool
	// RebootAfterReset is how long a node reset by its watchdog stays off
	// before it boots again (once it is not partitioned); 0 keeps it off
	// until PowerOn.
	RebootAfterReset time.Duration
	// BinDir holds the test-bed binaries; empty means Binaries().
	BinDir string
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Cluster is a running control plane with kwok-simulated nodes.
type Cluster struct {
	name       string
	dir        string
	bin        string
	kubeconfig string
	rest       *rest.Config
	client     kubernetes.Interface
	logf       func(string, ...any)
	lease      int
	stages     string

	mu    sync.Mutex
	nodes map[string]*simNode
	order []string
	// sliceNodes counts the nodes added by AddSlice (their addresses).
	sliceNodes int

	runCtx  context.Context
	cancel  context.CancelFunc
	volumes *volumeSim

	// net is the bridge of the isolated nodes (nil without Options.Isolated);
	// agent is how their agents run (nil until StartAgents).
	net         *network
	agent       *agentSetup
	rebootAfter time.Duration

	// components are the control-plane processes as kwokctl started them
	// (see StopComponent).
	components map[string]componentProc
	// held are the components stopped on purpose (not revived).
	held map[string]bool
	// ports holds the start lock while a component is stopped.
	ports map[string]func()
	// startMu serializes starting components.
	startMu sync.Mutex

	stopOnce sync.Once
	stopErr  error
}

// Start brings up a cluster: etcd, kube-apiserver, kube-controller-manager
// and kube-scheduler through kwokctl, one kwok process per simulated node,
// and the volume simulation (see volumeSim). It returns once every node is
// Ready and schedulable. On failure it stops every process it started and
// names the failing component and its log, which it leaves in place.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	begin := time.Now()
	logf := opts.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if opts.Workers < 0 {
		return nil, fmt.Errorf("bed: negative worker count %d", opts.Workers)
	}
	if opts.LeaseDurationSeconds == 0 {
		opts.LeaseDurationSeconds = 40
	}
	if opts.LeaseDurationSeconds < 4 {
		return nil, fmt.Errorf("bed: lease duration %ds is below 4s", opts.LeaseDurationSeconds)
	}
	bin := opts.BinDir
	if bin == "" {
		if bin, err = Binaries(ctx, logf); err != nil {
			return nil, fmt.Errorf("bed: %w", err)
		}
	} else if err := checkBinaries(bin); err != nil {
		return nil, fmt.Errorf("bed: %w", err)
	}

	if err := os.MkdirAll(stateRoot(), 0o755); err != nil {
		return nil, fmt.Errorf("bed: %w", err)
	}
	dir, err := os.MkdirTemp(stateRoot(), "bed-")
	if err != nil {
		return nil, fmt.Errorf("bed: %w", err)
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bed: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		name:   filepath.Base(dir),
		dir:    dir,
		bin:    bin,
		logf:   logf,
		lease:  opts.LeaseDurationSeconds,
		nodes:  map[string]*simNode{},
		runCtx: runCtx,
		cancel: cancel,

		rebootAfter: opts.RebootAfterReset,
	}
	defer func() {
		if err != nil {
			if serr := c.shutdown(false); serr != nil {
				logf("bed: cleaning up after failed start: %v", serr)
			}
			logf("bed: logs kept in %s (removed by the next Start once this process has exited)", dir)
		}
	}()

	if err := c.createControlPlane(ctx, opts); err != nil {
		return nil, err
	}
	logf("bed: control plane up in %s", time.Since(begin).Round(time.Millisecond))

	if opts.Isolated {
		if err := c.setupNetwork(); err != nil {
			return nil, err
		}
	}
	if c.stages, err = writeStages(dir); err != nil {
		return nil, fmt.Errorf("bed: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		return nil, fmt.Errorf("bed: %w", err)
	}
	names := []string{ControlPlaneNode}
	for i := 1; i <= opts.Workers; i++ {
		names = append(names, fmt.Sprintf("worker-%d", i))
	}
	for i, name := range names {
		n := &simNode{
			name:         name,
			index:        i + 1,
			controlPlane: name == ControlPlaneNode,
			log:          filepath.Join(dir, "nodes", name+".log"),
			pidFile:      filepath.Join(dir, "nodes", name+".pid"),
			bootIDFile:   filepath.Join(dir, "nodes", name+".boot_id"),
		}
		c.nodes[name] = n
		c.order = append(c.order, name)
		if err := n.newBootID(); err != nil {
			return nil, err
		}
		if opts.Isolated && !n.controlPlane {
			if err := c.isolate(n); err != nil {
				return nil, err
			}
		}
		if err := c.createNode(ctx, n); err != nil {
			return nil, err
		}
		if err := c.startKwok(n); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := c.waitNodeUp(ctx, c.nodes[name], 60*time.Second); err != nil {
			return nil, err
		}
	}
	c.volumes = newVolumeSim(c.client, c.nodeAttachable, logf)
	if err := c.volumes.start(runCtx); err != nil {
		return nil, fmt.Errorf("bed: volume simulation: %w", err)
	}
	logf("bed: cluster %s ready with %d nodes in %s (dir %s)", c.name, len(names), time.Since(begin).Round(time.Millisecond), dir)
	return c, nil
}

// createControlPlane runs kwokctl create cluster, retrying when a component
// lost a port it was given to another process.
func (c *Cluster) createControlPlane(ctx context.Context, opts Options) error {
	kcm := map[string]string{
		"node-monitor-grace-period": "50s",
		"node-monitor-period":       "5s",
	}
	for k, v := range opts.KCMFlags {
		kcm[strings.TrimLeft(k, "-")] = v
	}
	args := []string{
		"--name", c.name,
		"create", "cluster",
		"--runtime", "binary",
		"--disable", "kwok-controller",
		"--heartbeat-factor", "1",
		"--kube-apiserver-binary", filepath.Join(c.bin, "kube-apiserver"),
		"--kube-controller-manager-binary", filepath.Join(c.bin, "kube-controller-manager"),
		"--kube-scheduler-binary", filepath.Join(c.bin, "kube-scheduler"),
		"--etcd-binary", filepath.Join(c.bin, "etcd"),
		"--kwok-controller-binary", filepath.Join(c.bin, "kwok"),
		"--kubeconfig", filepath.Join(c.dir, "kwokctl-kubeconfig.yaml"),
		"--quiet-pull",
		"--wait", "1m",
	}
	var extra [][]string
	for component, flags := range map[string]map[string]string{
		"kube-controller-manager": kcm, "kube-scheduler": opts.SchedulerFlags, "etcd": opts.EtcdFlags,
	} {
		var a []string
		for _, k := range slices.Sorted(maps.Keys(flags)) {
			a = append(a, component+"="+strings.TrimLeft(k, "-")+"="+flags[k])
		}
		if len(a) > 0 {
			extra = append(extra, a)
		}
	}
	// kwokctl v0.8.0 files the k-th component's arguments under the
	// position of its first --extra-args among all of them: each
	// component's first one must come k-th.
	slices.SortFunc(extra, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	for _, a := range extra {
		args = append(args, "--extra-args", a[0])
	}
	for _, a := range extra {
		for _, v := range a[1:] {
			args = append(args, "--extra-args", v)
		}
	}
	if opts.AuditPolicy != "" {
		args = append(args, "--kube-audit-policy", opts.AuditPolicy)
	}
	clusterDir := filepath.Join(c.dir, "kwok", "clusters", c.name)
	logsDir := filepath.Join(clusterDir, "logs")
	c.kubeconfig = filepath.Join(clusterDir, "kubeconfig.yaml")

	// kwokctl picks free ports by probing them; starting two clusters at
	// once could hand the same port to both.
	unlock, err := lockFile(filepath.Join(stateRoot(), "start.lock"))
	if err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	defer unlock()
	reapStale(c.logf)

	const attempts = 3
	for attempt := 1; ; attempt++ {
		out, err := c.kwokctl(ctx, args...)
		if err == nil {
			break
		}
		failed := failedComponent(logsDir)
		if _, derr := c.kwokctl(context.Background(), "--name", c.name, "delete", "cluster"); derr != nil {
			c.logf("bed: kwokctl delete cluster after failed create: %v", derr)
		}
		if failed.portInUse && attempt < attempts && ctx.Err() == nil {
			c.logf("bed: %s lost its port (%s); retrying", failed.name, failed.log)
			if err := os.RemoveAll(clusterDir); err != nil {
				return fmt.Errorf("bed: %w", err)
			}
			continue
		}
		if failed.name != "" {
			return fmt.Errorf("bed: %s failed to start (log: %s): %s\nkwokctl: %w\n%s", failed.name, failed.log, failed.line, err, lastLines(out, 10))
		}
		return fmt.Errorf("bed: kwokctl create cluster: %w (component logs in %s)\n%s", err, logsDir, lastLines(out, 10))
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return fmt.Errorf("bed: load kubeconfig %s: %w", c.kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	c.rest = cfg
	if c.client, err = kubernetes.NewForConfig(cfg); err != nil {
		return fmt.Errorf("bed: %w", err)
	}
	// kwokctl does not wait for the controller manager and the scheduler;
	// each holds its leader Lease once it works. kwok needs the namespaces.
	pending := "namespaces"
	err = waitFor(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		if f, died := c.componentDied(logsDir); died {
			return false, fmt.Errorf("%s exited (log: %s): %s", f.name, f.log, f.line)
		}
		for _, ns := range []string{metav1.NamespaceDefault, corev1.NamespaceNodeLease} {
			if _, err := c.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
				pending = "kube-apiserver serving namespace " + ns
				return false, nil
			}
		}
		for _, component := range []string{"kube-controller-manager", "kube-scheduler"} {
			l, err := c.client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, component, metav1.GetOptions{})
			if err != nil || !leaseFresh(l) {
				pending = component + " leading (log: " + filepath.Join(logsDir, component+".log") + ")"
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		if ctx.Err() == nil && wait.Interrupted(err) {
			return fmt.Errorf("bed: waiting for %s: %w", pending, err)
		}
		return fmt.Errorf("bed: %w", err)
	}
	return nil
}

// componentDied reports a control-plane component whose process is gone.
func (c *Cluster) componentDied(logsDir string) (componentFailure, bool) {
	pids, _ := filepath.Glob(filepath.Join(c.dir, "kwok", "clusters", c.name, "pids", "*.pid"))
	for _, f := range pids {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || processExists(pid) {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(f), ".pid")
		failure := componentFailure{name: name, log: filepath.Join(logsDir, name+".log")}
		if raw, err := os.ReadFile(failure.log); err == nil {
			failure.line = lastLines(string(raw), 1)
		}
		return failure, true
	}
	return componentFailure{}, false
}

// kwokctl runs kwokctl with its state confined to the cluster directory.
func (c *Cluster) kwokctl(ctx context.Context, args ...string) (string, error) {
	home := filepath.Join(c.dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "kwokctl"), args...)
	cmd.Env = append(os.Environ(),
		"HOME="+home,
		"KWOK_WORKDIR="+filepath.Join(c.dir, "kwok"),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type componentFailure struct {
	name, log, line string
	portInUse       bool
}

// fatalLine matches the lines with which a component gives up: a klog fatal
// line (FMMDD hh:mm:ss...), a cobra or Go error, a panic, or a port taken.
var fatalLine = regexp.MustCompile(`^(F\d{4} |Error: |error: |panic: )|address already in use`)

// failedComponent looks through kwokctl's component logs for the first one
// reporting a fatal start-up error.
func failedComponent(logsDir string) componentFailure {
	entries, err := os.ReadDir(logsDir)
	if err != nil {
		return componentFailure{}
	}
	for _, e := range entries {
		p := filepath.Join(logsDir, e.Name())
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(raw), "\n") {
			if fatalLine.MatchString(line) {
				return componentFailure{
					name:      strings.TrimSuffix(e.Name(), ".log"),
					log:       p,
					line:      line,
					portInUse: strings.Contains(line, "address already in use"),
				}
			}
		}
	}
	return componentFailure{}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Name is the kwokctl cluster name.
func (c *Cluster) Name() string { return c.name }

// Dir is the directory holding the cluster's state and logs.
func (c *Cluster) Dir() string { return c.dir }

// LogDir is the directory holding the control-plane components' logs.
func (c *Cluster) LogDir() string {
	return filepath.Join(c.dir, "kwok", "clusters", c.name, "logs")
}

// AuditLog is the path of the API server's audit log (with
// Options.AuditPolicy).
func (c *Cluster) AuditLog() string { return filepath.Join(c.LogDir(), "audit.log") }

// Kubeconfig is the path of the cluster-admin kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// BinDir is the directory holding the pinned binaries the cluster runs
// (hack/tools/build.sh), kubectl among them.
func (c *Cluster) BinDir() string { return c.bin }

// RESTConfig returns a copy of the cluster-admin client configuration.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Client is a cluster-admin clientset.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Nodes lists the simulated nodes in creation order, control plane first.
func (c *Cluster) Nodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.order)
}

// Stop stops every process the cluster started and removes its directory
// (unless LIBERATOR_BED_KEEP is set). It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		begin := time.Now()
		keep := os.Getenv(KeepEnv) != ""
		c.stopErr = c.shutdown(!keep)
		c.logf("bed: cluster %s stopped in %s", c.name, time.Since(begin).Round(time.Millisecond))
		if keep {
			c.logf("bed: %s set; cluster files kept in %s", KeepEnv, c.dir)
		}
	})
	return c.stopErr
}

// shutdown stops the volume simulation, the kwok processes and the control plane,
// and optionally removes the cluster directory.
func (c *Cluster) shutdown(remove bool) error {
	c.cancel()
	var errs []error
	c.mu.Lock()
	for _, name := range c.order {
		n := c.nodes[name]
		if err := n.kill(); err != nil {
			errs = append(errs, fmt.Errorf("stop kwok of %s: %w", name, err))
		}
		if err := n.killAgent(); err != nil {
			errs = append(errs, fmt.Errorf("stop agent of %s: %w", name, err))
		}
		if n.watchdog != nil {
			if err := n.watchdog.close(); err != nil {
				errs = append(errs, fmt.Errorf("close watchdog of %s: %w", name, err))
			}
		}
	}
	c.mu.Unlock()
	c.removeNet()
	leftover := recordedPIDs(c.dir)
	if c.kubeconfig != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if out, err := c.kwokctl(ctx, "--name", c.name, "delete", "cluster"); err != nil {
			errs = append(errs, fmt.Errorf("kwokctl delete cluster: %w: %s", err, lastLines(out, 5)))
		}
		cancel()
	}
	// Whatever kwokctl left running.
	if err := killPIDs(leftover); err != nil {
		errs = append(errs, err)
	}
	if remove {
		if err := os.RemoveAll(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bed: stop %s: %w", c.name, err)
	}
	return nil
}

// waitFor polls cond every interval until it returns true, an error, or
// timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, cond)
}

// ignoreNotFound returns nil for a NotFound error.
func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
