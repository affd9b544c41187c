package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/config"
	"github.com/liberator-dev/liberator/internal/fence"
)

// errNoConfirmation is returned when a destructive command was not
// confirmed.
var errNoConfirmation = errors.New("not confirmed: nothing was done")

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// drillTrigger stops the node.
type drillTrigger struct {
	method      string
	description string
	fire        func(ctx context.Context) error
}

// loadControllerConfig reads the controller's configuration from path, or
// from its ConfigMap.
func loadControllerConfig(ctx context.Context, c *clients, path, namespace string) (*config.Config, string, error) {
	if path != "" {
		cfg, err := config.Load(path)
		return cfg, path, err
	}
	src := "ConfigMap " + namespace + "/" + configMapName
	cm, err := c.kube.CoreV1().ConfigMaps(namespace).Get(ctx, configMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, src, fmt.Errorf("no controller configuration found (%s does not exist): pass --config FILE", src)
	}
	if err != nil {
		return nil, src, apiError("read "+src, err)
	}
	cfg := config.Default()
	if err := config.Parse([]byte(cm.Data[configMapKey]), cfg); err != nil {
		return nil, src, fmt.Errorf("%s: %w", src, err)
	}
	return cfg, src, nil
}

// fenceTrigger powers the node off through its fence class.
func fenceTrigger(ctx context.Context, c *clients, n *corev1.Node, o *drillOptions) (*drillTrigger, error) {
	const need = "fencing drill needs a fence class"
	cfg, src, err := loadControllerConfig(ctx, c, o.configPath, o.configNamespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; or use --simulate on a test bed", need, err)
	}
	fc := cfg.ClassFor(n.Name, n.Labels)
	if fc == nil {
		return nil, fmt.Errorf("%s: node %s matches none of the %d fence classes in %s; add one under fencing.classes, or use --simulate on a test bed", need, n.Name, len(cfg.Fencing.Classes), src)
	}
	if !fc.HasPowerFence() {
		return nil, fmt.Errorf("%s that powers the node off: node %s's class %q uses provider %q, which cannot stop a node; use --simulate on a test bed", need, n.Name, fc.Name, fc.Provider)
	}
	ns := o.configNamespace
	factory := fence.Factory{Namespace: ns, Secrets: func(ctx context.Context, name string) (map[string][]byte, error) {
		sec, err := c.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("%w: %s/%s", fence.ErrSecretNotFound, ns, name)
		}
		if err != nil {
			return nil, apiError("read Secret "+ns+"/"+name, err)
		}
		return sec.Data, nil
	}}
	fencer, err := factory.For(*fc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", need, err)
	}
	class := *fc
	return &drillTrigger{
		method:      "fence",
		description: fmt.Sprintf("power-off through fence class %q (provider %s, from %s)", class.Name, class.Provider, src),
		fire: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, class.Timeout.Duration)
			defer cancel()
			for {
				now := time.Now()
				res, err := fencer.Fence(ctx, fence.Target{Node: n.Name, Class: class, DetectedAt: now, Now: now})
				if err != nil {
					return fmt.Errorf("fence provider %s: %w", class.Provider, err)
				}
				if res.Done {
					if !res.PowerOff {
						return fmt.Errorf("fence provider %s did not power node %s off (%s): it cannot be used for a drill", class.Provider, n.Name, oneLine(res.Output))
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("fence provider %s did not finish within the class timeout %s", class.Provider, class.Timeout.Duration)
				case <-time.After(max(res.RetryAfter, 100*time.Millisecond)):
				}
			}
		},
	}, nil
}

// simulateTrigger runs the simulation command.
func simulateTrigger(s IOStreams, node, command string) *drillTrigger {
	line := strings.ReplaceAll(command, "{node}", shellQuote(node))
	return &drillTrigger{
		method:      "simulate",
		description: line,
		fire: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", line)
			cmd.Stdout, cmd.Stderr = s.ErrOut, s.ErrOut
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("simulation command %q failed: %w", line, err)
			}
			return nil
		},
	}
}

// confirm asks the operator to type the node's name.
func confirm(s IOStreams, node, what string) error {
	fmt.Fprintf(s.ErrOut, "%s\nType the node's name (%s) to go on: ", what, node)
	line, err := bufio.NewReader(s.In).ReadString('\n')
	if strings.TrimSpace(line) != node {
		if err != nil {
			return fmt.Errorf("%w (no answer; pass --yes to run without asking)", errNoConfirmation)
		}
		return errNoConfirmation
	}
	return nil
}
