package decide

import (
	"testing"
	"time"
)

func TestBeforeRelease(t *testing.T) {
	inc := &Incident{Phase: PhaseFenced, Fenced: true, NodeUID: "uid-1"}
	cases := []struct {
		name   string
		live   Live
		want   Action
		reason string
	}{
		{"unchanged: release", Live{Exists: true, UID: "uid-1"}, Release, ReasonFenced},
		{"heartbeat arrived: abort", Live{Exists: true, UID: "uid-1", HeartbeatChanged: true, Detail: "lease renewed"}, Abort, ReasonHeartbeatResumed},
		{"node gone: release its pods and attachments", Live{}, Release, ReasonNodeGoneBeforeFence},
		{"node replaced (re-registered, alive): abort", Live{Exists: true, UID: "uid-2"}, Abort, ReasonHeartbeatResumed},
	}
	for _, c := range cases {
		got := BeforeRelease(inc, c.live)
		if got.Action != c.want || got.Reason != c.reason {
			t.Errorf("%s: got %s/%s, want %s/%s", c.name, got.Action, got.Reason, c.want, c.reason)
		}
	}
	if got := BeforeRelease(&Incident{Phase: PhaseFenced, Fenced: true}, Live{Exists: true, UID: "any"}); got.Action != Abort {
		t.Errorf("an incident with no recorded Node UID cannot prove it is the same Node: want Abort, got %s", got.Action)
	}
	if got := BeforeRelease(inc, Live{Exists: true, UID: "uid-1", HeartbeatChanged: true, Detail: "lease renewed"}); got.Message != "lease renewed" {
		t.Errorf("message = %q, want the live read's detail", got.Message)
	}
}

func TestTrackDecision(t *testing.T) {
	cases := []struct {
		name   string
		w      Workloads
		want   Action
		reason string
	}{
		{"all Ready", Workloads{Moved: 2, SinceRelease: time.Second, Timeout: time.Minute}, WorkloadsDone, ReasonWorkloadsReady},
		{"waiting within the timeout", Workloads{Moved: 2, Waiting: []string{"db/mysql-0"}, SinceRelease: 59 * time.Second, Timeout: time.Minute}, TrackWorkloads, ReasonAwaitingWorkloads},
		{"waiting at the timeout exactly", Workloads{Moved: 2, Waiting: []string{"db/mysql-0"}, SinceRelease: time.Minute, Timeout: time.Minute}, TrackWorkloads, ReasonAwaitingWorkloads},
		{"timeout passed", Workloads{Moved: 2, Waiting: []string{"db/mysql-0"}, SinceRelease: 61 * time.Second, Timeout: time.Minute}, WorkloadsDone, ReasonWorkloadTimeout},
		{"no pods moved", Workloads{}, WorkloadsDone, ReasonWorkloadsReady},
	}
	for _, c := range cases {
		got := TrackDecision(c.w)
		if got.Action != c.want || got.Reason != c.reason {
			t.Errorf("%s: got %s/%s, want %s/%s", c.name, got.Action, got.Reason, c.want, c.reason)
		}
		if got.Action == TrackWorkloads && got.RequeueAfter != WorkloadsPoll {
			t.Errorf("%s: requeue %s, want %s", c.name, got.RequeueAfter, WorkloadsPoll)
		}
	}
}
