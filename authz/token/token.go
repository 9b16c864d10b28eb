// Package token turns the bearer JWT of a request into verified Claims.
//
// It sits on the hot path of every ext_authz Check, so Verify does no network
// I/O and no locking: asymmetric keys live in an immutable key set swapped
// atomically by a background goroutine that refreshes the JWKS.
//
// Decisions a caller must know:
//
//   - Every failure wraps exactly one of ErrMissing, ErrMalformed, ErrExpired or
//     ErrInvalid; map those (errors.Is) to problem codes and log the wrapped
//     message, which never contains the token.
//   - ErrExpired is returned only for a token whose signature, issuer and
//     audience are good, so telling the client to refresh is safe.
//   - Algorithms are pinned per key. HS256 is verified only with configured
//     secrets, selected by the token's (not yet verified) iss: a dedicated
//     IssuerSecrets entry is exclusive, otherwise HS256Secret. RS256, ES256 and
//     EdDSA are verified only with the JWKS key named by kid, whose algorithm
//     must equal the header's. Nothing else, including "none", is accepted.
//   - Issuer checking is on when Config.Issuer is set; the accepted issuers are
//     then Config.Issuer plus every IssuerSecrets key, and iss is required.
//     Without Config.Issuer the per-issuer secrets still bind each portal's
//     tokens to its own secret.
//   - A token must carry exp and a subject (sub or user_id). Claim types are
//     strict (roles an array of non-empty strings, is_governor a bool,
//     trial_expires_at RFC 3339), and a claim repeated or spelt in another
//     case ("EXP") makes the token malformed rather than ambiguous.
//   - NewVerifier fails when the JWKS cannot be loaded at start; later refresh
//     failures keep the last good key set and log a warning.
//   - A token whose kid is unknown fails, and schedules one refresh (at most
//     one per 30s); the next request with that kid succeeds once it is loaded.
package token

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

var (
	// ErrMissing means the request carried no token at all.
	ErrMissing = errors.New("token missing")
	// ErrMalformed means the token (or the header carrying it) cannot be
	// parsed: size, segments, base64, JSON, claim types.
	ErrMalformed = errors.New("token malformed")
	// ErrExpired means an otherwise valid token is past its exp.
	ErrExpired = errors.New("token expired")
	// ErrInvalid covers every other rejection: signature, algorithm, key id,
	// issuer, audience, nbf, iat, missing required claims.
	ErrInvalid = errors.New("token invalid")
)

const (
	defaultJWKSRefresh   = 5 * time.Minute
	defaultLeeway        = 30 * time.Second
	defaultMaxTokenBytes = 8192

	// An attacker can mint unknown kids at will; this bounds how often they
	// can make us hit the JWKS source.
	kidMissRefreshEvery = 30 * time.Second
	jwksFetchTimeout    = 10 * time.Second
	maxJWKSBytes        = 1 << 20
	// Editors and ConfigMap updates produce bursts of events; reading once
	// after the burst avoids parsing half-written files.
	fileDebounce = 100 * time.Millisecond

	// Error messages quote attacker-controlled values (kid, iss, alg); cap
	// them so a large token cannot inflate logs.
	maxQuoted = 64
)

// Claims is the verified identity of a request.
type Claims struct {
	Subject         string // sub, or user_id when sub is absent
	UserID          string // user_id, or sub when user_id is absent
	Email           string
	Roles           []string
	IsGovernor      bool // is_governor, or admin role with a governor_agent_id
	GovernorAgentID string
	AgentID         string
	CustomerID      string
	TrialMode       bool
	TrialExpiresAt  time.Time // zero when absent
	Issuer          string
	Audience        []string
	IssuedAt        time.Time // zero when absent
	ExpiresAt       time.Time
	NotBefore       time.Time // zero when absent
}

// HasRole reports whether c carries role r.
func (c *Claims) HasRole(r string) bool {
	return slices.Contains(c.Roles, r)
}

// Config configures a Verifier. Zero values take the documented defaults.
type Config struct {
	// HS256Secret (JWT_SECRET) verifies HS256 tokens whose iss has no
	// dedicated secret in IssuerSecrets.
	HS256Secret []byte
	// IssuerSecrets maps iss to that issuer's own HS256 secret.
	IssuerSecrets map[string][]byte
	// JWKSFile or JWKSURL (not both) supplies RS256/ES256/EdDSA keys.
	// JWKSURL must be https unless it points at a loopback host.
	JWKSFile string
	JWKSURL  string
	// JWKSRefresh is how often the JWKS is reloaded (default 5m).
	JWKSRefresh time.Duration
	// Issuer, when set, turns on issuer checking: iss must be Issuer or a
	// key of IssuerSecrets.
	Issuer string
	// Audience, when set, must be among the token's aud values.
	Audience string
	// Leeway tolerates clock skew for exp, nbf and iat (default 30s).
	Leeway time.Duration
	// MaxTokenBytes bounds the raw token before any decoding (default 8192).
	MaxTokenBytes int
	// Now is the clock for exp/nbf/iat (default time.Now).
	Now func() time.Time
	// Logger receives key-set warnings (default slog.Default()).
	Logger *slog.Logger
	// HTTPClient fetches JWKSURL (default: 10s timeout, https-only redirects).
	HTTPClient *http.Client
}

// Verifier verifies bearer tokens. It is safe for concurrent use.
type Verifier struct {
	hsDefault  *hs256Key
	hsByIssuer map[string]*hs256Key
	issuers    map[string]struct{} // nil: iss not checked
	audience   string
	leeway     time.Duration
	maxBytes   int
	now        func() time.Time
	log        *slog.Logger
	headers    headerCache

	jwksFile     string
	jwksURL      string
	client       *http.Client
	refreshEvery time.Duration
	keys         atomic.Pointer[keySet]
	kidMiss      chan struct{} // nil without a JWKS
	done         chan struct{} // closed when the refresher stops
	// Counted for tests and future metrics; the refresher is their only writer.
	refreshAttempts atomic.Uint64
	refreshFailures atomic.Uint64
}

// NewVerifier validates cfg, loads the JWKS if one is configured and starts
// the background refresher, which runs until ctx is done.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	v := &Verifier{
		audience:     cfg.Audience,
		leeway:       cfg.Leeway,
		maxBytes:     cfg.MaxTokenBytes,
		now:          cfg.Now,
		log:          cfg.Logger,
		jwksFile:     cfg.JWKSFile,
		jwksURL:      cfg.JWKSURL,
		client:       cfg.HTTPClient,
		refreshEvery: cfg.JWKSRefresh,
		done:         make(chan struct{}),
	}
	if v.leeway == 0 {
		v.leeway = defaultLeeway
	}
	if v.leeway < 0 {
		return nil, fmt.Errorf("token config: negative leeway %s", v.leeway)
	}
	if v.maxBytes == 0 {
		v.maxBytes = defaultMaxTokenBytes
	}
	if v.maxBytes < 0 {
		return nil, fmt.Errorf("token config: negative MaxTokenBytes %d", v.maxBytes)
	}
	if v.refreshEvery == 0 {
		v.refreshEvery = defaultJWKSRefresh
	}
	if v.refreshEvery < 0 {
		return nil, fmt.Errorf("token config: negative JWKSRefresh %s", v.refreshEvery)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	v.log = v.log.With("component", "token")

	// Copies: the caller may reuse its slices, and a secret changing under a
	// running verifier would be a silent key change.
	if len(cfg.HS256Secret) > 0 {
		v.hsDefault = newHS256Key(bytes.Clone(cfg.HS256Secret))
		v.warnWeakSecret("HS256Secret", cfg.HS256Secret)
	}
	if len(cfg.IssuerSecrets) > 0 {
		v.hsByIssuer = make(map[string]*hs256Key, len(cfg.IssuerSecrets))
		for iss, s := range cfg.IssuerSecrets {
			if iss == "" {
				return nil, errors.New("token config: IssuerSecrets has an empty issuer")
			}
			if len(s) == 0 {
				return nil, fmt.Errorf("token config: empty secret for issuer %q", iss)
			}
			v.hsByIssuer[iss] = newHS256Key(bytes.Clone(s))
			v.warnWeakSecret("IssuerSecrets["+iss+"]", s)
		}
	}
	if cfg.Issuer != "" {
		v.issuers = map[string]struct{}{cfg.Issuer: {}}
		for iss := range v.hsByIssuer {
			v.issuers[iss] = struct{}{}
		}
	}

	if v.jwksFile != "" && v.jwksURL != "" {
		return nil, errors.New("token config: set JWKSFile or JWKSURL, not both")
	}
	if v.jwksURL != "" {
		u, err := url.Parse(v.jwksURL)
		if err != nil {
			return nil, fmt.Errorf("token config: JWKSURL: %w", err)
		}
		if err := checkJWKSURL(u); err != nil {
			return nil, fmt.Errorf("token config: %w", err)
		}
		if v.client == nil {
			v.client = &http.Client{Timeout: jwksFetchTimeout, CheckRedirect: checkRedirect}
		}
	}
	hasJWKS := v.jwksFile != "" || v.jwksURL != ""
	if !hasJWKS && v.hsDefault == nil && v.hsByIssuer == nil {
		return nil, errors.New("token config: no keys: set HS256Secret, IssuerSecrets, JWKSFile or JWKSURL")
	}
	if !hasJWKS {
		close(v.done)
		return v, nil
	}

	v.keys.Store(&keySet{})
	if _, err := v.refresh(ctx); err != nil {
		return nil, fmt.Errorf("token: initial JWKS load: %w", err)
	}
	watcher := v.watchFile()
	v.kidMiss = make(chan struct{}, 1)
	go v.run(ctx, watcher)
	return v, nil
}

func (v *Verifier) warnWeakSecret(name string, s []byte) {
	// RFC 7518 §3.2 asks for a key at least as long as the hash. Refusing
	// would break dev setups, so this only warns.
	if len(s) < 32 {
		v.log.Warn("HS256 secret shorter than 32 bytes", "secret", name, "bytes", len(s))
	}
}

// The header members we act on. Anything else (typ, jku, x5u, jwk...) is
// ignored: keys come only from configuration, never from the token.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

var b64 = base64.RawURLEncoding.Strict()

// Verify checks raw (the token without "Bearer ") and returns its claims.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	if raw == "" {
		return nil, ErrMissing
	}
	if len(raw) > v.maxBytes {
		return nil, fmt.Errorf("%w: token is %d bytes, limit is %d", ErrMalformed, len(raw), v.maxBytes)
	}
	d1 := strings.IndexByte(raw, '.')
	d2 := strings.LastIndexByte(raw, '.')
	if d1 <= 0 || d2 == d1 || d2 == d1+1 || d2 == len(raw)-1 || strings.IndexByte(raw[d1+1:d2], '.') >= 0 {
		return nil, fmt.Errorf("%w: want three non-empty dot-separated segments", ErrMalformed)
	}

	h, cached := v.headers.get(raw[:d1])
	hl := 0
	if !cached {
		hl = b64.DecodedLen(d1)
	}
	// One buffer holds the decoded segments, a byte copy of the signing input
	// and room for a MAC, so decoding and HS256 cost one allocation.
	pl, sl := b64.DecodedLen(d2-d1-1), b64.DecodedLen(len(raw)-d2-1)
	buf := make([]byte, hl+pl+sl+d2+sha256.Size)
	scratch := buf[hl+pl+sl:]
	if !cached {
		hdrJSON, err := decodeSegment(buf[:hl], raw[:d1], "header")
		if err != nil {
			return nil, err
		}
		if err := unmarshalObject(hdrJSON, &h); err != nil {
			return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
		}
		if err := checkMembers(hdrJSON, headerMembers); err != nil {
			return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
		}
		if len(h.Crit) > 0 {
			// RFC 7515 §4.1.11: we understand no extensions, so any crit is fatal.
			return nil, fmt.Errorf("%w: crit header not supported", ErrInvalid)
		}
	}
	payload, err := decodeSegment(buf[hl:hl+pl], raw[d1+1:d2], "payload")
	if err != nil {
		return nil, err
	}
	sig, err := decodeSegment(buf[hl+pl:hl+pl+sl], raw[d2+1:], "signature")
	if err != nil {
		return nil, err
	}

	// Claims are parsed before the signature check because HS256 picks its
	// secret by iss; they are parsed only this once.
	p := new(parsed)
	if err := unmarshalObject(payload, &p.w); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if err := checkMembers(payload, claimMembers); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}

	if err := v.verifySignature(&h, p.w.Iss, raw[:d2], sig, scratch); err != nil {
		return nil, err
	}
	if err := v.validate(&p.w); err != nil {
		return nil, err
	}
	if err := p.fill(); err != nil {
		return nil, err
	}
	if !cached {
		v.headers.put(raw[:d1], h)
	}
	return &p.c, nil
}

func decodeSegment(dst []byte, seg, name string) ([]byte, error) {
	n, err := b64.Decode(dst, []byte(seg))
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64url: %w", ErrMalformed, name, err)
	}
	return dst[:n], nil
}

// unmarshalObject refuses JSON that is not an object, so "null" cannot decode
// into an all-zero header or claim set.
func unmarshalObject(data []byte, v any) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(data, v)
}

// scratch has room for the signing input plus a SHA-256 sum.
func (v *Verifier) verifySignature(h *header, iss, signingInput string, sig, scratch []byte) error {
	switch h.Alg {
	case "HS256":
		// Only configured secrets: a JWKS public key is never an HMAC key,
		// which is what defeats RS256/HS256 confusion.
		key, ok := v.hsByIssuer[iss]
		if !ok {
			key = v.hsDefault
		}
		if key == nil {
			return fmt.Errorf("%w: no HS256 secret for issuer %q", ErrInvalid, quote(iss))
		}
		input := scratch[:copy(scratch, signingInput)]
		if !key.verify(input, sig, scratch[len(input):]) {
			return fmt.Errorf("%w: HS256 signature mismatch", ErrInvalid)
		}
		return nil
	case "RS256", "ES256", "EdDSA":
		ks := v.keys.Load()
		if ks == nil {
			return fmt.Errorf("%w: alg %s needs a JWKS, none configured", ErrInvalid, h.Alg)
		}
		if h.Kid == "" {
			return fmt.Errorf("%w: %s token has no kid", ErrInvalid, h.Alg)
		}
		k, ok := ks.keys[h.Kid]
		if !ok {
			v.requestRefresh()
			return fmt.Errorf("%w: unknown kid %q", ErrInvalid, quote(h.Kid))
		}
		if k.alg != h.Alg {
			return fmt.Errorf("%w: kid %q is pinned to %s, token says %s", ErrInvalid, quote(h.Kid), k.alg, h.Alg)
		}
		if err := k.method.Verify(signingInput, sig, k.pub); err != nil {
			return fmt.Errorf("%w: %s signature: %w", ErrInvalid, k.alg, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: alg %q not allowed", ErrInvalid, quote(h.Alg))
	}
}

// requestRefresh never blocks: the hot path only leaves a note for the
// refresher, which applies the rate limit.
func (v *Verifier) requestRefresh() {
	select {
	case v.kidMiss <- struct{}{}:
	default:
	}
}

func quote(s string) string {
	if len(s) <= maxQuoted {
		return s
	}
	return s[:maxQuoted] + "..."
}
