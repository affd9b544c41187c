package bed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/liberator-dev/liberator/internal/kubeutil"
)

// SliceLabel is the label naming the slice of a node added by AddSlice; the
// slice's kwok process manages the nodes carrying it.
const SliceLabel = "bed.liberator.test/slice"

// Slice is a group of simulated nodes played by one kwok process, for
// clusters of hundreds or thousands of nodes: one process per node (as
// Start runs them) would take ~55 MB each. Killing the process is a power
// cut of the whole slice at once, as when a rack loses power.
type Slice struct {
	c     *Cluster
	name  string
	nodes []string
	log   string
	pid   string
	cmd   *exec.Cmd
	done  chan struct{}
	off   bool
	offAt time.Time
}

// AddSlice registers count nodes named NAME-1..NAME-count, labeled
// SliceLabel=NAME, starts one kwok process managing them (Leases of the
// cluster's duration, renewed every quarter of it) and waits until all are
// Ready and schedulable. Node addresses are 127.2.x.y, pod CIDRs
// 10.64.0.0/10 split in /24s: nothing dials either.
func (c *Cluster) AddSlice(ctx context.Context, name string, count int) (*Slice, error) {
	if count < 1 {
		return nil, fmt.Errorf("bed: slice %s: node count %d is below 1", name, count)
	}
	c.mu.Lock()
	first := c.sliceNodes
	c.sliceNodes += count
	c.mu.Unlock()
	if first+count > 250*250 {
		return nil, fmt.Errorf("bed: slice %s: more than %d slice nodes", name, 250*250)
	}
	s := &Slice{
		c:    c,
		name: name,
		log:  filepath.Join(c.dir, "nodes", "slice-"+name+".log"),
		pid:  filepath.Join(c.dir, "nodes", "slice-"+name+".pid"),
	}
	for i := 1; i <= count; i++ {
		s.nodes = append(s.nodes, fmt.Sprintf("%s-%d", name, i))
	}
	cfg := c.RESTConfig()
	cfg.QPS, cfg.Burst = 1000, 2000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("bed: slice %s: %w", name, err)
	}
	if err := createSliceNodes(ctx, client, name, s.nodes, first); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for i, n := range s.nodes {
		// PowerOn and PowerOff are not for slice nodes: their kwok is the
		// slice's (cmd stays nil). The entry tells the volume simulation
		// whether the node is up.
		sn := &simNode{name: n, ip: sliceNodeIP(first + i), state: powerOn}
		sn.record(powerOn)
		c.nodes[n] = sn
		c.order = append(c.order, n)
	}
	c.mu.Unlock()
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.waitUp(ctx, client, 5*time.Minute); err != nil {
		return nil, err
	}
	if c.volumes != nil {
		for _, n := range s.nodes {
			c.volumes.nodeUp(n)
		}
	}
	return s, nil
}

// createSliceNodes creates the Node objects, 16 at a time.
func createSliceNodes(ctx context.Context, client kubernetes.Interface, slice string, names []string, first int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 16)
	for i, name := range names {
		g := first + i
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n := sliceNode(slice, name, g)
			if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("bed: create node %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
	}
	return nil
}

// sliceNode is the Node object of the g-th slice node (from 0).
func sliceNode(slice, name string, g int) *corev1.Node {
	ip := sliceNodeIP(g)
	cidr := fmt.Sprintf("10.%d.%d.0/24", 64+g/256, g%256)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
				"type":                 "kwok",
				SliceLabel:             slice,
			},
			Annotations: map[string]string{
				kwokNodeAnnotation:             "fake",
				attachDetachAnnotation:         "true",
				"node.alpha.kubernetes.io/ttl": "0",
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
		Status: corev1.NodeStatus{
			Capacity:    nodeResources(),
			Allocatable: nodeResources(),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: ip},
				{Type: corev1.NodeHostName, Address: name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				BootID:          uuid.NewString(),
				MachineID:       uuid.NewString(),
				SystemUUID:      uuid.NewString(),
				Architecture:    "amd64",
				OperatingSystem: "linux",
				OSImage:         "liberator test bed",
			},
		},
	}
}

func sliceNodeIP(g int) string { return fmt.Sprintf("127.2.%d.%d", g/250, g%250+1) }

// start runs the slice's kwok process.
func (s *Slice) start() error {
	logFile, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bed: kwok log of slice %s: %w", s.name, err)
	}
	defer logFile.Close()
	c := s.c
	argv := []string{c.bin + "/kwok",
		"--kubeconfig", c.kubeconfig,
		"--config", c.stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-label-selector", SliceLabel + "=" + s.name,
		"--node-lease-duration-seconds", strconv.Itoa(c.lease),
		// At INFO, kwok logs every Lease renewal and pod patch.
		"--v", "WARN",
	}
	cmd, done, err := c.runKwok(argv, logFile, s.pid, "slice "+s.name)
	if err != nil {
		return err
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitUp waits until every node of the slice is Ready, untainted by the
// node lifecycle controller, with a Lease renewed within its duration.
func (s *Slice) waitUp(ctx context.Context, client kubernetes.Interface, timeout time.Duration) error {
	sel := metav1.ListOptions{LabelSelector: SliceLabel + "=" + s.name}
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-s.done:
			return false, fmt.Errorf("kwok of slice %s exited (log: %s)", s.name, s.log)
		default:
		}
		nodes, err := client.CoreV1().Nodes().List(ctx, sel)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		up := 0
		for i := range nodes.Items {
			n := &nodes.Items[i]
			if kubeutil.NodeReady(n) && !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady }) {
				up++
			}
		}
		leases, err := client.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		fresh := 0
		for i := range leases.Items {
			if slices.Contains(s.nodes, leases.Items[i].Name) && leaseFresh(&leases.Items[i]) {
				fresh++
			}
		}
		if now := fmt.Sprintf("%d of %d nodes Ready, %d Leases fresh", up, len(s.nodes), fresh); now != last {
			s.c.logf("bed: slice %s: %s", s.name, now)
			last = now
		}
		return up == len(s.nodes) && fresh == len(s.nodes), nil
	})
	if err != nil {
		return fmt.Errorf("bed: slice %s did not come up (%s; kwok log: %s): %w", s.name, last, s.log, err)
	}
	return nil
}

// Name is the slice's name, the value of its nodes' SliceLabel.
func (s *Slice) Name() string { return s.name }

// Nodes lists the slice's node names.
func (s *Slice) Nodes() []string { return slices.Clone(s.nodes) }

// PowerOff kills the slice's kwok process: every node of the slice stops
// heartbeating at the same moment and its volumes stay as they were. It
// returns when the process is gone.
func (s *Slice) PowerOff() error {
	if s.off {
		return fmt.Errorf("bed: slice %s is already off", s.name)
	}
	pid := s.cmd.Process.Pid
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("bed: power off slice %s: kill kwok (pid %d): %w", s.name, pid, err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("bed: power off slice %s: kwok (pid %d) did not exit after SIGKILL", s.name, pid)
	}
	_ = os.Remove(s.pid)
	s.off, s.offAt = true, time.Now()
	s.c.mu.Lock()
	for _, name := range s.nodes {
		if n, ok := s.c.nodes[name]; ok {
			n.state = powerOff
			n.record(powerOff)
		}
	}
	s.c.mu.Unlock()
	s.c.logf("bed: slice %s (%d nodes) is off", s.name, len(s.nodes))
	return nil
}

// PID is the slice's kwok process, for measuring it.
func (s *Slice) PID() int { return s.cmd.Process.Pid }
