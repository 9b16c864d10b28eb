package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/golang-jwt/jwt/v5"
)

// verifyKey is a public key together with the only algorithm it may verify.
type verifyKey struct {
	alg    string
	method jwt.SigningMethod
	pub    any
}

// keySet is immutable once published, so Verify reads it without locks.
type keySet struct {
	keys map[string]verifyKey
	sum  [sha256.Size]byte // of the source document, to skip no-op reloads
}

// jwk holds the members of RFC 7517/7518/8037 keys that we read. d and k are
// read only to notice secrets that must never be published.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	Alg    string   `json:"alg"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	D      string   `json:"d"`
	K      string   `json:"k"`
}

type skippedKey struct {
	kid    string
	reason error
}

const (
	minRSABits = 2048
	// Verification cost grows with the modulus; nobody signs JWTs with more.
	maxRSABits = 8192
)

// parseJWKS returns the usable keys by kid and the reason each other key was
// left out. One bad key does not spoil the set: providers publish keys for
// other consumers (encryption keys, other algorithms) beside ours.
func parseJWKS(data []byte) (map[string]verifyKey, []skippedKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := unmarshalObject(data, &set); err != nil {
		return nil, nil, fmt.Errorf("JWKS: %w", err)
	}
	if set.Keys == nil {
		return nil, nil, errors.New(`JWKS: no "keys" array`)
	}
	keys := make(map[string]verifyKey, len(set.Keys))
	var skipped []skippedKey
	for i, raw := range set.Keys {
		var j jwk
		if err := unmarshalObject(raw, &j); err != nil {
			skipped = append(skipped, skippedKey{kid: fmt.Sprintf("#%d", i), reason: err})
			continue
		}
		k, err := parseKey(&j)
		if err != nil {
			skipped = append(skipped, skippedKey{kid: j.Kid, reason: err})
			continue
		}
		if _, dup := keys[j.Kid]; dup {
			// Which of two keys a kid means is undecidable; the first wins so
			// a set that appends a key cannot displace an existing one.
			skipped = append(skipped, skippedKey{kid: j.Kid, reason: errors.New("duplicate kid")})
			continue
		}
		keys[j.Kid] = k
	}
	return keys, skipped, nil
}

func parseKey(j *jwk) (verifyKey, error) {
	if j.Kid == "" {
		return verifyKey{}, errors.New("no kid: tokens could not select it")
	}
	if j.Use != "" && j.Use != "sig" {
		return verifyKey{}, fmt.Errorf("use %q is not sig", j.Use)
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return verifyKey{}, errors.New("key_ops does not include verify")
	}
	if j.D != "" || j.K != "" {
		// A published private or symmetric key is compromised; trusting it
		// would let anyone who read the JWKS sign tokens.
		return verifyKey{}, errors.New("contains private or symmetric key material")
	}
	var (
		k   verifyKey
		err error
	)
	switch j.Kty {
	case "RSA":
		k.alg, k.method = "RS256", jwt.SigningMethodRS256
		k.pub, err = rsaKey(j)
	case "EC":
		if j.Crv != "P-256" {
			return verifyKey{}, fmt.Errorf("unsupported EC curve %q", j.Crv)
		}
		k.alg, k.method = "ES256", jwt.SigningMethodES256
		k.pub, err = ecKey(j)
	case "OKP":
		if j.Crv != "Ed25519" {
			return verifyKey{}, fmt.Errorf("unsupported OKP curve %q", j.Crv)
		}
		k.alg, k.method = "EdDSA", jwt.SigningMethodEdDSA
		k.pub, err = edKey(j)
	default:
		return verifyKey{}, fmt.Errorf("unsupported kty %q", j.Kty)
	}
	if err != nil {
		return verifyKey{}, err
	}
	if j.Alg != "" && j.Alg != k.alg {
		return verifyKey{}, fmt.Errorf("unsupported alg %q for kty %s", j.Alg, j.Kty)
	}
	return k, nil
}

func rsaKey(j *jwk) (*rsa.PublicKey, error) {
	nb, err := jwkBytes(j.N, "n")
	if err != nil {
		return nil, err
	}
	eb, err := jwkBytes(j.E, "e")
	if err != nil {
		return nil, err
	}
	if len(eb) > 4 {
		return nil, errors.New("RSA exponent too large")
	}
	var e int64
	for _, b := range eb {
		e = e<<8 | int64(b)
	}
	if e < 3 || e%2 == 0 || e > math.MaxInt32 {
		return nil, fmt.Errorf("RSA exponent %d not acceptable", e)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits outside [%d, %d]", bits, minRSABits, maxRSABits)
	}
	return &rsa.PublicKey{N: n, E: int(e)}, nil
}

func ecKey(j *jwk) (*ecdsa.PublicKey, error) {
	x, err := jwkBytes(j.X, "x")
	if err != nil {
		return nil, err
	}
	y, err := jwkBytes(j.Y, "y")
	if err != nil {
		return nil, err
	}
	// RFC 7518 §6.2.1.2 requires full-length coordinates.
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("P-256 coordinates must be 32 bytes")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	// Rejects points off the curve, which invalid-curve attacks rely on.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("P-256 point: %w", err)
	}
	return pub, nil
}

func edKey(j *jwk) (ed25519.PublicKey, error) {
	x, err := jwkBytes(j.X, "x")
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("Ed25519 key must be %d bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// jwkBytes tolerates '=' padding: the JWKS comes from configuration we trust,
// and a few publishers pad.
func jwkBytes(s, member string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("member %q missing", member)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("member %q: %w", member, err)
	}
	return b, nil
}

// refresh loads the JWKS and publishes it. On any error the published set is
// left as it was.
func (v *Verifier) refresh(ctx context.Context) (changed bool, err error) {
	v.refreshAttempts.Add(1)
	defer func() {
		if err != nil {
			v.refreshFailures.Add(1)
		}
	}()
	data, err := v.fetch(ctx)
	if err != nil {
		return false, err
	}
	sum := sha256.Sum256(data)
	if cur := v.keys.Load(); cur != nil && cur.keys != nil && cur.sum == sum {
		return false, nil
	}
	keys, skipped, err := parseJWKS(data)
	for _, s := range skipped {
		v.log.Warn("JWKS key skipped", "kid", quote(s.kid), "reason", s.reason)
	}
	if err != nil {
		return false, err
	}
	if len(keys) == 0 {
		// An empty set is far likelier a broken publisher than a real
		// revocation of every key.
		return false, errors.New("JWKS has no usable keys")
	}
	v.keys.Store(&keySet{keys: keys, sum: sum})
	v.log.Info("JWKS loaded", "source", v.jwksSource(), "keys", len(keys), "skipped", len(skipped))
	return true, nil
}

func (v *Verifier) jwksSource() string {
	if v.jwksFile != "" {
		return v.jwksFile
	}
	if u, err := url.Parse(v.jwksURL); err == nil {
		return u.Redacted()
	}
	return "url"
}

func (v *Verifier) fetch(ctx context.Context) ([]byte, error) {
	if v.jwksFile != "" {
		f, err := os.Open(v.jwksFile)
		if err != nil {
			return nil, fmt.Errorf("JWKS file: %w", err)
		}
		defer f.Close()
		return readLimited(f)
	}
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.jwksURL, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("JWKS fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS fetch: status %s", resp.Status)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("JWKS read: %w", err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	return data, nil
}

// checkJWKSURL demands TLS because whoever can alter the JWKS in transit can
// mint tokens; plain http is left for loopback development servers.
func checkJWKSURL(u *url.URL) error {
	if u.Host == "" {
		return errors.New("JWKS URL has no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return errors.New("JWKS URL must be https unless it is loopback")
	default:
		return fmt.Errorf("JWKS URL scheme %q not supported", u.Scheme)
	}
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("JWKS fetch: too many redirects")
	}
	return checkJWKSURL(req.URL)
}

// watchFile watches the JWKS file's directory rather than the file: atomic
// replacement (rename) and Kubernetes ConfigMap symlink swaps never modify
// the original inode, so a watch on the file itself would go quiet.
func (v *Verifier) watchFile() *fsnotify.Watcher {
	if v.jwksFile == "" {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		v.log.Warn("JWKS file watch unavailable; relying on interval refresh", "error", err)
		return nil
	}
	if err := w.Add(filepath.Dir(v.jwksFile)); err != nil {
		w.Close()
		v.log.Warn("JWKS file watch unavailable; relying on interval refresh", "error", err)
		return nil
	}
	return w
}

// run is the only goroutine that refreshes, so refreshes never overlap.
func (v *Verifier) run(ctx context.Context, w *fsnotify.Watcher) {
	defer close(v.done)
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	tick := time.NewTicker(v.refreshEvery)
	defer tick.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var lastKidRefresh time.Time

	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			v.refreshLogged(ctx, "interval")
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			// Any event in the directory may be ours (symlink swaps name
			// other entries); the content hash makes a spurious reload free.
			debounce.Reset(fileDebounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			v.log.Warn("JWKS file watch error", "error", err)
		case <-debounce.C:
			v.refreshLogged(ctx, "file change")
		case <-v.kidMiss:
			if !lastKidRefresh.IsZero() && time.Since(lastKidRefresh) < kidMissRefreshEvery {
				continue
			}
			lastKidRefresh = time.Now()
			v.refreshLogged(ctx, "unknown kid")
		}
	}
}

func (v *Verifier) refreshLogged(ctx context.Context, trigger string) {
	if _, err := v.refresh(ctx); err != nil && ctx.Err() == nil {
		v.log.Warn("JWKS refresh failed; keeping previous keys", "trigger", trigger, "error", err)
	}
}
