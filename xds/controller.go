package xds

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/translate"
)

// Source produces route rows and tells when they may have changed.
type Source interface {
	// Load returns every row and the active route version.
	Load(ctx context.Context) (rows []model.Row, activeVersion int, err error)
	// Watch blocks until ctx ends, calling changed whenever the rows may
	// have changed, including after a reconnect (notifications may have
	// been missed while disconnected).
	Watch(ctx context.Context, changed func()) error
}

// NodeGroup is the snapshot key: every Envoy gets the same configuration.
const NodeGroup = "gateway"

// ControllerConfig wires a Controller.
type ControllerConfig struct {
	Source    Source
	Cache     cachev3.SnapshotCache
	Model     model.Options
	Translate translate.Options
	Logger    *slog.Logger
	Metrics   *Metrics

	// Debounce waits for a quiet period after a change so a burst of
	// statements builds one snapshot; MaxDelay bounds that wait.
	Debounce time.Duration // default 10ms
	MaxDelay time.Duration // default 250ms
	// Resync rebuilds periodically in case a notification was lost.
	Resync time.Duration // default 30s
}

// Controller keeps the snapshot cache in step with the Source.
type Controller struct {
	cfg ControllerConfig
	log *slog.Logger

	syncMu     sync.Mutex // one Sync at a time, so an older table is never published last
	mu         sync.Mutex // guards the fields below
	version    string
	rejections []model.Rejection
	lastErr    error
	ready      chan struct{}
	readyOnce  sync.Once
}

// NewController fills defaults.
func NewController(cfg ControllerConfig) *Controller {
	if cfg.Debounce == 0 {
		cfg.Debounce = 10 * time.Millisecond
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 250 * time.Millisecond
	}
	if cfg.Resync == 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "xds"), ready: make(chan struct{})}
}

// Ready is closed once the first snapshot is set.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Status is what operators (and /readyz) want to know.
type Status struct {
	Version    string
	Rejections []model.Rejection
	LastError  error
}

func (c *Controller) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Version: c.version, Rejections: append([]model.Rejection(nil), c.rejections...), LastError: c.lastErr}
}

// Run builds the first snapshot, then rebuilds on every change until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	changes := make(chan struct{}, 1)
	notify := func() {
		select {
		case changes <- struct{}{}:
		default: // a rebuild is already pending; it will see this change too
		}
	}
	go func() {
		if err := c.cfg.Source.Watch(ctx, notify); err != nil && ctx.Err() == nil {
			c.log.Error("route watch stopped", "err", err)
		}
	}()

	// The first build retries quickly: Envoy has nothing to serve until it works.
	backoff := 100 * time.Millisecond
	for {
		if err := c.Sync(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			return nil
		} else {
			c.log.Warn("initial route load failed, retrying", "err", err, "in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}

	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
		case <-changes:
			c.debounce(ctx, changes)
		}
		if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("route sync failed; last good snapshot keeps serving", "err", err)
		}
	}
}

// debounce returns once no change arrived for Debounce, or MaxDelay passed.
func (c *Controller) debounce(ctx context.Context, changes <-chan struct{}) {
	deadline := time.NewTimer(c.cfg.MaxDelay)
	defer deadline.Stop()
	quiet := time.NewTimer(c.cfg.Debounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-quiet.C:
			return
		case <-changes:
			quiet.Reset(c.cfg.Debounce)
		}
	}
}

// Sync loads, validates, translates and publishes once. On any error the
// cache is left as it was.
func (c *Controller) Sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	start := time.Now()
	err := c.sync(ctx)
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
	if err != nil {
		c.cfg.Metrics.syncs.WithLabelValues("error").Inc()
	}
	c.cfg.Metrics.syncSeconds.Observe(time.Since(start).Seconds())
	return err
}

func (c *Controller) sync(ctx context.Context) error {
	rows, active, err := c.cfg.Source.Load(ctx)
	if err != nil {
		return fmt.Errorf("load routes: %w", err)
	}
	m, rejections := model.Build(rows, active, c.cfg.Model)
	res, dropped, err := translate.Translate(m, c.cfg.Translate)
	if err != nil {
		return fmt.Errorf("translate: %w", err)
	}
	rejections = append(rejections, dropped...)
	snap, err := NewSnapshot(res)
	if err != nil {
		return err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.reportRejections(rejections)
	c.cfg.Metrics.routes.Set(float64(len(m.Routes) - len(dropped)))
	c.cfg.Metrics.activeVersion.Set(float64(active))
	if snap.GetVersion(resourcev3.ListenerType) == c.version {
		c.cfg.Metrics.syncs.WithLabelValues("unchanged").Inc()
		return nil
	}
	if len(m.Routes) == 0 {
		// Legal (everything answers 404), but usually a version switch to
		// a version nobody filled.
		c.log.Warn("active route version serves no routes", "active_route_version", active)
	}
	if err := c.cfg.Cache.SetSnapshot(ctx, NodeGroup, snap); err != nil {
		return fmt.Errorf("set snapshot: %w", err)
	}
	c.log.Info("published snapshot", "version", snap.GetVersion(resourcev3.ListenerType), "previous", c.version,
		"active_route_version", active, "routes", len(m.Routes)-len(dropped), "clusters", len(res.Clusters), "rejected_rows", len(rejections))
	c.version = snap.GetVersion(resourcev3.ListenerType)
	c.cfg.Metrics.syncs.WithLabelValues("published").Inc()
	c.cfg.Metrics.lastPublish.SetToCurrentTime()
	c.readyOnce.Do(func() { close(c.ready) })
	return nil
}

// reportRejections logs each rejection once per distinct reason, not on
// every resync, and keeps the gauge current.
func (c *Controller) reportRejections(rej []model.Rejection) {
	seen := make(map[string]bool, len(c.rejections))
	for _, r := range c.rejections {
		seen[r.Error()] = true
	}
	for _, r := range rej {
		if !seen[r.Error()] {
			c.log.Error("route row rejected", "row_id", r.RowID, "route_version", r.Version, "field", r.Field, "reason", r.Reason)
			c.cfg.Metrics.rejectionsTotal.WithLabelValues(r.Field).Inc()
		}
	}
	c.rejections = rej
	c.cfg.Metrics.rejectedRows.Set(float64(len(rej)))
}
