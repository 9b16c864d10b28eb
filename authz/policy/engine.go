package policy

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/waooaw/policygateway/policies"
)

// EngineConfig configures the embedded evaluator.
type EngineConfig struct {
	// Dir is a policy directory on disk, watched and hot-reloaded. Empty
	// means the policies compiled into the binary, which never change.
	Dir string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// CacheSize bounds the decision cache: 0 means DefaultCacheSize, a
	// negative value disables the cache.
	CacheSize int
	// Registerer receives the engine's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Engine evaluates the policies in process. It is safe for concurrent use.
type Engine struct {
	log     *slog.Logger
	fsys    fs.FS
	size    int
	metrics *metrics

	// current is swapped whole on reload, so an in-flight Decide finishes
	// on the policy and cache it started with and never caches a decision
	// of the old policy into the new cache.
	current atomic.Pointer[snapshot]
	lastErr atomic.Pointer[error]

	reloadMu    sync.Mutex // serialises reloads; Decide never takes it
	evaluations atomic.Uint64

	stopWatch func()
	watchDone chan struct{}
}

var _ Evaluator = (*Engine)(nil)

type snapshot struct {
	query  rego.PreparedEvalQuery
	cache  *decisionCache
	digest [32]byte
}

// NewEngine compiles the policies and, for a Dir, starts watching it until
// ctx is done or Close is called. A policy set that does not compile, or in
// which data.gateway.decision is undefined, is an error: there is no older
// policy to fall back on yet.
func NewEngine(ctx context.Context, cfg EngineConfig) (*Engine, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(cfg.Registerer, evaluatorEngine)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		log:     log.With("component", "policy"),
		fsys:    policies.FS,
		size:    cfg.CacheSize,
		metrics: m,
	}
	if cfg.Dir != "" {
		e.fsys = os.DirFS(cfg.Dir)
	}
	set, err := loadPolicySet(e.fsys, false)
	if err != nil {
		return nil, fmt.Errorf("loading policies: %w", err)
	}
	snap, err := e.compile(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("compiling policies: %w", err)
	}
	e.current.Store(snap)

	if cfg.Dir != "" {
		if err := e.watch(ctx, cfg.Dir); err != nil {
			return nil, fmt.Errorf("watching %s: %w", cfg.Dir, err)
		}
	}
	e.log.Info("policy loaded", "source", source(cfg.Dir), "modules", len(set.modules), "digest", fmt.Sprintf("%x", snap.digest[:6]))
	return e, nil
}

func source(dir string) string {
	if dir == "" {
		return "embedded"
	}
	return dir
}

// Close stops watching the policy directory. Decide keeps working.
func (e *Engine) Close() error {
	if e.stopWatch != nil {
		e.stopWatch()
		<-e.watchDone
	}
	return nil
}

// LastError is the error of the most recent reload attempt, or nil if it
// succeeded. While it is non-nil the engine serves the previous policy.
func (e *Engine) LastError() error {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Decide evaluates data.gateway.decision for in, from the cache when the
// identical input was decided before under the current policy.
func (e *Engine) Decide(ctx context.Context, in *Input) (*Decision, error) {
	if in == nil {
		return nil, ErrNilInput
	}
	snap := e.current.Load()
	var buf [keyBufSize]byte
	key := appendKey(buf[:0], in)
	if d, ok := snap.cache.get(key); ok {
		e.metrics.cacheHits.Inc()
		return d.clone(), nil
	}
	e.metrics.cacheMisses.Inc()
	d, err := e.evaluate(ctx, snap, in)
	if err != nil {
		return nil, err
	}
	snap.cache.put(key, d)
	return d.clone(), nil
}

func (e *Engine) evaluate(ctx context.Context, snap *snapshot, in *Input) (*Decision, error) {
	// OPA only polls for cancellation during long evaluations; a Check whose
	// caller already gave up should not spend an evaluation at all.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	e.evaluations.Add(1)
	d, err := evalDecision(ctx, snap.query, in.astValue())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return d, nil
}

func evalDecision(ctx context.Context, q rego.PreparedEvalQuery, input ast.Value) (*Decision, error) {
	rs, err := q.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", DecisionPath, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("%s is undefined", DecisionPath)
	}
	term, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("%s: unexpected result type %T", DecisionPath, rs[0].Expressions[0].Value)
	}
	d, err := decisionFromValue(term.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DecisionPath, err)
	}
	d.normalize()
	return d, nil
}

// keepTerm hands rego's result through as the AST term, so decisionFromValue
// can read it without an intermediate map[string]any.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// compile prepares the decision query over set and proves it yields a
// decision, so that a reload which drops or breaks gateway.rego is rejected
// like a syntax error rather than turning every request into an error.
func (e *Engine) compile(ctx context.Context, set *policySet) (*snapshot, error) {
	opts := []func(*rego.Rego){
		rego.Query(DecisionPath),
		rego.Store(inmem.NewFromObjectWithOpts(set.data, inmem.OptReturnASTValuesOnRead(true))),
		rego.SetRegoVersion(ast.RegoV1),
		rego.GenerateJSON(keepTerm),
	}
	for _, m := range set.modules {
		opts = append(opts, rego.ParsedModule(m))
	}
	q, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := evalDecision(ctx, q, ast.NewObject()); err != nil {
		return nil, fmt.Errorf("policy yields no decision for an empty input: %w", err)
	}
	return &snapshot{query: q, cache: newDecisionCache(e.size, 0), digest: set.digest}, nil
}

// Reload re-reads the policy source and swaps it in if it compiled. On
// failure the previous policy keeps serving, and the error is logged,
// counted and kept for LastError. A source whose content did not change is
// not recompiled and keeps its cache.
func (e *Engine) Reload(ctx context.Context) error {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()

	err := e.reload(ctx)
	if err != nil {
		e.lastErr.Store(&err)
		e.metrics.reloadErrors.Inc()
		e.log.Error("policy reload rejected; previous policy keeps serving", "error", err)
		return err
	}
	e.lastErr.Store(nil)
	return nil
}

func (e *Engine) reload(ctx context.Context) error {
	set, err := loadPolicySet(e.fsys, false)
	if err != nil {
		return fmt.Errorf("loading policies: %w", err)
	}
	if set.digest == e.current.Load().digest {
		return nil
	}
	snap, err := e.compile(ctx, set)
	if err != nil {
		return fmt.Errorf("compiling policies: %w", err)
	}
	e.current.Store(snap)
	e.metrics.reloads.Inc()
	e.log.Info("policy reloaded", "modules", len(set.modules), "digest", fmt.Sprintf("%x", snap.digest[:6]))
	return nil
}
