// Package bed runs a local Kubernetes cluster for end-to-end tests: real
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler started by
// kwokctl from the pinned binaries of hack/tools/build.sh, and nodes played by
// kwok, one kwok process per node, so that killing a node's process is a
// power cut and starting a new one is a boot.
//
// Everything listens on loopback. Node addresses are on loopback too; pod IPs
// (10.244.N.0/24) are only recorded in objects, nothing dials them. A
// cluster's files live in one directory under $TMPDIR/liberator-bed, which
// Stop removes; Start stops and removes what a killed test process left
// there.
//
// With Options.Isolated (root only) every worker lives in a network
// namespace of its own, attached to a bridge of the cluster's: its kwok, and
// the liberator agent that StartAgents runs beside it, reach the API server
// at the bridge's address and their peers over the bridge, so Partition cuts
// a node off for real (from the API only, or from everything) and Heal
// reconnects it. Each such node has a fake watchdog device (a unix socket,
// see watchdog); when it is not fed in time the bed resets the node: its kwok
// and agent are killed, its history records "reset", and it boots again
// later with a new boot ID and a new agent (Options.RebootAfterReset).
//
// # What the bed shows (kwok v0.8.0, Kubernetes v1.36.3)
//
//   - Start takes about 5 s with cached binaries (control plane ~4.5 s,
//     nodes ~0.5 s).
//   - Leases: kwok --node-lease-duration-seconds 40 gives Leases of 40 s
//     renewed every 10 s (a quarter, like the kubelet). Node status is
//     refreshed only every 10 minutes (kwok's heartbeat stage), so the Lease
//     is the heartbeat, as with a kubelet.
//   - After PowerOff the Lease stops at once; the node lifecycle controller
//     (node-monitor-grace-period 50 s, node-monitor-period 5 s) marks the
//     node Ready=Unknown 50-55 s after the last renewal, taints it
//     unreachable (NoSchedule and NoExecute), marks its pods not Ready, and
//     does nothing else for a StatefulSet pod: it stays bound to the dead
//     node, and its VolumeAttachment stays.
//   - kwok takes over a Lease it does not hold only when it expires, and a
//     new process has a new holder identity; PowerOn therefore deletes the
//     old Lease, and kwok creates a fresh one at once. The node is Ready
//     again ~0.2 s after PowerOn starts kwok.
//   - kwok itself ignores volumes: a pod would turn Ready before its volume
//     is attached, and a node would never report volumes in use, so the
//     attach-detach controller would detach a volume from a dead node as
//     soon as its pod object is gone. The bed closes that gap (volumeSim): a
//     pod with claims starts only once its volumes are attached to its node,
//     and nodes that are up report status.volumesInUse. With that, as on
//     real nodes: force-deleting a pod on a dead node leaves the old
//     VolumeAttachment in place and the replacement pod on another node
//     waits with "Multi-Attach error ... Volume is already exclusively
//     attached to one node" (it would wait 6 minutes for a forced detach);
//     tainting the dead node node.kubernetes.io/out-of-service:NoExecute
//     makes the controller delete the old VolumeAttachment within about a
//     second, and the replacement is Ready about 1.5 s after the taint.
//   - Pods on a node that is off keep their state; those deleted while it
//     was off are removed by kwok when it is powered on.
package bed
