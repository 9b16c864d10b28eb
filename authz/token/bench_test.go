package token

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// seedPayload is the seed's test case 1 token: realistic claim count and size.
func seedPayload() map[string]any {
	return map[string]any{
		"sub": "customer-456", "email": "john@acmecorp.com", "roles": []string{"customer"},
		"is_governor": false, "agent_id": "abc123", "trial_mode": true,
		"trial_expires_at": "2024-02-10T00:00:00Z", "iat": seedIat, "exp": seedExp,
	}
}

func benchVerify(b *testing.B, tok string) {
	k := testKeys(b)
	v := newTestVerifier(b, Config{HS256Secret: devSecret, JWKSFile: writeJWKS(b, stdJWKS(k)...)})
	if _, err := v.Verify(tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyHS256(b *testing.B) {
	benchVerify(b, signHS(b, devSecret, seedPayload()))
}

func BenchmarkVerifyRS256(b *testing.B) {
	benchVerify(b, sign(b, jwt.SigningMethodRS256, testKeys(b).rsa, "rsa-1", seedPayload()))
}

func BenchmarkVerifyES256(b *testing.B) {
	benchVerify(b, sign(b, jwt.SigningMethodES256, testKeys(b).ec, "ec-1", seedPayload()))
}

func BenchmarkVerifyEdDSA(b *testing.B) {
	benchVerify(b, sign(b, jwt.SigningMethodEdDSA, testKeys(b).ed, "ed-1", seedPayload()))
}

func BenchmarkFromHeaders(b *testing.B) {
	h := map[string]string{"authorization": "Bearer " + signHS(b, devSecret, seedPayload())}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := FromHeaders(h, false, "/api/agents/abc123/execute"); err != nil {
			b.Fatal(err)
		}
	}
}
