package authz

import (
	"errors"
	"testing"
	"time"

	"github.com/waooaw/policygateway/authz/token"
)

// fakeVerifier accepts tokens named in valid, expiring at exp.
type fakeVerifier struct {
	calls int
	exp   time.Time
	now   *time.Time
}

func (f *fakeVerifier) Verify(raw string) (*token.Claims, error) {
	f.calls++
	if raw != "good" {
		return nil, token.ErrInvalid
	}
	if !f.now.Before(f.exp) {
		return nil, token.ErrExpired
	}
	return &token.Claims{UserID: "u", ExpiresAt: f.exp}, nil
}

func TestVerifiedTokens(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		exp       time.Duration // token lifetime from start
		second    time.Duration // when the second request comes
		wantCalls int
		wantErr   error
	}{
		{name: "repeat within the minute is cached", exp: time.Hour, second: 30 * time.Second, wantCalls: 1},
		{name: "after maxAge the token is verified again", exp: time.Hour, second: 61 * time.Second, wantCalls: 2},
		{name: "a cached token still expires on time", exp: 10 * time.Second, second: 10 * time.Second, wantCalls: 2, wantErr: token.ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := start
			f := &fakeVerifier{exp: start.Add(tc.exp), now: &now}
			c := newVerifiedTokens(f, func() time.Time { return now })
			if _, err := c.Verify("good"); err != nil {
				t.Fatal(err)
			}
			now = start.Add(tc.second)
			_, err := c.Verify("good")
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("second Verify: %v, want %v", err, tc.wantErr)
			}
			if f.calls != tc.wantCalls {
				t.Errorf("inner verifier called %d times, want %d", f.calls, tc.wantCalls)
			}
		})
	}
	t.Run("failures are never cached", func(t *testing.T) {
		now := start
		f := &fakeVerifier{exp: start.Add(time.Hour), now: &now}
		c := newVerifiedTokens(f, func() time.Time { return now })
		for range 3 {
			if _, err := c.Verify("bad"); !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("got %v", err)
			}
		}
		if f.calls != 3 {
			t.Errorf("inner verifier called %d times, want 3", f.calls)
		}
	})
}
