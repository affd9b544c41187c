package kubeutil

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/liberator-dev/liberator/api/v1alpha1"
)

// Scheme returns a scheme with the built-in kinds and liberator's Takeover,
// for the clients of the controller and the commands.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Clients builds, on one REST config, the typed clientset and a
// controller-runtime client (with watch) that knows the Takeover kind: what
// the controller and the commands both need.
func Clients(rc *rest.Config) (kubernetes.Interface, client.WithWatch, error) {
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, err
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, nil, err
	}
	cl, err := client.NewWithWatch(rc, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	return kube, cl, nil
}
