package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The seed's test cases were issued at 1706400000 (2024-01-28T00:00:00Z)
// and expire 15 days later; the tests run ten hours into that window.
var (
	seedIat = int64(1706400000)
	seedExp = int64(1707696000)
	testNow = time.Unix(seedIat+10*3600, 0).UTC()
)

var devSecret = []byte("0123456789abcdef0123456789abcdef-dev")

type testKeySet struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

// RSA key generation costs tens of milliseconds; share one set per run.
var keysOnce = sync.OnceValue(func() *testKeySet {
	var k testKeySet
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return &k
})

func testKeys(tb testing.TB) *testKeySet {
	tb.Helper()
	return keysOnce()
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkRSA(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "use": "sig",
		"n": b64u(pub.N.Bytes()),
		"e": b64u(big.NewInt(int64(pub.E)).Bytes()),
	}
}

func jwkEC(kid string, pub *ecdsa.PublicKey) map[string]any {
	raw, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	return map[string]any{
		"kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256",
		"x": b64u(raw[1:33]), "y": b64u(raw[33:]),
	}
}

func jwkOKP(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(pub)}
}

// stdJWKS is the key set most tests verify against.
func stdJWKS(k *testKeySet) []map[string]any {
	return []map[string]any{
		jwkRSA("rsa-1", &k.rsa.PublicKey),
		jwkEC("ec-1", &k.ec.PublicKey),
		jwkOKP("ed-1", k.ed.Public().(ed25519.PublicKey)),
	}
}

func jwksJSON(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// writeFileAtomic replaces path the way deploy tooling does, so the watcher
// sees a rename rather than an in-place write.
func writeFileAtomic(tb testing.TB, path string, data []byte) {
	tb.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwks-*")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		tb.Fatal(err)
	}
}

func writeJWKS(tb testing.TB, keys ...map[string]any) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "jwks.json")
	writeFileAtomic(tb, path, jwksJSON(tb, keys...))
	return path
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTestVerifier fills in the test clock and logger and makes sure the
// refresher has stopped when the test ends.
func newTestVerifier(tb testing.TB, cfg Config) *Verifier {
	tb.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	v, err := NewVerifier(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("NewVerifier: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case <-v.done:
		case <-time.After(5 * time.Second):
			tb.Error("JWKS refresher did not stop")
		}
	})
	return v
}

// claims returns a valid payload in the seed's shape, with overrides;
// a nil override deletes the claim.
func claims(over map[string]any) map[string]any {
	c := map[string]any{
		"sub":   "customer-456",
		"email": "john@acmecorp.com",
		"roles": []string{"customer"},
		"iat":   seedIat,
		"exp":   seedExp,
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, c map[string]any) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, jwt.MapClaims(c))
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func signHS(tb testing.TB, secret []byte, c map[string]any) string {
	tb.Helper()
	s, err := SignHS256(secret, c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// craft assembles a token from literal JSON, for shapes no signer produces.
func craft(hdr, payload string, sig []byte) string {
	return b64u([]byte(hdr)) + "." + b64u([]byte(payload)) + "." + b64u(sig)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasKid(v *Verifier, kid string) bool {
	ks := v.keys.Load()
	if ks == nil {
		return false
	}
	_, ok := ks.keys[kid]
	return ok
}
