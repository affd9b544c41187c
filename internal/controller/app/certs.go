package app

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/client-go/util/cert"
)

// serverTLS is the TLS configuration of the secure metrics endpoint: the
// certificate and key files, read again whenever either changes (a
// cert-manager renewal needs no restart), or, when both are empty, a
// self-signed certificate made now.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if certFile == "" && keyFile == "" {
		host, _ := os.Hostname()
		certPEM, keyPEM, err := cert.GenerateSelfSignedCertKey(host, nil, []string{"liberator-controller-metrics", "localhost"})
		if err != nil {
			return nil, fmt.Errorf("cannot make a self-signed certificate for the metrics endpoint: %w", err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
		return cfg, nil
	}
	f := &certFiles{cert: certFile, key: keyFile}
	if _, err := f.get(nil); err != nil {
		return nil, err
	}
	cfg.GetCertificate = f.get
	return cfg, nil
}

// certFiles loads a certificate and its key from files, again when either
// file's modification time changes; a pair that no longer loads leaves the
// last good one in use.
type certFiles struct {
	cert, key string

	mu   sync.Mutex
	mod  [2]time.Time
	last *tls.Certificate
}

func (f *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	var mod [2]time.Time
	for i, p := range []string{f.cert, f.key} {
		st, err := os.Stat(p)
		if err == nil {
			mod[i] = st.ModTime()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != nil && mod == f.mod {
		return f.last, nil
	}
	c, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		if f.last != nil {
			return f.last, nil
		}
		return nil, fmt.Errorf("metrics certificate %s and key %s: %w", f.cert, f.key, err)
	}
	f.last, f.mod = &c, mod
	return f.last, nil
}
