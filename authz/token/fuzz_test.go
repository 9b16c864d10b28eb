package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func FuzzVerify(f *testing.F) {
	k := testKeys(f)
	v := newTestVerifier(f, Config{HS256Secret: devSecret, JWKSFile: writeJWKS(f, stdJWKS(k)...)})
	for _, s := range []string{
		signHS(f, devSecret, claims(nil)),
		signHS(f, devSecret, claims(map[string]any{"aud": []string{"a", "b"}, "trial_expires_at": "2024-02-10T00:00:00Z", "nbf": seedIat})),
		sign(f, jwt.SigningMethodRS256, k.rsa, "rsa-1", claims(nil)),
		sign(f, jwt.SigningMethodES256, k.ec, "ec-1", claims(nil)),
		sign(f, jwt.SigningMethodEdDSA, k.ed, "ed-1", claims(nil)),
		craft(`{"alg":"none"}`, `{"sub":"a","exp":1707696000}`, []byte("x")),
		craft(`{"alg":"HS256","crit":[]}`, `{"exp":1e999}`, []byte("x")),
		"", ".", "..", "a.b.c", "e30.e30.e30",
	} {
		f.Add(s)
	}
	f.Add(`{"sub":"a","exp":1707696000,"aud":["x"],"roles":["admin"],"governor_agent_id":"g"}`)
	f.Add(`{"user_id":"u","exp":1.7e9,"nbf":0,"iat":1706400000.5,"trial_expires_at":"2024-02-10T00:00:00+05:30"}`)
	f.Fuzz(func(t *testing.T, raw string) {
		checkVerify(t, v, raw)
		// The same input as the claim set of a correctly signed token, so
		// the claim parser and validator see arbitrary JSON too.
		checkVerify(t, v, signRawHS256(devSecret, `{"alg":"HS256","typ":"JWT"}`, raw))
	})
}

func signRawHS256(secret []byte, hdr, payload string) string {
	input := b64u([]byte(hdr)) + "." + b64u([]byte(payload))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64u(m.Sum(nil))
}

func checkVerify(t *testing.T, v *Verifier, raw string) {
	t.Helper()
	c, err := v.Verify(raw)
	if err == nil {
		if c == nil || (c.Subject == "" && c.UserID == "") || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted token yields incomplete claims %+v", c)
		}
		return
	}
	if c != nil {
		t.Fatal("claims returned with an error")
	}
	n := 0
	for _, s := range []error{ErrMissing, ErrMalformed, ErrExpired, ErrInvalid} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q wraps %d sentinels, want exactly 1", err, n)
	}
	if len(raw) >= 16 && strings.Contains(err.Error(), raw) {
		t.Fatalf("error echoes the token: %v", err)
	}
}

func FuzzFromHeaders(f *testing.F) {
	f.Add("Bearer "+jwtA, "", "/", false)
	f.Add("", "access_token, "+jwtA+", chat", "/ws?a=1", true)
	f.Add("", "bearer."+jwtA, "/ws", true)
	f.Add("", "", "/ws?x=1&access_token="+jwtA+"#f", true)
	f.Add("Bearer a, Bearer b", "access_token", "/ws?access%5Ftoken=a&access_token=b", true)
	f.Fuzz(func(t *testing.T, auth, proto, path string, websocket bool) {
		h := map[string]string{}
		if auth != "" {
			h["authorization"] = auth
		}
		if proto != "" {
			h["sec-websocket-protocol"] = proto
		}
		tok, strip, err := FromHeaders(h, websocket, path)
		if err != nil {
			if !errors.Is(err, ErrMissing) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if tok != "" || strip != (Strip{}) {
				t.Fatal("result returned with an error")
			}
			return
		}
		if !isB64Token(tok) {
			t.Fatalf("token %q is not a b64token", tok)
		}
		if !websocket && strip != (Strip{}) {
			t.Fatalf("strip %+v on a plain request", strip)
		}
		if strip.RemoveWebSocketProtocol && strip.WebSocketProtocol != "" {
			t.Fatalf("strip both removes and sets the protocol: %+v", strip)
		}
		if p := strip.WebSocketProtocol; p != "" && p != wsTokenMarker {
			if _, _, found, err := parseWebSocketProtocol(p); found || err != nil {
				t.Fatalf("stripped protocol %q still carries a token (err %v)", p, err)
			}
		}
		if strip.Query {
			if _, found, err := queryToken(StripQueryToken(path)); found || err != nil {
				t.Fatalf("StripQueryToken(%q) left a token (err %v)", path, err)
			}
		}
	})
}
