// Package agentcmd is the liberator agent's command: its flags and the
// wiring to a cluster. It imports nothing of the controller or the operator
// commands, so that a binary made of this command alone stays small (the
// agent's resident memory is mostly the pages of its binary).
package agentcmd

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/liberator-dev/liberator/internal/agent"
	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/internal/logging"
)

// agentOptions are the agent command's flags.
type agentOptions struct {
	cfg         agent.Config
	keyFile     string
	kubeconfig  string
	kubeContext string
	verbosity   int
	logFormat   string
}

func (o *agentOptions) addFlags(fs *pflag.FlagSet) {
	d := agentlease.DefaultBounds
	c := &o.cfg
	fs.StringVar(&c.Node, "node", "", "this node's name (default $NODE_NAME)")
	fs.StringVar(&c.Namespace, "namespace", "tkr-system", "namespace of the agent Leases")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "path of a kubeconfig (in-cluster config when empty and KUBECONFIG is unset)")
	fs.StringVar(&o.kubeContext, "context", "", "kubeconfig context to use")
	fs.StringVar(&c.WatchdogDevice, "watchdog-device", "/dev/watchdog", `watchdog device; "unix:PATH" selects a test bed's socket watchdog`)
	fs.DurationVar(&c.Bounds.WatchdogTimeout, "watchdog-timeout", d.WatchdogTimeout, "watchdog timeout to set (whole seconds); the one the device accepts is published")
	fs.DurationVar(&c.Bounds.RenewInterval, "renew-interval", d.RenewInterval, "how often a healthy agent renews its Lease")
	fs.DurationVar(&c.Bounds.CheckInterval, "check-interval", d.CheckInterval, "the loop's period: how often a failing renewal is retried and the peers asked again; every API call is bounded by half of it")
	fs.DurationVar(&c.Bounds.APITimeout, "api-timeout", d.APITimeout, "time without a successful renewal after which the agent asks its peers")
	fs.DurationVar(&c.Bounds.PeerTimeout, "peer-timeout", d.PeerTimeout, "how long one round of questions to the peers waits for answers")
	fs.StringVar(&c.PeerListen, "peer-listen", fmt.Sprintf("0.0.0.0:%d", agentlease.DefaultPeerPort), "UDP host:port on which the agent answers its peers")
	fs.StringVar(&c.PeerAddress, "peer-address", "", "host:port at which the peers reach this agent (default: --peer-listen when it names a host, else $POD_IP or $HOST_IP with its port)")
	fs.StringVar(&o.keyFile, "peer-key-file", "", "file holding the key all agents share, at least 32 bytes, used as is (required)")
	fs.StringVar(&c.BootIDFile, "boot-id-file", "/proc/sys/kernel/random/boot_id", "file holding the node's boot ID")
	fs.StringVar(&c.HealthAddr, "health-addr", ":9448", "address serving /healthz, /readyz and /metrics (empty: none)")
	fs.IntVarP(&o.verbosity, "v", "v", 0, "log verbosity")
	logging.AddFlag(fs, &o.logFormat)
}

// complete fills the defaults taken from the environment and reads the
// key; the agent validates the rest.
func (o *agentOptions) complete() error {
	if err := logging.Validate(o.logFormat); err != nil {
		return err
	}
	if o.cfg.Node == "" {
		o.cfg.Node = os.Getenv("NODE_NAME")
	}
	if o.cfg.PeerAddress == "" {
		o.cfg.PeerAddress = agent.DefaultPeerAddress(o.cfg.PeerListen)
	}
	if o.keyFile == "" {
		return fmt.Errorf("--peer-key-file is required: the key all agents share")
	}
	key, err := os.ReadFile(o.keyFile)
	if err != nil {
		return fmt.Errorf("--peer-key-file: %w", err)
	}
	o.cfg.PeerKey = key
	return o.cfg.Validate()
}

// New builds the agent command; it logs to errOut and names itself
// version in its user agent.
func New(errOut io.Writer, version string) *cobra.Command {
	o := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: self-fencing with the node's watchdog",
		Long: `Run the liberator agent on a node (a DaemonSet, one per node). It holds the
node's watchdog and feeds it only while it can prove that it reaches the API
server (a renewal of its Lease tkr-system/liberator-agent-NODE), or that the
API server is down for a quorum of agents (it asks its peers over UDP,
authenticated with the shared key). When it is cut off it stops feeding and
the watchdog resets the node; when the controller asks it to fence its node
it stops feeding, then acknowledges on its Lease.

It publishes on its Lease the bounds it guarantees: unless a quorum of agents
sees the API down for everyone, a node cut off from the API has been reset by
its watchdog at most
  api-timeout + check-interval + peer-timeout + watchdog-timeout
after its last successful renewal (26s with the defaults).

If the agent hangs, crashes or is killed, nobody feeds the watchdog and it
resets the node: that is intended, as for SBD. Only a clean stop (SIGTERM,
SIGINT) that could first publish armed=false disarms it (the magic close).
See docs/agent.md.`,
		Example: `  # in the cluster (a privileged DaemonSet; NODE_NAME and POD_IP from the downward API)
  liberator agent --peer-key-file=/etc/liberator-agent/key

  # on a test bed node, with the bed's socket watchdog
  liberator agent --kubeconfig kubeconfig --node n1 --watchdog-device unix:/run/bed/n1.sock \
    --peer-listen 10.0.0.11:9447 --peer-key-file key --health-addr 10.0.0.11:9448`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(); err != nil {
				return err
			}
			return run(cmd, errOut, version, o)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func run(cmd *cobra.Command, errOut io.Writer, version string, o *agentOptions) error {
	log, err := o.logger(errOut)
	if err != nil {
		return err
	}
	klog.SetLoggerWithOptions(log, klog.ContextualLogger(true))
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.kubeconfig
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: o.kubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("no usable kubeconfig (%v); pass --kubeconfig or run in a cluster", err)
	}
	rc.UserAgent = "liberator-agent/" + version
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	a, err := agent.New(o.cfg, agent.Deps{Kube: kube, Clock: clock.RealClock{}, Log: log})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return a.Run(ctx)
}

// logger is the agent's logger: --log-format and -v, writing to out.
func (o *agentOptions) logger(out io.Writer) (logr.Logger, error) {
	return logging.New(o.logFormat, o.verbosity, out)
}
