package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/liberator-dev/liberator/internal/kubeutil"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// kubeFlags are kubectl's standard flags (genericclioptions.ConfigFlags:
// --kubeconfig, --context, --cluster, --user, -n/--namespace, -s/--server,
// --token, --as, --as-group, --as-uid, --request-timeout, the TLS flags...),
// on every operator command, and -A/--all-namespaces where a command lists
// namespaced objects. --kubeconfig, --context and -n are on the root (as
// before); the controller command declares its own --kubeconfig and
// --context and takes none of the others.
type kubeFlags struct {
	cf *genericclioptions.ConfigFlags
	// allNamespaces is -A (nil on commands without it).
	allNamespaces *bool
}

func newKubeFlags() *kubeFlags {
	return &kubeFlags{cf: genericclioptions.NewConfigFlags(false)}
}

// rootKubeFlags are the kube flags on the root command, given before or
// after the command's name (liberator --kubeconfig K status); the others
// are on the operator commands only.
var rootKubeFlags = map[string]bool{"kubeconfig": true, "context": true, "namespace": true}

// addRootFlags adds --kubeconfig, --context and -n to root, and every
// other standard flag to each command of cmds.
func (k *kubeFlags) addRootFlags(root *cobra.Command, cmds []*cobra.Command) {
	all := pflag.NewFlagSet("kube", pflag.ContinueOnError)
	k.cf.AddFlags(all)
	all.VisitAll(func(f *pflag.Flag) {
		if rootKubeFlags[f.Name] {
			root.PersistentFlags().AddFlag(f)
			return
		}
		for _, c := range cmds {
			c.PersistentFlags().AddFlag(f)
		}
	})
}

// addAllNamespacesFlag adds -A/--all-namespaces to cmd.
func (k *kubeFlags) addAllNamespacesFlag(cmd *cobra.Command) {
	k.allNamespaces = new(bool)
	cmd.Flags().BoolVarP(k.allNamespaces, "all-namespaces", "A", false, "all namespaces (the default; overrides -n)")
}

// namespace is the namespace given with -n, or "" (all namespaces) without
// -n or with -A.
func (k *kubeFlags) namespace() string {
	if k.allNamespaces != nil && *k.allNamespaces {
		return ""
	}
	return *k.cf.Namespace
}

// clients are what an operator command talks to the cluster with.
type clients struct {
	rest *rest.Config
	kube kubernetes.Interface
	// tk reads Takeovers.
	tk client.Client
}

// clients loads the kubeconfig and builds the clients. A missing kubeconfig
// is one clear line, not a connection error to localhost.
func (k *kubeFlags) clients() (*clients, error) {
	rc, err := k.restConfig()
	if err != nil {
		return nil, err
	}
	kube, tk, err := kubeutil.Clients(rc)
	if err != nil {
		return nil, cannotRun(err)
	}
	return &clients{rest: rc, kube: kube, tk: tk}, nil
}

// restConfig is the kubeconfig with the flags applied (--server, --token,
// --as, --request-timeout...).
func (k *kubeFlags) restConfig() (*rest.Config, error) {
	if t := *k.cf.Timeout; t != "" {
		if _, err := strconv.Atoi(t); err != nil {
			if _, err := time.ParseDuration(t); err != nil {
				return nil, usageErrorf("--request-timeout %q: want a duration such as 30s, or whole seconds", t)
			}
		}
	}
	loader := k.cf.ToRawKubeConfigLoader()
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		raw, err := loader.RawConfig()
		if err != nil {
			return nil, cannotRun(fmt.Errorf("cannot read the kubeconfig: %w", err))
		}
		if len(raw.Clusters) == 0 {
			return nil, cannotRun(errors.New("no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config"))
		}
	}
	rc, err := loader.ClientConfig()
	if err != nil {
		return nil, cannotRun(fmt.Errorf("no usable kubeconfig: %w", err))
	}
	rc.UserAgent = "liberator-cli/" + Version
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	return rc, nil
}

// node gets a node, with a one-line error when it does not exist.
func (c *clients) node(ctx context.Context, name string) (*corev1.Node, error) {
	n, err := c.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("node %q not found (liberator status lists the nodes)", name)
	}
	if err != nil {
		return nil, apiError("get node "+name, err)
	}
	return n, nil
}

// takeovers lists the Takeovers of one node (all nodes when node is ""),
// oldest first. A cluster without the CRD has none.
func (c *clients) takeovers(ctx context.Context, node string) ([]v1alpha1.Takeover, error) {
	l, err := listTakeovers(ctx, c.tk, node)
	if err != nil {
		if isNoCRD(err) {
			return nil, nil
		}
		return nil, apiError("list Takeovers", err)
	}
	return l, nil
}

// listTakeovers lists the Takeovers of one node (all when node is ""),
// oldest first. The CRD makes spec.nodeName a selectable field; an API
// server too old for that gets the full list, filtered here.
func listTakeovers(ctx context.Context, tk client.Client, node string) ([]v1alpha1.Takeover, error) {
	l := &v1alpha1.TakeoverList{}
	if node == "" {
		if err := tk.List(ctx, l); err != nil {
			return nil, err
		}
		sortTakeovers(l.Items)
		return l.Items, nil
	}
	err := tk.List(ctx, l, ctrlNodeSelector(node))
	if apierrors.IsBadRequest(err) {
		all := &v1alpha1.TakeoverList{}
		if err = tk.List(ctx, all); err == nil {
			l.Items = nil
			for _, t := range all.Items {
				if t.Spec.NodeName == node {
					l.Items = append(l.Items, t)
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	sortTakeovers(l.Items)
	return l.Items, nil
}

// ctrlNodeSelector selects the Takeovers of one node (the CRD makes
// spec.nodeName a selectable field).
func ctrlNodeSelector(node string) client.ListOption {
	return client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.nodeName", node)}
}

func sortTakeovers(l []v1alpha1.Takeover) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].CreationTimestamp, l[j].CreationTimestamp
		if a.Equal(&b) {
			return l[i].Name < l[j].Name
		}
		return a.Before(&b)
	})
}

// isNoCRD reports whether err says the Takeover kind is not served.
func isNoCRD(err error) bool {
	if apierrors.IsNotFound(err) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "no matches for kind") || strings.Contains(s, "could not find the requested resource")
}

// apiError turns an API error into one line naming what was tried, with a
// hint for the errors operators meet most.
func apiError(what string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return cannotRun(fmt.Errorf("%s: permission denied (%s); ask for the RBAC in docs/cli.md", what, apierrors.ReasonForError(err)))
	case apierrors.IsUnauthorized(err):
		return cannotRun(fmt.Errorf("%s: not authenticated: check the kubeconfig's credentials", what))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// signalContext is ctx, also cancelled by SIGINT and SIGTERM.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}

// completeNodes completes a NODE argument with the cluster's node names.
func completeNodes(k *kubeFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := k.clients()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		l, err := c.kube.CoreV1().Nodes().List(cmd.Context(), metav1.ListOptions{})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, n := range l.Items {
			if strings.HasPrefix(n.Name, toComplete) {
				out = append(out, n.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// addOperatorCommands adds the operator commands (status, evacuate,
// readmit, join-command, drill, confirm-off, pause, resume) to the root,
// with the standard kube flags.
func addOperatorCommands(root *cobra.Command, s IOStreams) {
	k := newKubeFlags()
	cmds := []*cobra.Command{
		newStatusCommand(s, k),
		newEvacuateCommand(s, k),
		newReadmitCommand(s, k),
		newJoinCommand(s, k),
		newDrillCommand(s, k),
		newConfirmOffCommand(s, k),
		newPauseCommand(s, k),
		newResumeCommand(s, k),
	}
	k.addRootFlags(root, cmds)
	root.AddCommand(cmds...)
}
