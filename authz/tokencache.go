package authz

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/waooaw/policygateway/authz/token"
)

// verifiedTokens remembers tokens that passed verification, so a client
// that sends the same token on every request pays for the signature and the
// JSON decode once. An entry lives until the token expires or maxAge passes,
// whichever is first: maxAge bounds how long a key removed from the JWKS
// keeps working for tokens already seen.
type verifiedTokens struct {
	inner  TokenVerifier
	now    func() time.Time
	maxAge time.Duration
	max    int64

	m sync.Map // raw token -> *cachedClaims
	n atomic.Int64
}

type cachedClaims struct {
	claims *token.Claims
	until  time.Time
}

func newVerifiedTokens(inner TokenVerifier, now func() time.Time) *verifiedTokens {
	return &verifiedTokens{inner: inner, now: now, maxAge: time.Minute, max: 4096}
}

// Verify returns shared, read-only claims.
func (c *verifiedTokens) Verify(raw string) (*token.Claims, error) {
	now := c.now()
	if v, ok := c.m.Load(raw); ok {
		e := v.(*cachedClaims)
		if now.Before(e.until) {
			return e.claims, nil
		}
		c.m.Delete(raw)
		c.n.Add(-1)
	}
	claims, err := c.inner.Verify(raw)
	if err != nil {
		return nil, err
	}
	until := now.Add(c.maxAge)
	if claims.ExpiresAt.Before(until) {
		until = claims.ExpiresAt
	}
	if c.n.Add(1) > c.max {
		// Many distinct live tokens: start over rather than track recency.
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(raw, &cachedClaims{claims: claims, until: until})
	return claims, nil
}
