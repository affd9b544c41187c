//go:build e2e

// Package scale runs the liberator controller against a real API server
// holding many kwok nodes and pods, and reports what it costs: its memory,
// CPU, initial sync time, the requests it sends (from the API server's audit
// log, beside the seed daemon's), how late it notices one dead node, and a
// storm in which whole slices of nodes lose power at once. The defaults are
// the small run of the e2e suite; `make bench-scale` runs the full size. See
// docs/scale.md.
package scale

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/liberator-dev/liberator/test/e2e/bed"
	"github.com/liberator-dev/liberator/test/e2e/kit"
)

// victim is the node whose detection lag is measured: the bed's own worker,
// played by a kwok process of its own.
const victim = "worker-1"

// auditPolicy records, at Metadata level, every request of the controller
// and of the seed daemon, and nothing else.
var auditPolicy = fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  users: [%q, %q]
- level: None
`, userOf(controllerSA), userOf(seedSA))

// bench is one run: its cluster, processes and what it measured.
type bench struct {
	t      *testing.T
	sz     size
	plan   plan
	e      *kit.Env
	slices []*bed.Slice
	dir    string
	ctrl   *controller
	res    results
}

func TestScale(t *testing.T) {
	sz, err := parseFlags()
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{t: t, sz: sz, plan: newPlan(sz.pods), dir: t.TempDir()}
	if *flagKeep {
		if b.dir, err = os.MkdirTemp("", "liberator-scale-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("controller and seed logs kept in %s", b.dir)
	}
	b.res.nodes, b.res.pods = sz.nodes+1, b.plan.pods()
	t.Logf("scale: %d slice nodes in %d slices + victim %s; %s; lease %ds, unhealthyAfter %s, maxConcurrent %d",
		sz.nodes, sz.slices, victim, b.plan, sz.lease, sz.window, sz.maxConcurrent)
	ctx := context.Background()
	b.setup(ctx)
	b.startController(ctx)
	b.steadyState(ctx)
	b.detectVictim(ctx)
	b.storm(ctx)
	b.res.print(t, sz, b.plan)
}

// setup starts the cluster, the slices and the workloads.
func (b *bench) setup(ctx context.Context) {
	t := b.t
	begin := time.Now()
	policy := filepath.Join(b.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	// Creation is not throttled at client-go's default 20 qps: the
	// controller manager and the scheduler may send 300 per second.
	qps := map[string]string{"kube-api-qps": "300", "kube-api-burst": "600"}
	e, err := kit.Setup(ctx, bed.Options{
		Workers:              1,
		LeaseDurationSeconds: b.sz.lease,
		KCMFlags:             qps,
		SchedulerFlags:       qps,
		// A throwaway cluster: etcd need not wait for the disk at every
		// write (with fsync, this machine's disk bounds pod creation at
		// about 20 per second).
		EtcdFlags:   map[string]string{"unsafe-no-fsync": "true"},
		AuditPolicy: policy,
		Log:         t.Logf,
	})
	if err != nil {
		t.Fatalf("test bed: %v", err)
	}
	b.e = e
	t.Cleanup(func() {
		if err := e.C.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})
	for i, n := range b.sz.sliceSizes {
		s, err := e.C.AddSlice(ctx, "s"+strconv.Itoa(i+1), n)
		if err != nil {
			t.Fatal(err)
		}
		b.slices = append(b.slices, s)
		t.Logf("slice %s: %d nodes up (%s since start)", s.Name(), n, time.Since(begin).Round(time.Second))
	}
	b.res.nodesUp = time.Since(begin)
	kube := fastClient(t, e)
	nodes := []string{victim}
	for _, s := range b.slices {
		nodes = append(nodes, s.Nodes()...)
	}
	if err := b.plan.create(ctx, e.C, kube, nodes, t.Logf); err != nil {
		t.Fatalf("workloads: %v", err)
	}
	timeout := 10*time.Minute + time.Duration(b.sz.pods)*50*time.Millisecond
	if err := b.plan.waitReady(ctx, kube, timeout, t.Logf); err != nil {
		t.Fatal(err)
	}
	b.res.setup = time.Since(begin)
	t.Logf("cluster ready: %d nodes, %d pods Ready in %s", b.sz.nodes+1, b.plan.pods(), b.res.setup.Round(time.Second))
}

// startController starts the controller and measures its initial sync:
// until /readyz answers (its informer caches synced).
func (b *bench) startController(ctx context.Context) {
	t := b.t
	bin := *flagBinary
	if bin == "" {
		var err error
		if bin, err = kit.Binary(b.e.Root); err != nil {
			t.Fatal(err)
		}
	}
	begin := time.Now()
	c, err := startController(b.e, bin, b.sz.config(), b.dir)
	if err != nil {
		t.Fatal(err)
	}
	b.ctrl = c
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("controller log (last lines):\n%s", tail(c.LogText(), 40))
		}
	})
	deadline := begin.Add(10 * time.Minute)
	for !c.Ready() {
		if c.Exited() {
			t.Fatalf("the controller exited during its initial sync:\n%s", tail(c.LogText(), 20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller did not sync within 10 minutes:\n%s", tail(c.LogText(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.res.sync = time.Since(begin)
	s, err := sampleProc(c.Pid())
	if err != nil {
		t.Fatal(err)
	}
	b.res.syncStart, b.res.syncEnd = begin, s.at
	b.res.syncCPU = float64(s.cpuTicks) / clockTicks
	b.res.syncHWM = s.hwmKB
	b.res.informerSync = logGap(c.LogText(), `"waiting for informer caches"`, `"informer caches synced"`)
	t.Logf("controller synced in %s: peak RSS %.0f MB, CPU %.2f s", b.res.sync.Round(time.Millisecond), mb(s.hwmKB), b.res.syncCPU)
}
