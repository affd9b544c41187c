package controller

import (
	"context"
	"fmt"
	"sync"

	"github.com/liberator-dev/liberator/api/v1alpha1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
	corev1 "k8s.io/api/core/v1"
)

// incidentClass is the fence class of tk's node under cfg: the class recorded on the
// incident when it opened (so that a node whose object was deleted can be
// fenced by name), else the one its labels select now. A recorded class
// that cfg no longer has with the recorded provider gives nil: the incident
// is held, never fenced through another provider (SetConfig).
func incidentClass(cfg *settings, tk *v1alpha1.Takeover, node *corev1.Node) *config.FenceClass {
	if name := tk.Spec.FenceClass; name != "" {
		for i := range cfg.Fencing.Classes {
			if fc := &cfg.Fencing.Classes[i]; fc.Name == name && fc.Provider == tk.Spec.FenceProvider {
				return fc
			}
		}
		return nil
	}
	return fenceClass(cfg, node)
}

// fenceClass returns the node's fence class under cfg, or nil.
func fenceClass(cfg *settings, n *corev1.Node) *config.FenceClass {
	if n == nil {
		return nil
	}
	return cfg.ClassFor(n.Name, n.Labels)
}

// secretNamespace is where credentials Secrets live: the controller's own
// namespace, which is that of its leader election Lease.
func (c *Controller) secretNamespace() string {
	if ns := c.conf().LeaderElection.Namespace; ns != "" {
		return ns
	}
	return "tkr-system"
}

// secretGetter reads credentials Secrets through the kube client (get only:
// no list or watch, so liberator never holds Secrets it does not use).
func (c *Controller) secretGetter() fence.SecretGetter {
	ns := c.secretNamespace()
	return func(ctx context.Context, name string) (map[string][]byte, error) {
		s, err := c.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil, fence.ErrSecretNotFound
		case apierrors.IsForbidden(err):
			return nil, fmt.Errorf("RBAC forbids reading it (the controller needs get on secrets in %s; apply config/rbac)", ns)
		case err != nil:
			return nil, err
		}
		return s.Data, nil
	}
}

// defaultFencer builds fencers that read credentials through secrets, and
// the agent provider's on the controller's view of the agent Leases.
func (c *Controller) defaultFencer(secrets fence.SecretGetter) func(config.FenceClass) (fence.Fencer, error) {
	return fence.Factory{Secrets: secrets, Namespace: c.secretNamespace(), Agent: c.agentFencer}.For
}

// memoSecrets reads each Secret at most once (for one check round).
func memoSecrets(get fence.SecretGetter) fence.SecretGetter {
	type entry struct {
		data map[string][]byte
		err  error
	}
	var mu sync.Mutex
	seen := map[string]entry{}
	return func(ctx context.Context, name string) (map[string][]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if e, ok := seen[name]; ok {
			return e.data, e.err
		}
		data, err := get(ctx, name)
		if ctx.Err() == nil {
			seen[name] = entry{data, err}
		}
		return data, err
	}
}
