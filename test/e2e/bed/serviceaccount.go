package bed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as the
// ServiceAccount namespace/name with a bound token from the TokenRequest API
// (valid 24 h), so a process run with it has exactly that account's RBAC
// permissions. It returns the file's path.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) (string, error) {
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(24 * 60 * 60))},
	}
	tok, err := c.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("bed: token for service account %s/%s: %w", namespace, name, err)
	}
	ca := c.rest.CAData
	if len(ca) == 0 && c.rest.CAFile != "" {
		if ca, err = os.ReadFile(c.rest.CAFile); err != nil {
			return "", fmt.Errorf("bed: kubeconfig for %s/%s: %w", namespace, name, err)
		}
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[c.name] = &clientcmdapi.Cluster{
		Server:                   c.rest.Host,
		CertificateAuthorityData: ca,
		InsecureSkipTLSVerify:    c.rest.Insecure,
	}
	user := namespace + "/" + name
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts[user] = &clientcmdapi.Context{Cluster: c.name, AuthInfo: user, Namespace: namespace}
	cfg.CurrentContext = user
	path := filepath.Join(c.dir, "sa-"+namespace+"-"+name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("bed: write kubeconfig for %s: %w", user, err)
	}
	return path, nil
}
