package token

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
)

func TestVerifyEachAlgorithm(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{HS256Secret: devSecret, JWKSFile: writeJWKS(t, stdJWKS(k)...)})

	tests := []struct {
		name string
		tok  string
	}{
		{"HS256", signHS(t, devSecret, claims(nil))},
		{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims(nil))},
		{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "ec-1", claims(nil))},
		{"EdDSA", sign(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims(nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != "customer-456" || c.UserID != "customer-456" {
				t.Errorf("subject = %q, user id = %q", c.Subject, c.UserID)
			}
		})
	}
}

// The two JWT payloads of the seed's §3.3 integration test cases.
func TestSeedPayloads(t *testing.T) {
	v := newTestVerifier(t, Config{HS256Secret: devSecret})
	tests := []struct {
		name    string
		payload map[string]any
		want    *Claims
	}{{
		name: "customer trial agent execution",
		payload: map[string]any{
			"sub": "customer-456", "email": "john@acmecorp.com", "roles": []string{"customer"},
			"is_governor": false, "agent_id": "abc123", "trial_mode": true,
			"trial_expires_at": "2024-02-10T00:00:00Z", "iat": seedIat, "exp": seedExp,
		},
		want: &Claims{
			Subject: "customer-456", UserID: "customer-456", Email: "john@acmecorp.com",
			Roles: []string{"customer"}, AgentID: "abc123", TrialMode: true,
			TrialExpiresAt: time.Date(2024, 2, 10, 0, 0, 0, 0, time.UTC),
			IssuedAt:       time.Unix(seedIat, 0).UTC(), ExpiresAt: time.Unix(seedExp, 0).UTC(),
		},
	}, {
		name: "admin creates agent (governor)",
		payload: map[string]any{
			"sub": "admin-123", "email": "admin@waooaw.com", "roles": []string{"admin"},
			"is_governor": true, "iat": seedIat, "exp": seedExp,
		},
		want: &Claims{
			Subject: "admin-123", UserID: "admin-123", Email: "admin@waooaw.com",
			Roles: []string{"admin"}, IsGovernor: true,
			IssuedAt: time.Unix(seedIat, 0).UTC(), ExpiresAt: time.Unix(seedExp, 0).UTC(),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(signHS(t, devSecret, tt.payload))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

// The platform's later contract: per-portal issuers, each with its own secret.
func TestIssuerSecrets(t *testing.T) {
	cpSecret := []byte("cp-secret-cp-secret-cp-secret-cp-secret")
	ppSecret := []byte("pp-secret-pp-secret-pp-secret-pp-secret")
	portals := map[string][]byte{"cp.waooaw.com": cpSecret, "pp.waooaw.com": ppSecret}
	later := func(iss string, over map[string]any) map[string]any {
		c := claims(map[string]any{"sub": nil, "iss": iss, "user_id": "u-1", "customer_id": "c-9"})
		for k, v := range over {
			c[k] = v
		}
		return c
	}

	tests := []struct {
		name string
		cfg  Config
		tok  string
		want error
	}{
		{"cp token, cp secret", Config{IssuerSecrets: portals}, signHS(t, cpSecret, later("cp.waooaw.com", nil)), nil},
		{"pp token, pp secret", Config{IssuerSecrets: portals}, signHS(t, ppSecret, later("pp.waooaw.com", nil)), nil},
		{"cp iss signed with pp secret", Config{IssuerSecrets: portals}, signHS(t, ppSecret, later("cp.waooaw.com", nil)), ErrInvalid},
		{"dedicated secret is exclusive", Config{IssuerSecrets: portals, HS256Secret: devSecret}, signHS(t, devSecret, later("cp.waooaw.com", nil)), ErrInvalid},
		{"seed token falls back to JWT_SECRET", Config{IssuerSecrets: portals, HS256Secret: devSecret}, signHS(t, devSecret, claims(nil)), nil},
		{"unknown iss without fallback", Config{IssuerSecrets: portals}, signHS(t, cpSecret, later("evil.example", nil)), ErrInvalid},
		{"issuer check accepts portal issuers", Config{IssuerSecrets: portals, Issuer: "auth.waooaw.com"}, signHS(t, ppSecret, later("pp.waooaw.com", nil)), nil},
		{"issuer check accepts Issuer", Config{IssuerSecrets: portals, HS256Secret: devSecret, Issuer: "auth.waooaw.com"}, signHS(t, devSecret, claims(map[string]any{"iss": "auth.waooaw.com"})), nil},
		{"issuer check requires iss", Config{IssuerSecrets: portals, HS256Secret: devSecret, Issuer: "auth.waooaw.com"}, signHS(t, devSecret, claims(nil)), ErrInvalid},
		{"issuer check rejects others", Config{HS256Secret: devSecret, Issuer: "auth.waooaw.com"}, signHS(t, devSecret, claims(map[string]any{"iss": "other"})), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, tt.cfg)
			_, err := v.Verify(tt.tok)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("later contract claims", func(t *testing.T) {
		v := newTestVerifier(t, Config{IssuerSecrets: portals})
		tok := signHS(t, ppSecret, later("pp.waooaw.com", map[string]any{
			"roles": []string{"admin"}, "governor_agent_id": "genesis", "aud": "waooaw-gateway",
		}))
		got, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		want := &Claims{
			Subject: "u-1", UserID: "u-1", Email: "john@acmecorp.com", Roles: []string{"admin"},
			IsGovernor: true, GovernorAgentID: "genesis", CustomerID: "c-9",
			Issuer: "pp.waooaw.com", Audience: []string{"waooaw-gateway"},
			IssuedAt: time.Unix(seedIat, 0).UTC(), ExpiresAt: time.Unix(seedExp, 0).UTC(),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	})

	t.Run("governor_agent_id without admin is not a governor", func(t *testing.T) {
		v := newTestVerifier(t, Config{IssuerSecrets: portals})
		got, err := v.Verify(signHS(t, ppSecret, later("pp.waooaw.com", map[string]any{"governor_agent_id": "genesis"})))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if got.IsGovernor {
			t.Error("IsGovernor = true for a non-admin")
		}
	})
}

func TestLeeway(t *testing.T) {
	v := newTestVerifier(t, Config{HS256Secret: devSecret, Leeway: 30 * time.Second})
	now := testNow.Unix()
	tests := []struct {
		name string
		over map[string]any
		want error
	}{
		{"exp just passed, within leeway", map[string]any{"exp": now - 10}, nil},
		{"exp passed beyond leeway", map[string]any{"exp": now - 31}, ErrExpired},
		{"exp exactly at leeway edge", map[string]any{"exp": now - 30}, ErrExpired},
		{"nbf slightly ahead, within leeway", map[string]any{"nbf": now + 10}, nil},
		{"nbf in the future", map[string]any{"nbf": now + 3600}, ErrInvalid},
		{"iat slightly ahead, within leeway", map[string]any{"iat": now + 20}, nil},
		{"iat in the future beyond leeway", map[string]any{"iat": now + 120}, ErrInvalid},
		{"fractional exp", map[string]any{"exp": float64(now) + 100.5}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(signHS(t, devSecret, claims(tt.over)))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{
		HS256Secret: devSecret,
		JWKSFile:    writeJWKS(t, stdJWKS(k)...),
		Audience:    "waooaw-gateway",
		Issuer:      "auth.waooaw.com",
	})
	good := func(over map[string]any) map[string]any {
		c := claims(map[string]any{"iss": "auth.waooaw.com", "aud": []string{"other", "waooaw-gateway"}})
		for k, v := range over {
			if v == nil {
				delete(c, k)
				continue
			}
			c[k] = v
		}
		return c
	}
	now := testNow.Unix()

	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hsTok := signHS(t, devSecret, good(nil))
	segs := strings.Split(hsTok, ".")
	payloadJSON := `{"sub":"x","iss":"auth.waooaw.com","aud":"waooaw-gateway","exp":1707696000}`

	// Warm the header cache so that rejections of tokens sharing a good
	// token's header go through the cached path too.
	for _, tok := range []string{
		hsTok,
		sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", good(nil)),
		sign(t, jwt.SigningMethodES256, k.ec, "ec-1", good(nil)),
		sign(t, jwt.SigningMethodEdDSA, k.ed, "ed-1", good(nil)),
	} {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("warming Verify: %v", err)
		}
	}

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMissing},
		{"oversized", strings.Repeat("a", 8193), ErrMalformed},
		{"oversized but well formed", hsTok + strings.Repeat("A", 8192), ErrMalformed},
		{"two segments", segs[0] + "." + segs[1], ErrMalformed},
		{"four segments", hsTok + ".x", ErrMalformed},
		{"empty header", "." + segs[1] + "." + segs[2], ErrMalformed},
		{"empty payload", segs[0] + ".." + segs[2], ErrMalformed},
		{"empty signature", segs[0] + "." + segs[1] + ".", ErrMalformed},
		{"header not base64url", "eyJ+" + hsTok[4:], ErrMalformed},
		{"padded segment", segs[0] + "=." + segs[1] + "." + segs[2], ErrMalformed},
		{"header not JSON", craft(`{"alg":"HS256"`, payloadJSON, []byte("s")), ErrMalformed},
		{"header null", craft(`null`, payloadJSON, []byte("s")), ErrMalformed},
		{"payload not JSON", craft(`{"alg":"HS256"}`, `{"sub":`, []byte("s")), ErrMalformed},
		{"payload null", craft(`{"alg":"HS256"}`, `null`, []byte("s")), ErrMalformed},
		{"payload array", craft(`{"alg":"HS256"}`, `[1]`, []byte("s")), ErrMalformed},
		{"alg none, empty signature", craft(`{"alg":"none","typ":"JWT"}`, payloadJSON, nil), ErrMalformed},
		{"alg none", craft(`{"alg":"none","typ":"JWT"}`, payloadJSON, []byte("x")), ErrInvalid},
		{"alg None", craft(`{"alg":"None"}`, payloadJSON, []byte("x")), ErrInvalid},
		{"alg missing", craft(`{"typ":"JWT"}`, payloadJSON, []byte("x")), ErrInvalid},
		{"alg HS512", sign(t, jwt.SigningMethodHS512, devSecret, "", good(nil)), ErrInvalid},
		{"alg RS384 on RSA kid", sign(t, jwt.SigningMethodRS384, k.rsa, "rsa-1", good(nil)), ErrInvalid},
		{"alg PS256 on RSA kid", sign(t, jwt.SigningMethodPS256, k.rsa, "rsa-1", good(nil)), ErrInvalid},
		{"crit header", craft(`{"alg":"HS256","crit":["exp"]}`, payloadJSON, []byte("x")), ErrInvalid},
		{"HS256 keyed with RSA public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, "rsa-1", good(nil)), ErrInvalid},
		{"HS256 keyed with RSA public key DER", sign(t, jwt.SigningMethodHS256, pubDER, "rsa-1", good(nil)), ErrInvalid},
		{"RS256 with ES256 kid", sign(t, jwt.SigningMethodRS256, k.rsa, "ec-1", good(nil)), ErrInvalid},
		{"ES256 with RSA kid", sign(t, jwt.SigningMethodES256, k.ec, "rsa-1", good(nil)), ErrInvalid},
		{"EdDSA with ES256 kid", sign(t, jwt.SigningMethodEdDSA, k.ed, "ec-1", good(nil)), ErrInvalid},
		{"RS256 without kid", sign(t, jwt.SigningMethodRS256, k.rsa, "", good(nil)), ErrInvalid},
		{"RS256 unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa, "nope", good(nil)), ErrInvalid},
		{"RS256 signed by another key", sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa-1", good(nil)), ErrInvalid},
		{"HS256 wrong secret", signHS(t, []byte("not-the-secret-not-the-secret-xxxx"), good(nil)), ErrInvalid},
		{"HS256 tampered payload", segs[0] + "." + b64u([]byte(`{"sub":"admin","iss":"auth.waooaw.com","aud":"waooaw-gateway","exp":1707696000}`)) + "." + segs[2], ErrInvalid},
		{"ES256 short signature", func() string {
			s := sign(t, jwt.SigningMethodES256, k.ec, "ec-1", good(nil))
			i := strings.LastIndexByte(s, '.')
			sig, err := b64.DecodeString(s[i+1:])
			if err != nil {
				t.Fatal(err)
			}
			return s[:i+1] + b64u(sig[:len(sig)-1])
		}(), ErrInvalid},
		{"expired", signHS(t, devSecret, good(map[string]any{"exp": now - 3600})), ErrExpired},
		{"expired RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa-1", good(map[string]any{"exp": now - 3600})), ErrExpired},
		{"expired but wrong audience", signHS(t, devSecret, good(map[string]any{"exp": now - 3600, "aud": "x"})), ErrInvalid},
		{"exp missing", signHS(t, devSecret, good(map[string]any{"exp": nil})), ErrInvalid},
		{"nbf in future", signHS(t, devSecret, good(map[string]any{"nbf": now + 3600})), ErrInvalid},
		{"iat in future", signHS(t, devSecret, good(map[string]any{"iat": now + 3600})), ErrInvalid},
		{"wrong iss", signHS(t, devSecret, good(map[string]any{"iss": "evil.example"})), ErrInvalid},
		{"iss missing", signHS(t, devSecret, good(map[string]any{"iss": nil})), ErrInvalid},
		{"wrong aud", signHS(t, devSecret, good(map[string]any{"aud": "someone-else"})), ErrInvalid},
		{"aud missing", signHS(t, devSecret, good(map[string]any{"aud": nil})), ErrInvalid},
		{"no subject", signHS(t, devSecret, good(map[string]any{"sub": nil})), ErrInvalid},
		{"roles not array", signHS(t, devSecret, good(map[string]any{"roles": "admin"})), ErrMalformed},
		{"roles of numbers", signHS(t, devSecret, good(map[string]any{"roles": []any{1}})), ErrMalformed},
		{"roles with null", signHS(t, devSecret, good(map[string]any{"roles": []any{"admin", nil}})), ErrMalformed},
		{"is_governor string", signHS(t, devSecret, good(map[string]any{"is_governor": "true"})), ErrMalformed},
		{"trial_mode number", signHS(t, devSecret, good(map[string]any{"trial_mode": 1})), ErrMalformed},
		{"sub number", signHS(t, devSecret, good(map[string]any{"sub": 42})), ErrMalformed},
		{"iss number", signHS(t, devSecret, good(map[string]any{"iss": 1})), ErrMalformed},
		{"aud number", signHS(t, devSecret, good(map[string]any{"aud": 1})), ErrMalformed},
		{"aud array of numbers", signHS(t, devSecret, good(map[string]any{"aud": []any{1}})), ErrMalformed},
		{"exp string", signHS(t, devSecret, good(map[string]any{"exp": "1707696000"})), ErrMalformed},
		{"exp huge", signHS(t, devSecret, good(map[string]any{"exp": 1e300})), ErrMalformed},
		{"exp negative", signHS(t, devSecret, good(map[string]any{"exp": -1})), ErrMalformed},
		{"trial_expires_at not RFC 3339", signHS(t, devSecret, good(map[string]any{"trial_expires_at": "10/02/2024"})), ErrMalformed},
		{"trial_expires_at number", signHS(t, devSecret, good(map[string]any{"trial_expires_at": 1707523200})), ErrMalformed},
		{"claim name in other case", signRawHS256(devSecret, `{"alg":"HS256"}`, `{"sub":"a","iss":"auth.waooaw.com","aud":"waooaw-gateway","EXP":1707696000}`), ErrMalformed},
		{"claim name with Unicode fold", signRawHS256(devSecret, `{"alg":"HS256"}`, `{"ſub":"a","iss":"auth.waooaw.com","aud":"waooaw-gateway","exp":1707696000}`), ErrMalformed},
		{"duplicate claim", signRawHS256(devSecret, `{"alg":"HS256"}`, `{"sub":"a","roles":["customer"],"iss":"auth.waooaw.com","aud":"waooaw-gateway","exp":1707696000,"roles":["admin"]}`), ErrMalformed},
		{"duplicate claim via escape", signRawHS256(devSecret, `{"alg":"HS256"}`, `{"sub":"a","\u0073ub":"b","iss":"auth.waooaw.com","aud":"waooaw-gateway","exp":1707696000}`), ErrMalformed},
		{"header name in other case", signRawHS256(devSecret, `{"ALG":"HS256"}`, payloadJSON), ErrMalformed},
		{"duplicate alg", signRawHS256(devSecret, `{"alg":"RS256","alg":"HS256"}`, payloadJSON), ErrMalformed},
		{"kid with Kelvin sign", signRawHS256(devSecret, `{"alg":"HS256","\u212aid":"x"}`, payloadJSON), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.tok)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", c)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if c != nil {
				t.Error("claims returned with an error")
			}
			t.Log(err)
			for _, part := range strings.Split(tt.tok, ".") {
				if len(part) > 8 && strings.Contains(err.Error(), part) {
					t.Errorf("error message echoes the token: %v", err)
				}
			}
		})
	}
}

// HS256 must not fall back to any JWKS key when no secret is configured,
// which is how RS256/HS256 confusion usually gets in.
func TestHS256WithoutSecret(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{JWKSFile: writeJWKS(t, stdJWKS(k)...)})
	pubDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range [][]byte{pubDER, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), k.rsa.N.Bytes()} {
		if _, err := v.Verify(sign(t, jwt.SigningMethodHS256, key, "rsa-1", claims(nil))); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify error = %v, want ErrInvalid", err)
		}
	}
}

func TestMaxTokenBytes(t *testing.T) {
	tok := signHS(t, devSecret, claims(nil))
	v := newTestVerifier(t, Config{HS256Secret: devSecret, MaxTokenBytes: len(tok)})
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("token at the limit: %v", err)
	}
	v = newTestVerifier(t, Config{HS256Secret: devSecret, MaxTokenBytes: len(tok) - 1})
	if _, err := v.Verify(tok); !errors.Is(err, ErrMalformed) {
		t.Fatalf("token over the limit: %v, want ErrMalformed", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	k := testKeys(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no keys", Config{}},
		{"file and URL", Config{JWKSFile: writeJWKS(t, stdJWKS(k)...), JWKSURL: "https://idp.example/jwks"}},
		{"plain http URL", Config{JWKSURL: "http://idp.example/jwks"}},
		{"URL without host", Config{JWKSURL: "https:///jwks"}},
		{"ftp URL", Config{JWKSURL: "ftp://idp.example/jwks"}},
		{"empty issuer secret", Config{IssuerSecrets: map[string][]byte{"cp.waooaw.com": nil}}},
		{"empty issuer", Config{IssuerSecrets: map[string][]byte{"": devSecret}}},
		{"negative leeway", Config{HS256Secret: devSecret, Leeway: -time.Second}},
		{"negative max bytes", Config{HS256Secret: devSecret, MaxTokenBytes: -1}},
		{"missing JWKS file", Config{JWKSFile: dir + "/absent.json"}},
		{"JWKS with no usable keys", Config{JWKSFile: writeJWKS(t, map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"})}},
		{"JWKS not JSON", Config{JWKSFile: func() string {
			p := dir + "/garbage.json"
			writeFileAtomic(t, p, []byte("not json"))
			return p
		}()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quietLogger()
			if v, err := NewVerifier(t.Context(), tt.cfg); err == nil {
				t.Fatalf("NewVerifier accepted the config: %+v", v)
			}
		})
	}
}

// Secrets are copied so that a caller reusing its buffer cannot change the
// key under a running verifier.
func TestSecretsCopied(t *testing.T) {
	secret := append([]byte(nil), devSecret...)
	v := newTestVerifier(t, Config{HS256Secret: secret})
	tok := signHS(t, devSecret, claims(nil))
	secret[0] ^= 0xff
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify after caller mutated its secret: %v", err)
	}
}

func TestSignHS256(t *testing.T) {
	if _, err := SignHS256(nil, claims(nil)); err == nil {
		t.Error("SignHS256 accepted an empty secret")
	}
	tok, err := SignHS256(devSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := newTestVerifier(t, Config{HS256Secret: devSecret})
	// An empty claim set is well formed but lacks exp.
	if _, err := v.Verify(tok); !errors.Is(err, ErrInvalid) {
		t.Errorf("Verify(empty claims) = %v, want ErrInvalid", err)
	}
}

func TestHeaderCache(t *testing.T) {
	k := testKeys(t)
	v := newTestVerifier(t, Config{HS256Secret: devSecret, JWKSFile: writeJWKS(t, stdJWKS(k)...)})
	cacheLen := func() int {
		m := v.headers.m.Load()
		if m == nil {
			return 0
		}
		return len(*m)
	}

	// Failures never populate the cache, whatever the reason.
	for _, tok := range []string{
		signHS(t, []byte("wrong-secret-wrong-secret-wrong-secret"), claims(nil)),
		signHS(t, devSecret, claims(map[string]any{"exp": testNow.Unix() - 3600})),
		sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa-1", claims(nil)),
		craft(`{"alg":"none"}`, `{"sub":"a","exp":1707696000}`, []byte("x")),
	} {
		if _, err := v.Verify(tok); err == nil {
			t.Fatal("bad token verified")
		}
	}
	if n := cacheLen(); n != 0 {
		t.Fatalf("cache holds %d headers after failures only", n)
	}

	good := signHS(t, devSecret, claims(nil))
	for range 2 {
		if _, err := v.Verify(good); err != nil {
			t.Fatal(err)
		}
	}
	if n := cacheLen(); n != 1 {
		t.Fatalf("cache holds %d headers, want 1", n)
	}
	// A forged token reusing a cached header is still checked in full.
	forged := good[:strings.LastIndexByte(good, '.')+1] + b64u(make([]byte, 32))
	if _, err := v.Verify(forged); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged token with cached header: %v", err)
	}

	for i := range 2 * maxCachedHeaders {
		if _, err := v.Verify(headerVariant(t, k, i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := cacheLen(); n > maxCachedHeaders {
		t.Fatalf("cache grew to %d headers, bound is %d", n, maxCachedHeaders)
	}
}

// headerVariant signs a valid EdDSA token whose header bytes differ per i.
func headerVariant(t *testing.T, k *testKeySet, i int) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(claims(nil)))
	tok.Header["kid"] = "ed-1"
	tok.Header["x-variant"] = i
	s, err := tok.SignedString(k.ed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claimMembers must name exactly the members wireClaims decodes, or the
// case and duplicate checks would miss a claim.
func TestClaimMembersMatchWireClaims(t *testing.T) {
	var tags []string
	rt := reflect.TypeFor[wireClaims]()
	for i := range rt.NumField() {
		tags = append(tags, strings.Split(rt.Field(i).Tag.Get("json"), ",")[0])
	}
	if diff := cmp.Diff(tags, claimMembers); diff != "" {
		t.Errorf("claimMembers (-wireClaims +list):\n%s", diff)
	}
	var htags []string
	ht := reflect.TypeFor[header]()
	for i := range ht.NumField() {
		htags = append(htags, strings.Split(ht.Field(i).Tag.Get("json"), ",")[0])
	}
	if diff := cmp.Diff(htags, headerMembers); diff != "" {
		t.Errorf("headerMembers (-header +list):\n%s", diff)
	}
}

func TestCheckMembers(t *testing.T) {
	known := []string{"sub", "exp"}
	tests := map[string]bool{
		`{}`:                            true,
		` { "sub" : "a" , "exp" : 1 } `: true,
		`{"x":{"sub":1,"sub":2},"y":["exp","exp"],"sub":"a"}`: true,
		`{"s\"ub":"a","sub":"\"sub\"","z":"}"}`:               true,
		`{"x":1,"x":2}`:                                       true,
		`{"a":[{"b":[1,{"c":"]"}]}],"sub":"x","exp":2}`:       true,
		`{"sub":"a","sub":"b"}`:                               false,
		`{"Sub":"a"}`:                                         false,
		`{"exp":1,"x":true,"exp":2}`:                          false,
		`{"x":null,"\u0065xp":1,"exp":1}`:                     false,
		`{"sUB":{"nested":[1,2]}}`:                            false,
	}
	for in, ok := range tests {
		if err := checkMembers([]byte(in), known); (err == nil) != ok {
			t.Errorf("checkMembers(%s) = %v, want ok=%v", in, err, ok)
		}
	}
}
