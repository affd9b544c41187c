package controller

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/liberator-dev/liberator/internal/config"
)

// The shipped RBAC grants exactly what the controller uses: no verb more, no
// verb less.
func TestShippedRBACIsLeastPrivilege(t *testing.T) {
	cfg, err := config.Load("../../config/manager/config.yaml")
	if err != nil {
		t.Fatalf("shipped config: %v", err)
	}
	want := map[string]bool{}
	for _, p := range append(Permissions(cfg.LeaderElection.Namespace, cfg.LeaderElection.Name), MetricsAuthPermissions()...) {
		want[key(p.Group, p.Resource, p.Verb, p.Namespace, p.Name)] = true
	}
	got := map[string]bool{}
	files, _ := filepath.Glob("../../config/rbac/*.yaml")
	// Only the roles config/rbac binds (to the controller) count: the
	// ClusterRoles shipped for people to bind (liberator-viewer,
	// liberator-status-reader, liberator-metrics-reader) grant the
	// controller nothing.
	bound := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var binding struct {
				Kind     string
				Metadata struct{ Namespace string }
				RoleRef  rbacv1.RoleRef `json:"roleRef"`
			}
			if err := yaml.Unmarshal([]byte(doc), &binding); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch binding.Kind {
			case "ClusterRoleBinding":
				bound["ClusterRole/"+binding.RoleRef.Name] = true
			case "RoleBinding":
				if binding.RoleRef.Kind == "ClusterRole" {
					bound["ClusterRole/"+binding.RoleRef.Name] = true
				} else {
					bound["Role/"+binding.Metadata.Namespace+"/"+binding.RoleRef.Name] = true
				}
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var head struct {
				Kind     string
				Metadata struct{ Name, Namespace string }
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch head.Kind {
			case "ClusterRole":
				if !bound["ClusterRole/"+head.Metadata.Name] {
					continue
				}
			case "Role":
				if !bound["Role/"+head.Metadata.Namespace+"/"+head.Metadata.Name] {
					t.Errorf("%s: Role %s/%s is bound by no RoleBinding in config/rbac", f, head.Metadata.Namespace, head.Metadata.Name)
					continue
				}
			default:
				continue
			}
			var role rbacv1.Role // ClusterRole has the same shape for rules
			if err := yaml.UnmarshalStrict([]byte(doc), &role); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, r := range role.Rules {
				names := r.ResourceNames
				if len(names) == 0 {
					names = []string{""}
				}
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							for _, n := range names {
								got[key(g, res, v, role.Namespace, n)] = true
							}
						}
					}
				}
			}
		}
	}
	if len(got) == 0 {
		t.Fatal("no rules found in config/rbac")
	}
	for k := range got {
		if !want[k] {
			t.Errorf("config/rbac grants %s, which the controller does not use", k)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("the controller needs %s, which config/rbac does not grant", k)
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%d permissions:\n%s", len(keys), strings.Join(keys, "\n"))
}

func key(group, resource, verb, ns, name string) string {
	return strings.Join([]string{group, resource, verb, ns, name}, "|")
}
