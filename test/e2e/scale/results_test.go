//go:build e2e

package scale

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// results is what one run measured.
type results struct {
	nodes, pods int
	nodesUp     time.Duration // cluster and slices up
	setup       time.Duration // and every pod Ready

	sync               time.Duration
	informerSync       time.Duration // from the controller log
	syncStart, syncEnd time.Time
	syncCPU            float64 // CPU seconds until synced
	syncHWM            int64   // peak RSS until synced, KB
	syncReqs           requestCounts
	steady             time.Duration
	steadyRSS          int64 // average VmRSS, KB
	steadyRSSMax       int64
	steadyCPU          float64 // cores
	ctrlReqs, seedReqs requestCounts
	lag                time.Duration
	leaseAge           time.Duration // oldest node Lease renewal at the end of the steady window
	leaseCount         int
	nodeListBytes      int // one list of every Node, as JSON
	stormNodes         int
	stormPods          int
	stormMaxSeen       int
	stormLastReady     time.Duration
	stormReleased      int
	stormMoved         int
	stormPartial       string // set when -scale.stormLimit stopped the watch
	takeovers          int
}

// machine describes this machine: CPUs and memory.
func machine() string {
	mem := "?"
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				var kb int64
				fmt.Sscan(f[1], &kb)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s memory", runtime.NumCPU(), mem)
}

// print writes the table and the RESULT lines to stdout and the test log.
func (r results) print(t *testing.T, sz size, p plan) {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("scale benchmark: %d nodes (%d slices of ~%d + 1 victim; + control plane), %d pods (%s)", r.nodes, sz.slices, sz.nodes/sz.slices, r.pods, p)
	w("  machine %s; node Leases %d s renewed every %.1f s; unhealthyAfter %s; wait fencing %s; cluster up in %s",
		machine(), sz.lease, float64(sz.lease)/4, sz.window, sz.safeTime, r.setup.Round(time.Second))
	w("  %-44s %s", "controller start to /readyz", fmt.Sprintf("%.2f s (informers %.2f s), %.2f CPU s, peak RSS %.0f MB", r.sync.Seconds(), r.informerSync.Seconds(), r.syncCPU, mb(r.syncHWM)))
	w("  %-44s %d: %s", "requests until /readyz", r.syncReqs.total(), r.syncReqs)
	w("  %-44s %s", "controller steady state ("+r.steady.Round(time.Second).String()+")", fmt.Sprintf("RSS %.0f MB (max %.0f), CPU %.2f%% of a core", mb(r.steadyRSS), mb(r.steadyRSSMax), 100*r.steadyCPU))
	w("  %-44s %10s %10s", "requests/s at steady state (audit log)", "liberator", "seed")
	for _, row := range requestRows(r.ctrlReqs, r.seedReqs, r.steady) {
		w("%s", row)
	}
	seedRate := float64(r.seedReqs["list nodes"]) / r.steady.Seconds() * float64(r.nodeListBytes)
	w("  %-44s %.2f MB per list, %.2f MB/s", "seed: node lists it reads (JSON)", float64(r.nodeListBytes)/1e6, seedRate/1e6)
	w("  %-44s %.1f s over %d node Leases (renewed every %.1f s)", "oldest Lease renewal, end of steady window", r.leaseAge.Seconds(), r.leaseCount, float64(sz.lease)/4)
	w("  %-44s %.3f s", "detection lag ("+victim+", after its window)", r.lag.Seconds())
	switch {
	case sz.stormSlices == 0:
		w("  %-44s skipped (-scale.storm=0)", "storm")
	case r.stormPartial != "":
		w("  %-44s %d nodes off, %d StatefulSet pods there; %s", "storm ("+fmt.Sprintf("%d of %d slices", sz.stormSlices, sz.slices)+")", r.stormNodes, r.stormPods, r.stormPartial)
	default:
		w("  %-44s %d nodes off, %d StatefulSet pods all Ready elsewhere %.1f s after power-off", "storm ("+fmt.Sprintf("%d of %d slices", sz.stormSlices, sz.slices)+")", r.stormNodes, r.stormPods, r.stormLastReady.Seconds())
	}
	if sz.stormSlices > 0 {
		w("  %-44s at most %d at once (maxConcurrent %d); %d Takeovers in all, none of a node that was up", "storm: takeovers between Fencing and Released", r.stormMaxSeen, sz.maxConcurrent, r.takeovers)
	}
	base := fmt.Sprintf("RESULT bench=scale nodes=%d pods=%d", r.nodes, r.pods)
	w("%s sync_seconds=%.2f informer_sync_seconds=%.2f sync_cpu_seconds=%.2f peak_rss_mb=%.0f sync_requests=%d",
		base, r.sync.Seconds(), r.informerSync.Seconds(), r.syncCPU, mb(r.syncHWM), r.syncReqs.total())
	w("%s steady_rss_mb=%.0f steady_rss_max_mb=%.0f steady_cpu_percent=%.2f steady_seconds=%.0f", base, mb(r.steadyRSS), mb(r.steadyRSSMax), 100*r.steadyCPU, r.steady.Seconds())
	for _, who := range []struct {
		name string
		c    requestCounts
	}{{"liberator", r.ctrlReqs}, {"seed", r.seedReqs}} {
		for _, k := range slices.Sorted(maps.Keys(who.c)) {
			verb, res, _ := strings.Cut(k, " ")
			w("%s client=%s verb=%s resource=%s requests_per_second=%.3f", base, who.name, verb, res, float64(who.c[k])/r.steady.Seconds())
		}
		w("%s client=%s verb=all resource=all requests_per_second=%.3f", base, who.name, float64(who.c.total())/r.steady.Seconds())
	}
	w("%s detection_lag_seconds=%.3f max_lease_age_seconds=%.1f seed_read_mb_per_second=%.2f", base, r.lag.Seconds(), r.leaseAge.Seconds(), seedRate/1e6)
	if sz.stormSlices > 0 {
		last := fmt.Sprintf("%.1f", r.stormLastReady.Seconds())
		if r.stormPartial != "" {
			last = fmt.Sprintf("unfinished_after_%.0f", sz.stormLimit.Seconds())
		}
		w("%s storm_nodes=%d storm_nodes_released=%d storm_stateful_pods=%d storm_stateful_pods_moved=%d storm_last_ready_seconds=%s storm_max_concurrent_seen=%d max_concurrent=%d",
			base, r.stormNodes, r.stormReleased, r.stormPods, r.stormMoved, last, r.stormMaxSeen, sz.maxConcurrent)
	}
	t.Log("\n" + b.String())
	fmt.Print(b.String())
}
