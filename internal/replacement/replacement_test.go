package replacement

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func pod(name, uid, owner, node string, ready bool, age int) Pod {
	return Pod{Namespace: "db", Name: name, UID: types.UID(uid), OwnerUID: types.UID(owner), NodeName: node, Ready: ready,
		Created: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, age, 0, time.UTC))}
}

func TestStatefulSetReplacementIsTheSameName(t *testing.T) {
	m := &Moved{Namespace: "db", Name: "mysql-0", UID: "old", OwnerKind: "StatefulSet", OwnerUID: "sts", From: "w1"}
	cases := []struct {
		name string
		p    Pod
		want bool
	}{
		{"same name, new UID, Ready elsewhere", pod("mysql-0", "new", "sts", "w2", true, 5), true},
		{"the old pod itself", pod("mysql-0", "old", "sts", "w2", true, 0), false},
		{"a sibling ordinal", pod("mysql-1", "s1", "sts", "w2", true, 0), false},
		{"not Ready", pod("mysql-0", "new", "sts", "w2", false, 5), false},
		{"back on the node it left", pod("mysql-0", "new", "sts", "w1", true, 5), false},
		{"not bound", pod("mysql-0", "new", "sts", "", false, 5), false},
	}
	for _, c := range cases {
		if got := m.ReadyElsewhere(c.p); got != c.want {
			t.Errorf("%s: ReadyElsewhere = %v, want %v", c.name, got, c.want)
		}
	}
	other := pod("mysql-0", "new", "sts", "w2", true, 5)
	other.Namespace = "other"
	if m.ReadyElsewhere(other) {
		t.Error("a pod of another namespace stood in")
	}
	deleting := pod("mysql-0", "new", "sts", "w2", true, 5)
	deleting.Deleting = true
	if m.ReadyElsewhere(deleting) {
		t.Error("a pod being deleted stood in")
	}
}

// A 3-replica Deployment with one pod on the failed node: the two siblings
// that were already Ready elsewhere are not its replacement.
func TestReplicaSetSiblingsAreNotReplacements(t *testing.T) {
	all := []Pod{
		pod("web-a", "a", "rs", "w1", true, 0), // the moved pod
		pod("web-b", "b", "rs", "w2", true, 1),
		pod("web-c", "c", "rs", "w3", true, 2),
	}
	m := &Moved{Namespace: "db", Name: "web-a", UID: "a", OwnerKind: "ReplicaSet", OwnerUID: "rs", From: "w1",
		Siblings: Set(SiblingUIDs("rs", "a", all))}
	if got := m.Find(all, nil); got != nil {
		t.Fatalf("Find chose sibling %s as the replacement", got.Name)
	}
	all = append(all, pod("web-d", "d", "rs", "w2", false, 9))
	if got := m.Find(all, nil); got != nil {
		t.Fatalf("Find chose %s, which is not Ready", got.Name)
	}
	all[3].Ready = true
	got := m.Find(all, nil)
	if got == nil || got.Name != "web-d" {
		t.Fatalf("Find = %v, want web-d", got)
	}
	if got := m.Find(all, map[types.UID]bool{"d": true}); got != nil {
		t.Fatalf("Find chose %s, already claimed by another moved pod", got.Name)
	}
}

func TestFindPrefersTheOldest(t *testing.T) {
	m := &Moved{Namespace: "db", Name: "web-a", UID: "a", OwnerKind: "ReplicaSet", OwnerUID: "rs", From: "w1"}
	got := m.Find([]Pod{pod("web-z", "z", "rs", "w2", true, 9), pod("web-y", "y", "rs", "w3", true, 3), pod("x", "x", "other", "w2", true, 0)}, nil)
	if got == nil || got.Name != "web-y" {
		t.Fatalf("Find = %v, want web-y", got)
	}
}

func TestUnownedPodIsReplacedByName(t *testing.T) {
	m := &Moved{Namespace: "db", Name: "solo", UID: "old", From: "w1"}
	if m.Recreated() {
		t.Fatal("a pod without a controller is recreated")
	}
	if !m.ReadyElsewhere(pod("solo", "new", "", "w2", true, 1)) {
		t.Fatal("a new pod of the same name did not stand in")
	}
}
