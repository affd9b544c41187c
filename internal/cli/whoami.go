package cli

import (
	"context"
	"errors"
	"fmt"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// whoAmI asks the API server who the caller is (an
// authentication.k8s.io/v1 SelfSubjectReview, served by Kubernetes 1.28
// and later) and returns the username, as the API server authenticated
// it: what a record of an operator's action (a pause, a confirmation that
// a node is off) names. Not what the kubeconfig claims: the API server's
// word.
//
// An API server that refuses the review, cannot be reached or does not
// serve it is an error that exits ExitCannotRun.
func whoAmI(ctx context.Context, kube kubernetes.Interface) (string, error) {
	r, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
		return "", cannotRun(fmt.Errorf("the API server does not serve authentication.k8s.io/v1 SelfSubjectReview (Kubernetes 1.28 or later does), so it cannot say who you are: %w", err))
	case err != nil:
		return "", cannotRun(fmt.Errorf("asking the API server who you are (SelfSubjectReview): %w", err))
	case r.Status.UserInfo.Username == "":
		return "", cannotRun(errors.New("the API server did not say who you are (an empty username in its SelfSubjectReview)"))
	}
	return r.Status.UserInfo.Username, nil
}
