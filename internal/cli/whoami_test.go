package cli

import (
	"context"
	"strings"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// reviewAnswers makes the fake clientset answer a SelfSubjectReview with
// the user info u, or with err.
func reviewAnswers(kube *fake.Clientset, u authnv1.UserInfo, err error) {
	kube.PrependReactor("create", "selfsubjectreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		if err != nil {
			return true, nil, err
		}
		return true, &authnv1.SelfSubjectReview{Status: authnv1.SelfSubjectReviewStatus{UserInfo: u}}, nil
	})
}

func TestWhoAmI(t *testing.T) {
	gr := schema.GroupResource{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"}
	for _, tc := range []struct {
		name     string
		user     authnv1.UserInfo
		err      error
		want     string
		wantErr  string
		wantCode int
	}{
		{name: "user", user: authnv1.UserInfo{Username: "alice", Groups: []string{"system:authenticated"}}, want: "alice"},
		{name: "service account", user: authnv1.UserInfo{Username: "system:serviceaccount:ops:upgrader"}, want: "system:serviceaccount:ops:upgrader"},
		{name: "no name", user: authnv1.UserInfo{Groups: []string{"system:unauthenticated"}},
			wantErr: "the API server did not say who you are (an empty username in its SelfSubjectReview)", wantCode: ExitCannotRun},
		{name: "forbidden", err: apierrors.NewForbidden(gr, "", nil),
			wantErr: "asking the API server who you are (SelfSubjectReview): ", wantCode: ExitCannotRun},
		{name: "unauthorized", err: apierrors.NewUnauthorized("bad token"),
			wantErr: "asking the API server who you are (SelfSubjectReview): ", wantCode: ExitCannotRun},
		{name: "not served", err: apierrors.NewNotFound(gr, ""),
			wantErr: "the API server does not serve authentication.k8s.io/v1 SelfSubjectReview (Kubernetes 1.28 or later does)", wantCode: ExitCannotRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := fake.NewSimpleClientset()
			reviewAnswers(kube, tc.user, tc.err)
			got, err := whoAmI(context.Background(), kube)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("whoAmI = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("whoAmI = %q, nil; want an error %q", got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q; want one line containing %q", err, tc.wantErr)
			}
			if c := ExitCode(err); c != tc.wantCode {
				t.Errorf("exit code %d for %q; want %d", c, err, tc.wantCode)
			}
		})
	}
}
