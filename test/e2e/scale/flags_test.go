//go:build e2e

package scale

import (
	"flag"
	"fmt"
	"math"
	"time"
)

// The benchmark's size and timing. The defaults are the smoke run of the
// e2e suite; `make bench-scale` passes the full size.
var (
	flagNodes      = flag.Int("scale.nodes", 20, "simulated worker nodes in slices (plus one victim node and the control-plane node)")
	flagPods       = flag.Int("scale.pods", 400, "pods: a fifth in StatefulSets, half of those with a RWO claim; the rest in ReplicaSets, created bound to nodes")
	flagSlices     = flag.Int("scale.slices", 4, "kwok processes the slice nodes are split over; the storm powers whole slices off")
	flagLease      = flag.Int("scale.lease", 10, "node Lease duration in seconds (renewed every quarter of it)")
	flagWindow     = flag.Duration("scale.unhealthyAfter", 10*time.Second, "the controller's unhealthyAfter")
	flagSafeTime   = flag.Duration("scale.safeTime", 5*time.Second, "safe time of the wait fencing of the kwok nodes")
	flagSteady     = flag.Duration("scale.steady", 10*time.Second, "steady-state window for RSS, CPU and requests per second")
	flagStorm      = flag.Float64("scale.storm", 0.3, "share of the slice nodes powered off at once (rounded to whole slices); 0 skips the storm")
	flagStormLimit = flag.Duration("scale.stormLimit", 60*time.Second, "stop watching the storm after this long and report how far it got (every node must have been detected); 0 waits for it to finish and fails if it does not")
	flagConcurrent = flag.Int("scale.maxConcurrent", 0, "the controller's maxConcurrent; 0 means max(5, nodes/20)")
	flagBinary     = flag.String("scale.binary", "", "liberator binary to run; empty builds ./cmd/liberator")
	flagKeep       = flag.Bool("scale.keep", false, "keep the controller's and the seed's logs (printed paths)")
)

// maxUnhealthy is the storm guard the benchmark configures.
const maxUnhealthy = 0.40

// size is the checked benchmark size.
type size struct {
	nodes, pods, slices int
	stormSlices         int
	lease               int
	window, safeTime    time.Duration
	steady              time.Duration
	maxConcurrent       int
	stormLimit          time.Duration
	sliceSizes          []int
}

func parseFlags() (size, error) {
	s := size{
		nodes: *flagNodes, pods: *flagPods, slices: *flagSlices, lease: *flagLease,
		window: *flagWindow, safeTime: *flagSafeTime, steady: *flagSteady, maxConcurrent: *flagConcurrent,
		stormLimit: *flagStormLimit,
	}
	switch {
	case s.slices < 2:
		return s, fmt.Errorf("-scale.slices=%d: need at least 2 (the storm powers off only some of them)", s.slices)
	case s.nodes < s.slices:
		return s, fmt.Errorf("-scale.nodes=%d: below -scale.slices=%d", s.nodes, s.slices)
	case s.pods < 10:
		return s, fmt.Errorf("-scale.pods=%d: need at least 10", s.pods)
	case s.pods > 100*s.nodes:
		return s, fmt.Errorf("-scale.pods=%d: more than 100 per node for %d nodes (nodes hold 110)", s.pods, s.nodes)
	case s.lease < 4:
		return s, fmt.Errorf("-scale.lease=%d: below 4 seconds", s.lease)
	case s.window < time.Second:
		return s, fmt.Errorf("-scale.unhealthyAfter=%s: below 1s", s.window)
	case s.steady < 5*time.Second:
		return s, fmt.Errorf("-scale.steady=%s: below 5s (the seed polls every 5 s)", s.steady)
	case *flagStorm < 0 || *flagStorm >= 1:
		return s, fmt.Errorf("-scale.storm=%g: must be at least 0 and below 1", *flagStorm)
	case *flagStormLimit < 0:
		return s, fmt.Errorf("-scale.stormLimit=%s: negative", *flagStormLimit)
	case *flagStormLimit > 0 && *flagStormLimit < s.window+20*time.Second:
		return s, fmt.Errorf("-scale.stormLimit=%s: shorter than -scale.unhealthyAfter=%s + 20s (the storm's nodes could not even be detected)", *flagStormLimit, s.window)
	case s.maxConcurrent < 0:
		return s, fmt.Errorf("-scale.maxConcurrent=%d: negative", s.maxConcurrent)
	}
	if s.maxConcurrent == 0 {
		s.maxConcurrent = max(5, s.nodes/20)
	}
	for i := range s.slices {
		n := s.nodes / s.slices
		if i < s.nodes%s.slices {
			n++
		}
		s.sliceSizes = append(s.sliceSizes, n)
	}
	if *flagStorm == 0 {
		return s, nil
	}
	s.stormSlices = max(1, int(math.Round(*flagStorm*float64(s.slices))))
	if s.stormSlices >= s.slices {
		return s, fmt.Errorf("-scale.storm=%g: powers off all %d slices", *flagStorm, s.slices)
	}
	// The storm must stay under the guard, counting the victim (still off)
	// among the unhealthy and every worker as eligible.
	if share := float64(s.stormNodes()+1) / float64(s.nodes+1); share > maxUnhealthy {
		return s, fmt.Errorf("-scale.storm=%g: %d of %d slices is %.0f%% of the nodes, over maxUnhealthy %.0f%%",
			*flagStorm, s.stormSlices, s.slices, 100*share, 100*maxUnhealthy)
	}
	return s, nil
}

// stormNodes counts the nodes of the slices the storm powers off (the last
// ones, which are never larger than the first).
func (s size) stormNodes() int {
	n := 0
	for _, k := range s.sliceSizes[s.slices-s.stormSlices:] {
		n += k
	}
	return n
}

func (s size) config() string {
	return fmt.Sprintf(`apiVersion: config.liberator.dev/v1alpha1
kind: ControllerConfig
unhealthyAfter: %s
maxUnhealthy: "%d%%"
maxConcurrent: %d
fencing:
  classes:
  - name: kwok
    provider: wait
    wait: {safeTime: %s}
`, s.window, int(maxUnhealthy*100), s.maxConcurrent, s.safeTime)
}
