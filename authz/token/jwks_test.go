package token

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestParseJWKS(t *testing.T) {
	k := testKeys(t)
	rsaJWK := jwkRSA("k", &k.rsa.PublicKey)
	ecJWK := jwkEC("k", &k.ec.PublicKey)
	edJWK := jwkOKP("k", k.ed.Public().(ed25519.PublicKey))
	with := func(base map[string]any, over map[string]any) map[string]any {
		m := maps.Clone(base)
		for k, v := range over {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	rawPoint, err := k.ec.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	y := rawPoint[33:]
	y[10] ^= 1 // a valid x with a wrong y is off the curve
	badY := b64u(y)

	tests := []struct {
		name    string
		key     any
		wantAlg string // empty: the key must be skipped
		reason  string // substring of the skip reason
	}{
		{"RSA derives RS256", rsaJWK, "RS256", ""},
		{"RSA with alg RS256", with(rsaJWK, map[string]any{"alg": "RS256"}), "RS256", ""},
		{"RSA padded members", with(rsaJWK, map[string]any{"e": "AQAB="}), "RS256", ""},
		{"RSA alg RS384", with(rsaJWK, map[string]any{"alg": "RS384"}), "", "unsupported alg"},
		{"RSA alg PS256", with(rsaJWK, map[string]any{"alg": "PS256"}), "", "unsupported alg"},
		{"RSA 1024 bits", with(rsaJWK, map[string]any{"n": b64u(bytes.Repeat([]byte{0xff}, 128))}), "", "1024 bits"},
		{"RSA even exponent", with(rsaJWK, map[string]any{"e": b64u([]byte{1, 0, 0})}), "", "exponent"},
		{"RSA exponent 1", with(rsaJWK, map[string]any{"e": "AQ"}), "", "exponent"},
		{"RSA huge exponent", with(rsaJWK, map[string]any{"e": b64u([]byte{1, 0, 0, 0, 1})}), "", "exponent"},
		{"RSA without n", with(rsaJWK, map[string]any{"n": nil}), "", `"n" missing`},
		{"RSA bad base64", with(rsaJWK, map[string]any{"n": "!!"}), "", `member "n"`},
		{"use enc", with(rsaJWK, map[string]any{"use": "enc"}), "", "not sig"},
		{"key_ops sign only", with(rsaJWK, map[string]any{"key_ops": []string{"sign"}}), "", "key_ops"},
		{"key_ops verify", with(rsaJWK, map[string]any{"key_ops": []string{"verify"}}), "RS256", ""},
		{"private key published", with(rsaJWK, map[string]any{"d": "AQAB"}), "", "private"},
		{"symmetric key", map[string]any{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}, "", "symmetric"},
		{"symmetric key without k", map[string]any{"kty": "oct", "kid": "k"}, "", "unsupported kty"},
		{"no kty", map[string]any{"kid": "k"}, "", "unsupported kty"},
		{"no kid", with(rsaJWK, map[string]any{"kid": nil}), "", "no kid"},
		{"not an object", 42, "", "not a JSON object"},
		{"wrong member type", with(rsaJWK, map[string]any{"n": 5}), "", "cannot unmarshal"},
		{"EC derives ES256", with(ecJWK, map[string]any{"alg": nil}), "ES256", ""},
		{"EC P-384", with(ecJWK, map[string]any{"crv": "P-384"}), "", "unsupported EC curve"},
		{"EC alg ES384", with(ecJWK, map[string]any{"alg": "ES384"}), "", "unsupported alg"},
		{"EC point off curve", with(ecJWK, map[string]any{"y": badY}), "", "P-256 point"},
		{"EC short coordinate", with(ecJWK, map[string]any{"x": b64u(make([]byte, 31))}), "", "32 bytes"},
		{"OKP derives EdDSA", edJWK, "EdDSA", ""},
		{"OKP alg EdDSA", with(edJWK, map[string]any{"alg": "EdDSA"}), "EdDSA", ""},
		{"OKP X25519", with(edJWK, map[string]any{"crv": "X25519"}), "", "unsupported OKP curve"},
		{"OKP short key", with(edJWK, map[string]any{"x": b64u(make([]byte, 31))}), "", "32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, skipped, err := parseJWKS(jwksJSONAny(t, tt.key))
			if err != nil {
				t.Fatalf("parseJWKS: %v", err)
			}
			if tt.wantAlg != "" {
				if got := keys["k"].alg; got != tt.wantAlg || len(skipped) != 0 {
					t.Fatalf("alg = %q, skipped = %v; want %s", got, skipped, tt.wantAlg)
				}
				return
			}
			if len(keys) != 0 || len(skipped) != 1 {
				t.Fatalf("keys = %v, skipped = %v; want one skipped", keys, skipped)
			}
			if !strings.Contains(skipped[0].reason.Error(), tt.reason) {
				t.Errorf("reason = %q, want it to mention %q", skipped[0].reason, tt.reason)
			}
		})
	}

	t.Run("duplicate kid keeps the first", func(t *testing.T) {
		keys, skipped, err := parseJWKS(jwksJSON(t, with(ecJWK, nil), with(rsaJWK, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if keys["k"].alg != "ES256" || len(skipped) != 1 {
			t.Fatalf("keys = %v, skipped = %v", keys, skipped)
		}
	})
	for _, doc := range []string{`{}`, `{"keys":null}`, `{"keys":{}}`, `[]`, `null`, ``, `{"keys":[`} {
		if _, _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("parseJWKS(%q) accepted a document that is not a key set", doc)
		}
	}
}

func jwksJSONAny(tb testing.TB, key any) []byte {
	tb.Helper()
	if m, ok := key.(map[string]any); ok {
		return jwksJSON(tb, m)
	}
	return []byte(`{"keys":[42]}`)
}

func TestJWKSFileRotation(t *testing.T) {
	k := testKeys(t)
	path := writeJWKS(t, jwkRSA("rsa-1", &k.rsa.PublicKey))
	// A long interval leaves the file watcher as the only way in (Verify is
	// not called with the new kid until the key is loaded).
	v := newTestVerifier(t, Config{JWKSFile: path, JWKSRefresh: time.Hour})
	oldTok := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims(nil))
	newTok := sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa-2", claims(nil))

	writeFileAtomic(t, path, jwksJSON(t, jwkRSA("rsa-1", &k.rsa.PublicKey), jwkRSA("rsa-2", &k.rsa2.PublicKey)))
	eventually(t, "rsa-2 to load", func() bool { return hasKid(v, "rsa-2") })
	for _, tok := range []string{oldTok, newTok} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("Verify during overlap: %v", err)
		}
	}

	// Rewritten in place this time, as an editor would.
	if err := os.WriteFile(path, jwksJSON(t, jwkRSA("rsa-2", &k.rsa2.PublicKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rsa-1 to be retired", func() bool { return !hasKid(v, "rsa-1") })
	if _, err := v.Verify(oldTok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify with retired kid = %v, want ErrInvalid", err)
	}
	if _, err := v.Verify(newTok); err != nil {
		t.Fatalf("Verify after rotation: %v", err)
	}
}

func TestFailedRefreshKeepsKeys(t *testing.T) {
	k := testKeys(t)
	tok := sign(t, jwt.SigningMethodES256, k.ec, "ec-1", claims(nil))
	bad := map[string][]byte{
		"garbage":        []byte("{{{ not json"),
		"no usable keys": jwksJSON(t, map[string]any{"kty": "RSA", "kid": "weak", "n": "AQAB", "e": "AQAB"}),
		"empty set":      jwksJSON(t),
	}
	for name, doc := range bad {
		t.Run(name, func(t *testing.T) {
			path := writeJWKS(t, jwkEC("ec-1", &k.ec.PublicKey))
			logs := &lockedBuffer{}
			v := newTestVerifier(t, Config{
				JWKSFile: path, JWKSRefresh: 10 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			writeFileAtomic(t, path, doc)
			start := v.refreshFailures.Load()
			eventually(t, "two failed refreshes", func() bool { return v.refreshFailures.Load() >= start+2 })
			if _, err := v.Verify(tok); err != nil {
				t.Fatalf("Verify after failed refresh: %v", err)
			}
			if !strings.Contains(logs.String(), "keeping previous keys") {
				t.Errorf("no warning logged; logs:\n%s", logs)
			}
		})
	}

	t.Run("file removed", func(t *testing.T) {
		path := writeJWKS(t, jwkEC("ec-1", &k.ec.PublicKey))
		v := newTestVerifier(t, Config{JWKSFile: path, JWKSRefresh: 10 * time.Millisecond})
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		start := v.refreshFailures.Load()
		eventually(t, "two failed refreshes", func() bool { return v.refreshFailures.Load() >= start+2 })
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("Verify after file removal: %v", err)
		}
	})

	t.Run("URL fails", func(t *testing.T) {
		srv := newJWKSServer(t, jwksJSON(t, jwkEC("ec-1", &k.ec.PublicKey)))
		v := newTestVerifier(t, Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), JWKSRefresh: 10 * time.Millisecond})
		srv.fail.Store(true)
		start := v.refreshFailures.Load()
		eventually(t, "two failed refreshes", func() bool { return v.refreshFailures.Load() >= start+2 })
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("Verify after failed fetch: %v", err)
		}
	})
}

func TestJWKSURL(t *testing.T) {
	k := testKeys(t)
	oldTok := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims(nil))
	newTok := sign(t, jwt.SigningMethodEdDSA, k.ed, "ed-2", claims(nil))
	rotated := jwksJSON(t, jwkRSA("rsa-1", &k.rsa.PublicKey), jwkOKP("ed-2", k.ed.Public().(ed25519.PublicKey)))

	t.Run("interval refresh", func(t *testing.T) {
		srv := newJWKSServer(t, jwksJSON(t, jwkRSA("rsa-1", &k.rsa.PublicKey)))
		v := newTestVerifier(t, Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), JWKSRefresh: 10 * time.Millisecond})
		if _, err := v.Verify(oldTok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		srv.set(rotated)
		eventually(t, "ed-2 to load", func() bool { return hasKid(v, "ed-2") })
		if _, err := v.Verify(newTok); err != nil {
			t.Fatalf("Verify after rotation: %v", err)
		}
	})

	t.Run("unknown kid refresh is rate limited", func(t *testing.T) {
		srv := newJWKSServer(t, jwksJSON(t, jwkRSA("rsa-1", &k.rsa.PublicKey)))
		v := newTestVerifier(t, Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), JWKSRefresh: time.Hour})
		srv.set(rotated)
		if _, err := v.Verify(newTok); !errors.Is(err, ErrInvalid) {
			t.Fatalf("first Verify with a new kid = %v, want ErrInvalid", err)
		}
		eventually(t, "the new kid to verify", func() bool {
			_, err := v.Verify(newTok)
			return err == nil
		})
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("JWKS fetched %d times, want 2 (start + one unknown kid)", got)
		}
		for range 100 {
			if _, err := v.Verify(sign(t, jwt.SigningMethodEdDSA, k.ed, "attacker", claims(nil))); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify with unknown kid = %v", err)
			}
		}
		// Absence of fetches can only be observed by waiting; the refresher
		// answers a kid miss within microseconds, so this is ample.
		time.Sleep(50 * time.Millisecond)
		if got := srv.hits.Load(); got != 2 {
			t.Fatalf("JWKS fetched %d times after a flood of unknown kids, want 2", got)
		}
	})

	t.Run("plain http on loopback", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write(jwksJSON(t, jwkRSA("rsa-1", &k.rsa.PublicKey)))
		}))
		t.Cleanup(srv.Close)
		v := newTestVerifier(t, Config{JWKSURL: srv.URL})
		if _, err := v.Verify(oldTok); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})

	t.Run("start fails on bad status", func(t *testing.T) {
		srv := newJWKSServer(t, nil)
		srv.fail.Store(true)
		if _, err := NewVerifier(t.Context(), Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), Logger: quietLogger()}); err == nil {
			t.Fatal("NewVerifier succeeded without a JWKS")
		}
	})

	t.Run("start fails on oversized JWKS", func(t *testing.T) {
		srv := newJWKSServer(t, bytes.Repeat([]byte(" "), maxJWKSBytes+1))
		if _, err := NewVerifier(t.Context(), Config{JWKSURL: srv.URL, HTTPClient: srv.Client(), Logger: quietLogger()}); err == nil {
			t.Fatal("NewVerifier accepted an oversized JWKS")
		}
	})
}

func TestCheckRedirect(t *testing.T) {
	for target, ok := range map[string]bool{
		"https://idp.example/keys":  true,
		"http://127.0.0.1:1/keys":   true,
		"http://localhost/keys":     true,
		"http://[::1]/keys":         true,
		"http://idp.example/keys":   false,
		"http://10.0.0.1/keys":      false,
		"file:///etc/passwd":        false,
		"https://idp.example:8443/": true,
	} {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		err = checkRedirect(&http.Request{URL: u}, nil)
		if (err == nil) != ok {
			t.Errorf("checkRedirect(%s) = %v, want ok=%v", target, err, ok)
		}
	}
	if err := checkRedirect(&http.Request{URL: &url.URL{Scheme: "https", Host: "x"}}, make([]*http.Request, 5)); err == nil {
		t.Error("checkRedirect followed a sixth redirect")
	}
}

type jwksServer struct {
	*httptest.Server
	doc  atomic.Pointer[[]byte]
	hits atomic.Int64
	fail atomic.Bool
}

func newJWKSServer(tb testing.TB, doc []byte) *jwksServer {
	tb.Helper()
	s := &jwksServer{}
	s.set(doc)
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		if s.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write(*s.doc.Load())
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte) { s.doc.Store(&doc) }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
