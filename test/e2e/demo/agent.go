package main

import (
	"context"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liberator-dev/liberator/internal/agentlease"
	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// startAgents installs the agent's ServiceAccount and Role as the agent
// component of config/ ships them, runs an agent on every worker under that
// identity, and waits until every agent is armed with a settled quorum.
func startAgents(ctx context.Context, env *kit.Env, dir string) error {
	for _, f := range []string{"serviceaccount.yaml", "rbac.yaml"} {
		if err := env.ApplyFile(ctx, filepath.Join(env.Root, "config", "components", "agent", f)); err != nil {
			return err
		}
	}
	kubeconfig, err := env.C.ServiceAccountKubeconfig(ctx, "tkr-system", "liberator-agent")
	if err != nil {
		return err
	}
	bin, err := agentBinary(env.Root, dir)
	if err != nil {
		return err
	}
	if err := env.C.StartAgents(ctx, bed.AgentSpec{Binary: bin, Kubeconfig: kubeconfig}); err != nil {
		return err
	}
	say("liberator agents starting on the workers (the bed's watchdog device on each; logs beside the nodes')")
	want := agentlease.QuorumOf(3)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		armed, err := armedAgents(ctx, env, want)
		if err != nil {
			return err
		}
		if armed == 3 {
			say("3 agents armed (watchdog %s, isolation bound %s), quorum %d of 3", agentlease.DefaultBounds.WatchdogTimeout,
				agentlease.DefaultBounds.Isolation(), want)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of 3 agents armed with quorum %d within 2 minutes", armed, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// armedAgents counts the agent Leases that say armed with the quorum want
// (an agent that listed its peers before they started counts fewer until
// its next listing).
func armedAgents(ctx context.Context, env *kit.Env, want int) (int, error) {
	ls, err := env.Kube.CoordinationV1().Leases("tkr-system").List(ctx, metav1.ListOptions{LabelSelector: agentlease.NodeLabel})
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range ls.Items {
		if p, err := agentlease.Parse(&ls.Items[i]); err == nil && p.Armed && p.Quorum == want {
			n++
		}
	}
	return n, nil
}

// agentBinary is bin/liberator-agent when make build made it, else a build
// of cmd/liberator-agent in dir.
func agentBinary(root, dir string) (string, error) {
	if p := filepath.Join(root, "bin", "liberator-agent"); fileExists(p) {
		return p, nil
	}
	out := filepath.Join(dir, "liberator-agent")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/liberator-agent")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build liberator-agent: %v\n%s", err, b)
	}
	return out, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// reportReset prints the node's watchdog reset when the bed sees it.
func reportReset(ctx context.Context, env *kit.Env, node string, row func(step, detail string, at time.Time)) {
	for ctx.Err() == nil {
		if rs := env.C.Resets(node); len(rs) > 0 {
			r := rs[0]
			row("WatchdogReset", fmt.Sprintf("%s reset by its watchdog (last fed %.1fs before, timeout %s): mysql-0 stopped there",
				node, r.Time.Sub(r.LastFeed).Seconds(), r.Timeout), r.Time)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
