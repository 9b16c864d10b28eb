package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Remote defaults. The timeout is always bounded because a Check that waits
// on a hung OPA holds an Envoy request for as long.
const (
	DefaultRemoteTimeout  = 250 * time.Millisecond
	DefaultRemoteCacheTTL = 5 * time.Second
	maxResponseBytes      = 1 << 20
)

// RemoteConfig configures a client of an OPA server (OPA_SERVICE_URL).
type RemoteConfig struct {
	// URL is the OPA base URL, e.g. http://opa:8181.
	URL string
	// Timeout bounds each decision request; zero or negative means
	// DefaultRemoteTimeout.
	Timeout time.Duration
	// HTTPClient defaults to a client with keep-alive pooling sized for
	// a busy gateway. Its own Timeout, if any, still applies.
	HTTPClient *http.Client
	// CacheSize as in EngineConfig.
	CacheSize int
	// CacheTTL bounds how long a remote decision is reused, because the
	// server's policy can change without telling us. Zero means
	// DefaultRemoteCacheTTL.
	CacheTTL time.Duration
	// Registerer receives the cache metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Remote asks an OPA server for data.gateway.decision. It is safe for
// concurrent use.
type Remote struct {
	endpoint string
	timeout  time.Duration
	client   *http.Client
	cache    *decisionCache
	metrics  *metrics
}

var _ Evaluator = (*Remote)(nil)

// NewRemote never fails: a bad URL or an unreachable server shows up as
// ErrUnavailable from Decide, where OPA_FAIL_MODE can handle it, instead of
// preventing the gateway from starting.
func NewRemote(cfg RemoteConfig) *Remote {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultRemoteTimeout
	}
	ttl := cfg.CacheTTL
	if ttl <= 0 {
		ttl = DefaultRemoteCacheTTL
	}
	client := cfg.HTTPClient
	if client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 256
		t.MaxIdleConnsPerHost = 256
		client = &http.Client{Transport: t}
	}
	m, err := newMetrics(cfg.Registerer, evaluatorRemote)
	if err != nil {
		log.With("component", "policy").Warn("remote policy metrics not registered", "error", err)
	}
	return &Remote{
		endpoint: strings.TrimRight(cfg.URL, "/") + "/v1/data/" + strings.ReplaceAll(strings.TrimPrefix(DecisionPath, "data."), ".", "/"),
		timeout:  timeout,
		client:   client,
		cache:    newDecisionCache(cfg.CacheSize, ttl),
		metrics:  m,
	}
}

// Decide posts {"input": in} to the OPA data API. Every failure to obtain a
// decision wraps ErrUnavailable.
func (r *Remote) Decide(ctx context.Context, in *Input) (*Decision, error) {
	if in == nil {
		return nil, ErrNilInput
	}
	var buf [keyBufSize]byte
	key := appendKey(buf[:0], in)
	if d, ok := r.cache.get(key); ok {
		r.metrics.cacheHits.Inc()
		return d.clone(), nil
	}
	r.metrics.cacheMisses.Inc()
	d, err := r.query(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.cache.put(key, d)
	return d.clone(), nil
}

type remoteRequest struct {
	Input *Input `json:"input"`
}

type remoteResponse struct {
	Result *Decision `json:"result"`
}

func (r *Remote) query(ctx context.Context, in *Input) (*Decision, error) {
	body, err := json.Marshal(remoteRequest{Input: in})
	if err != nil {
		return nil, fmt.Errorf("encoding input: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying OPA: %w", err)
	}
	defer resp.Body.Close()

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading OPA response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("OPA answered %s: %s", resp.Status, snippet(data))
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("OPA response exceeds %d bytes", maxResponseBytes)
	}
	var out remoteResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decoding OPA response: %w", err)
	}
	if out.Result == nil {
		return nil, fmt.Errorf("OPA has no %s (policy not loaded?)", DecisionPath)
	}
	out.Result.normalize()
	return out.Result, nil
}

// snippet keeps an error message readable and free of a large body.
func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
