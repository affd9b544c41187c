package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// DefaultNodeTokenGroup is the group kubeadm gives node bootstrap tokens;
// kubeadm's RBAC lets it create node CSRs.
const DefaultNodeTokenGroup = "system:bootstrappers:kubeadm:default-node-token"

type joinOptions struct {
	ttl         time.Duration
	description string
	address     string
}

func newJoinCommand(s IOStreams, k *kubeFlags) *cobra.Command {
	o := &joinOptions{}
	cmd := &cobra.Command{
		Use:   "join-command",
		Short: "Create a bootstrap token and print the kubeadm join command for a new or rebuilt node",
		Long: `Create a bootstrap token (a bootstrap.kubernetes.io/token Secret in
kube-system, usable for authentication and signing, in the group
` + DefaultNodeTokenGroup + `, expiring after --ttl)
and print the 'kubeadm join' command for it: the API server address, the
token, and --discovery-token-ca-cert-hash with the SHA-256 of the cluster CA's
public key (DER SubjectPublicKeyInfo), the same value as

  openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | openssl rsa -pubin -outform der | openssl dgst -sha256

The address and CA come from the kube-public/cluster-info ConfigMap that
'kubeadm join' itself reads, when the cluster has one; otherwise from the
kubeconfig (CA from its certificate-authority data, or the kube-root-ca.crt
ConfigMap). The join command goes to standard output, everything else to
standard error.`,
		Example: `  # print a join command valid for an hour
  liberator join-command

  # valid for 15 minutes, through the load balancer's address
  liberator join-command --ttl 15m --apiserver-address 192.168.1.10:6443

  # run it on the node
  ssh w1-k8s sudo $(liberator join-command)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ttl < 0 {
				return usageErrorf("--ttl must not be negative")
			}
			c, err := k.clients()
			if err != nil {
				return err
			}
			return runJoinCommand(cmd.Context(), s, c, o)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.ttl, "ttl", time.Hour, "how long the token is valid; 0 means it never expires")
	f.StringVar(&o.description, "description", "created by liberator join-command", "the token's description")
	f.StringVar(&o.address, "apiserver-address", "", "host:port the node joins through (default: from cluster-info, else the kubeconfig's server)")
	return cmd
}

// caPublicKeyHashes returns "sha256:<hex>" of the DER-encoded
// SubjectPublicKeyInfo of each certificate in the PEM bundle, as kubeadm's
// --discovery-token-ca-cert-hash expects.
func caPublicKeyHashes(pemData []byte) ([]string, error) {
	certs, err := certutil.ParseCertsPEM(pemData)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	out := make([]string, 0, len(certs))
	for _, c := range certs {
		out = append(out, publicKeyHash(c))
	}
	return out, nil
}

func publicKeyHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// joinLine is the kubeadm join command.
func joinLine(address, token string, hashes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kubeadm join %s --token %s", address, token)
	for _, h := range hashes {
		fmt.Fprintf(&b, " --discovery-token-ca-cert-hash %s", h)
	}
	return b.String()
}

// hostPort turns a server URL ("https://10.0.0.1:6443") into host:port.
func hostPort(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("cannot read the API server address from %q", server)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return u.Host, nil
}

// bootstrapTokenSecret builds the Secret of a bootstrap token.
func bootstrapTokenSecret(id, secret, description string, expires time.Time) *corev1.Secret {
	data := map[string]string{
		bootstrapapi.BootstrapTokenIDKey:               id,
		bootstrapapi.BootstrapTokenSecretKey:           secret,
		bootstrapapi.BootstrapTokenDescriptionKey:      description,
		bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
		bootstrapapi.BootstrapTokenExtraGroupsKey:      DefaultNodeTokenGroup,
	}
	if !expires.IsZero() {
		data[bootstrapapi.BootstrapTokenExpirationKey] = expires.UTC().Format(time.RFC3339)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      bootstraputil.BootstrapTokenSecretName(id),
			Namespace: metav1.NamespaceSystem,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "liberator"},
		},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: data,
	}
}

// clusterIdentity is where nodes join and the CA they trust.
type clusterIdentity struct {
	address string
	caPEM   []byte
	source  string
}

// discover finds the API server address and the cluster CA: from
// kube-public/cluster-info (what kubeadm join reads), else from the
// kubeconfig, else the CA from the kube-root-ca.crt ConfigMap.
func discover(ctx context.Context, c *clients) (clusterIdentity, []string, error) {
	var id clusterIdentity
	var notes []string
	cm, err := c.kube.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	switch {
	case err == nil:
		cfg, err := clientcmd.Load([]byte(cm.Data[bootstrapapi.KubeConfigKey]))
		if err == nil {
			for _, cl := range cfg.Clusters {
				if len(cl.CertificateAuthorityData) > 0 && cl.Server != "" {
					addr, err := hostPort(cl.Server)
					if err == nil {
						return clusterIdentity{address: addr, caPEM: cl.CertificateAuthorityData, source: "kube-public/cluster-info"}, nil, nil
					}
				}
			}
		}
		notes = append(notes, "kube-public/cluster-info holds no usable kubeconfig; using the kubeconfig's server and CA")
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		notes = append(notes, "the cluster has no kube-public/cluster-info ConfigMap (kubeadm creates it; 'kubeadm join' needs it); using the kubeconfig's server and CA")
	default:
		return id, nil, apiError("read kube-public/cluster-info", err)
	}
	addr, err := hostPort(c.rest.Host)
	if err != nil {
		return id, nil, err
	}
	id.address = addr
	id.source = "kubeconfig"
	switch {
	case len(c.rest.CAData) > 0:
		id.caPEM = c.rest.CAData
	case c.rest.CAFile != "":
		if id.caPEM, err = os.ReadFile(c.rest.CAFile); err != nil {
			return id, nil, fmt.Errorf("read the kubeconfig's certificate-authority: %w", err)
		}
	default:
		root, err := c.kube.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		if err != nil {
			return id, nil, apiError("the kubeconfig has no certificate-authority data; read kube-public/kube-root-ca.crt", err)
		}
		id.caPEM = []byte(root.Data["ca.crt"])
		id.source = "kubeconfig server, kube-public/kube-root-ca.crt"
	}
	return id, notes, nil
}

func runJoinCommand(ctx context.Context, s IOStreams, c *clients, o *joinOptions) error {
	id, notes, err := discover(ctx, c)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(s.ErrOut, "note: %s\n", n)
	}
	if o.address != "" {
		id.address = o.address
	}
	hashes, err := caPublicKeyHashes(id.caPEM)
	if err != nil {
		return err
	}
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return err
	}
	parts := strings.SplitN(token, ".", 2)
	var expires time.Time
	if o.ttl > 0 {
		expires = time.Now().Add(o.ttl)
	}
	sec := bootstrapTokenSecret(parts[0], parts[1], o.description, expires)
	if _, err := c.kube.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		return apiError("create bootstrap token Secret kube-system/"+sec.Name, err)
	}
	when := "never expires"
	if !expires.IsZero() {
		when = "expires " + expires.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(s.ErrOut, "bootstrap token %s created (Secret kube-system/%s, %s); address and CA from %s\n", parts[0], sec.Name, when, id.source)
	fmt.Fprintln(s.Out, joinLine(id.address, token, hashes))
	return nil
}
