// Package controller is liberator's takeover controller: informers observe
// Nodes, their Leases, Pods, VolumeAttachments and Takeovers; a per-node
// reconciler reads the caches, asks internal/decide what to do, and carries
// the decision out, recording every step on the node's Takeover.
//
// The data path of one failure, with the file of each step:
//
//	Lease event        informers.go  onLease: the renewTime is noted on our clock
//	  -> health        health.go     healthTracker: heartbeat ages on the monotonic clock
//	  -> guards        guards.go     scan (every tick): one eligible/unhealthy count,
//	                                 storm guard, API guard; unhealthy nodes are queued
//	  -> decide        reconcile.go  input -> decide.Decide (internal/decide) -> an Action
//	  -> open          incident.go   a Takeover in phase Detected, heartbeat fingerprint kept
//	  -> fence         fence.go      the class's Fencer (fencer.go builds it) proves the node off
//	  -> release       release.go    live re-read, decide.BeforeRelease, then internal/release:
//	                                 taint or delete the Node, force-delete pods, delete
//	                                 VolumeAttachments
//	  -> track         track.go      internal/replacement finds each pod's replacement;
//	                                 decide.TrackDecision says when the workloads are done
//	  -> recover       actions.go    the node is back (new bootID where required): taint
//	                                 removed, incident closed
//
// Every phase change goes through transition (incident.go), which writes
// the status, the timeline, the log line, the event and the metric together;
// record.go keeps the timeline bounded (retries counted, a cap, short
// messages) and sets the Progressing, Succeeded and Degraded conditions, and
// retention.go deletes closed Takeovers beyond the configured retention.
// The agent fence provider is agentfence.go, on the view of the agent
// Leases that agents.go keeps (L, acknowledgements, Q); its release
// instants are decide.AgentFenced.
// Beside the path: fencecheck.go publishes each node's FenceReady condition,
// poweron.go powers a fenced node back on where its class asks, preflight.go
// checks the CRD and RBAC before the controller starts, slim.go keeps the
// caches small.
package controller
