package cli

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	bootstrapsecrets "k8s.io/cluster-bootstrap/util/secrets"
)

// selfSignedCA returns a PEM CA certificate for key.
func selfSignedCA(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// opensslHash runs the seed's pipeline (with pkey for non-RSA keys).
func opensslHash(t *testing.T, caPEM []byte, keyCmd string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	cmd := exec.Command("sh", "-c", "openssl x509 -pubkey -noout | openssl "+keyCmd+" -pubin -outform der 2>/dev/null | openssl dgst -sha256 -hex | sed 's/^.* //'")
	cmd.Stdin = bytes.NewReader(caPEM)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return "sha256:" + strings.TrimSpace(string(out))
}

func TestCAPublicKeyHashMatchesOpenSSL(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, keyCmd string
		key          crypto.Signer
	}{{"rsa", "rsa", rsaKey}, {"ecdsa", "pkey", ecKey}} {
		t.Run(tc.name, func(t *testing.T) {
			ca := selfSignedCA(t, tc.key)
			got, err := caPublicKeyHashes(ca)
			if err != nil {
				t.Fatal(err)
			}
			// Independently: re-encode the public key as PKIX DER.
			der, err := x509.MarshalPKIXPublicKey(tc.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(der)
			want := "sha256:" + hex.EncodeToString(sum[:])
			if len(got) != 1 || got[0] != want {
				t.Fatalf("hashes = %v, want [%s]", got, want)
			}
			if o := opensslHash(t, ca, tc.keyCmd); o != want {
				t.Fatalf("openssl pipeline gives %s, we give %s", o, want)
			}
		})
	}
}

func TestCAPublicKeyHashesBundle(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	bundle := append(selfSignedCA(t, k1), selfSignedCA(t, k2)...)
	got, err := caPublicKeyHashes(bundle)
	if err != nil || len(got) != 2 || got[0] == got[1] {
		t.Fatalf("bundle hashes = %v, %v; want two different", got, err)
	}
	if _, err := caPublicKeyHashes([]byte("not a certificate")); err == nil {
		t.Error("garbage CA accepted")
	}
	want := "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash " + got[0] + " --discovery-token-ca-cert-hash " + got[1]
	if line := joinLine("10.0.0.1:6443", "abcdef.0123456789abcdef", got); line != want {
		t.Errorf("join line = %s", line)
	}
}

func TestBootstrapTokenSecret(t *testing.T) {
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := strings.Cut(token, ".")
	exp := time.Date(2026, 3, 14, 13, 0, 0, 0, time.UTC)
	s := bootstrapTokenSecret(id, secret, "test", exp)
	// What the API server stores: StringData lands in Data.
	s.Data = map[string][]byte{}
	for k, v := range s.StringData {
		s.Data[k] = []byte(v)
	}
	if s.Namespace != "kube-system" || s.Name != "bootstrap-token-"+id || s.Type != corev1.SecretTypeBootstrapToken {
		t.Fatalf("secret %s/%s type %s", s.Namespace, s.Name, s.Type)
	}
	if !bootstraputil.IsValidBootstrapToken(bootstraputil.TokenFromIDAndSecret(
		bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenIDKey), bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenSecretKey))) {
		t.Error("token in the Secret is not a valid bootstrap token")
	}
	if id2, ok := bootstrapsecrets.ParseName(s.Name); !ok || id2 != id {
		t.Errorf("secret name %s does not parse to token id %s", s.Name, id)
	}
	if groups, err := bootstrapsecrets.GetGroups(s); err != nil || len(groups) != 2 || groups[1] != DefaultNodeTokenGroup {
		t.Errorf("groups = %v, %v", groups, err)
	}
	if bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenUsageAuthentication) != "true" || bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenUsageSigningKey) != "true" {
		t.Error("usages authentication and signing not both set")
	}
	if bootstrapsecrets.HasExpired(s, exp.Add(-time.Minute)) || !bootstrapsecrets.HasExpired(s, exp.Add(time.Minute)) {
		t.Errorf("expiration %q not honored", bootstrapsecrets.GetData(s, bootstrapapi.BootstrapTokenExpirationKey))
	}
	forever := bootstrapTokenSecret(id, secret, "test", time.Time{})
	if _, ok := forever.StringData[bootstrapapi.BootstrapTokenExpirationKey]; ok {
		t.Error("a token with --ttl 0 has an expiration")
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"https://10.0.0.1:6443":      "10.0.0.1:6443",
		"https://api.example.com":    "api.example.com:443",
		"https://[fd00::1]:6443/":    "[fd00::1]:6443",
		"https://127.0.0.1:32768/x/": "127.0.0.1:32768",
	} {
		if got, err := hostPort(in); err != nil || got != want {
			t.Errorf("hostPort(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := hostPort("not a url"); err == nil {
		t.Error("hostPort accepted a bad server")
	}
}
