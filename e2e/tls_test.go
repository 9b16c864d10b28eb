package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waooaw/policygateway/e2e/stack"
)

// testCA signs server certificates for one test run.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a server certificate for dnsName, and its key, into dir and
// returns their paths.
func (ca *testCA) issue(t *testing.T, dir, file, dnsName string) [2]string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsName},
		DNSNames:     []string{dnsName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	paths := [2]string{filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key")}
	writeFile(t, paths[0], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, paths[1], pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	return paths
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile swaps the file in one rename, so the route watcher never
// reads it half written.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsEcho is a demo backend's answer over HTTPS.
type tlsEcho struct {
	echo
	TLS bool   `json:"tls"`
	SNI string `json:"sni"`
}

// TestHTTPSUpstreamIsVerified sends https routes to demo backends by the name
// localhost, as a real deployment names its upstreams: Envoy must resolve
// it, send it as SNI and accept only a certificate for that name from the
// configured CA.
func TestHTTPSUpstreamIsVerified(t *testing.T) {
	dir := t.TempDir()
	trusted := newTestCA(t, "gateway e2e trusted CA")
	caFile := filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, trusted.pem)
	backendTLS := map[string][2]string{
		"secure":    trusted.issue(t, dir, "secure", "localhost"),
		"rogue":     newTestCA(t, "gateway e2e unknown CA").issue(t, dir, "rogue", "localhost"),
		"wrongname": trusted.issue(t, dir, "wrongname", "elsewhere.internal"),
	}

	// The backends' ports are known only once the stack runs, so the real
	// routes arrive by a file reload. The placeholder is there because
	// gatewayd publishes no first snapshot for a route set without clusters.
	routes := filepath.Join(dir, "routes.yaml")
	writeFile(t, routes, []byte("routes:\n  - {route_version: 1, source_path: /api/placeholder, http_method: GET,"+
		" target_backend: cp, target_service_url: 'http://127.0.0.1:9/'}\n"))
	s := stack.Start(t, stack.Options{RoutesFile: routes, BackendTLS: backendTLS, Env: map[string]string{
		// Off, so the upstream is the route's own https://localhost URL.
		"GATEWAY_USE_INTERNAL_URLS": "false",
		"UPSTREAM_CA_FILE":          caFile,
	}})
	var doc strings.Builder
	doc.WriteString("active_version: 1\nroutes:\n")
	for i, r := range []struct{ path, backend, target string }{
		{"/api/tls/{id}", "secure", "/secure/{id}"},
		{"/api/badtls", "rogue", "/x"},
		{"/api/wrongname", "wrongname", "/x"},
	} {
		fmt.Fprintf(&doc, "  - id: %d\n    route_version: 1\n    source_path: %s\n    http_method: GET\n    target_backend: %s\n"+
			"    target_service_url: https://localhost:%d%s\n    middleware_stack: [auth, audit]\n",
			i+1, r.path, r.backend, s.Backends[r.backend], r.target)
	}
	replaceFile(t, routes, []byte(doc.String()))

	auth := stack.Bearer(t, governor)
	cluster := func(backend string) string { return fmt.Sprintf("cluster.https_localhost_%d", s.Backends[backend]) }

	var resp *stack.Response
	s.Eventually(15*time.Second, "GET /api/tls/abc answers 200 over the reloaded routes", func() bool {
		r, err := s.Do("GET", "/api/tls/abc", auth)
		resp = r
		return err == nil && r.Status == 200
	})

	t.Run("trusted certificate for the name", func(t *testing.T) {
		wantBackend(t, resp, "secure", "/secure/abc")
		var e tlsEcho
		resp.JSON(t, &e)
		if !e.TLS || e.SNI != "localhost" {
			t.Errorf("tls %v, sni %q: want TLS with SNI localhost", e.TLS, e.SNI)
		}
		if want := fmt.Sprintf("localhost:%d", s.Backends["secure"]); e.Host != want {
			t.Errorf("host %q, want %q", e.Host, want)
		}
		if n := s.Stat(t, cluster("secure")+".ssl.handshake"); n < 1 {
			t.Errorf("ssl.handshake = %d, want at least 1", n)
		}
		if n := s.Stat(t, cluster("secure")+".ssl.fail_verify_error"); n != 0 {
			t.Errorf("ssl.fail_verify_error = %d on the trusted upstream", n)
		}
	})

	// Both routes arrived in the same snapshot as the one above, so a 503
	// here is Envoy refusing the upstream, not a route still on its way.
	for _, tc := range []struct{ name, path, backend, stat string }{
		{"certificate from another CA", "/api/badtls", "rogue", "ssl.fail_verify_error"},
		{"trusted certificate for another name", "/api/wrongname", "wrongname", "ssl.fail_verify_san"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := s.MustDo(t, "GET", tc.path, auth)
			if resp.Status != 503 {
				t.Fatalf("status %d, want 503; body %s", resp.Status, resp.Body)
			}
			// Envoy's own upstream failure still gets a problem body.
			var p map[string]any
			resp.JSON(t, &p)
			if resp.Header.Get("Content-Type") != "application/problem+json" || p["error_code"] != "UPSTREAM_UNAVAILABLE" ||
				p["status"] != float64(503) || p["correlation_id"] == "" || p["correlation_id"] != resp.Header.Get("X-Correlation-ID") {
				t.Errorf("upstream failure body %s (content-type %q)", resp.Body, resp.Header.Get("Content-Type"))
			}
			if n := s.Stat(t, cluster(tc.backend)+"."+tc.stat); n < 1 {
				t.Errorf("%s = %d, want at least 1", tc.stat, n)
			}
			if n := s.Stat(t, cluster(tc.backend)+".ssl.handshake"); n != 0 {
				t.Errorf("ssl.handshake = %d: Envoy completed a handshake it should have refused", n)
			}
		})
	}
}
