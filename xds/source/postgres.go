// Package source loads gateway_routes rows from PostgreSQL or from a YAML
// file in the same row shape, and reports when they may have changed.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waooaw/policygateway/xds/model"
)

// NotifyChannel is the channel the migration's trigger notifies on COMMIT.
const NotifyChannel = "gateway_routes_changed"

// Postgres reads routes from gateway_routes and the active version from
// gateway_route_settings.
type Postgres struct {
	pool *pgxpool.Pool
	dsn  string
	log  *slog.Logger
}

// NewPostgres uses pool for loads and a dedicated connection (from dsn) for LISTEN.
func NewPostgres(pool *pgxpool.Pool, dsn string, log *slog.Logger) *Postgres {
	return &Postgres{pool: pool, dsn: dsn, log: log.With("component", "route-source", "source", "postgres")}
}

// Nullable columns are coalesced to their column defaults, except is_active:
// a NULL there is not an explicit "yes", so the row does not serve.
const loadRoutesSQL = `
SELECT id, route_version, source_path, http_method, target_backend, target_service_url,
       COALESCE(middleware_stack, '[]'::jsonb)::text,
       COALESCE(requires_governor_role, false),
       COALESCE(trial_mode_sandbox_url, ''),
       COALESCE(rate_limit_per_hour, 1000),
       COALESCE(requires_opa_policy, ''),
       COALESCE(requires_mobile_device_token, false),
       COALESCE(permission, ''),
       requires_reason, websocket, timeout_ms
FROM gateway_routes
WHERE is_active IS TRUE
ORDER BY id`

// Load reads the rows and the active version in one snapshot-consistent
// transaction, so a version switch committed together with new rows is
// never seen half-done.
func (p *Postgres) Load(ctx context.Context) ([]model.Row, int, error) {
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only

	var active int
	if err := tx.QueryRow(ctx, `SELECT active_version FROM gateway_route_settings`).Scan(&active); err != nil {
		return nil, 0, fmt.Errorf("read active version from gateway_route_settings: %w", err)
	}
	rows, err := tx.Query(ctx, loadRoutesSQL)
	if err != nil {
		return nil, 0, fmt.Errorf("query gateway_routes: %w", err)
	}
	var out []model.Row
	for rows.Next() {
		var r model.Row
		var stack string
		if err := rows.Scan(&r.ID, &r.RouteVersion, &r.SourcePath, &r.HTTPMethod, &r.TargetBackend, &r.TargetServiceURL,
			&stack, &r.RequiresGovernorRole, &r.TrialModeSandboxURL, &r.RateLimitPerHour, &r.RequiresOPAPolicy,
			&r.RequiresMobileDeviceToken, &r.Permission, &r.RequiresReason, &r.Websocket, &r.TimeoutMS); err != nil {
			return nil, 0, fmt.Errorf("scan gateway_routes row: %w", err)
		}
		r.MiddlewareStack = []byte(stack)
		r.IsActive = true
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read gateway_routes: %w", err)
	}
	return out, active, nil
}

// Watch LISTENs on a dedicated connection and reconnects with backoff after
// any failure (a PostgreSQL restart, a network cut). Every (re)connect calls
// changed, since notifications sent while disconnected are lost.
func (p *Postgres) Watch(ctx context.Context, changed func()) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listen(ctx, changed, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("route LISTEN connection lost, reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (p *Postgres) listen(ctx context.Context, changed, connected func()) error {
	conn, err := pgx.Connect(ctx, p.dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	p.log.Info("listening for route changes", "channel", NotifyChannel)
	changed()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return fmt.Errorf("wait for notification: %w", err)
		}
		p.log.Debug("route change notified", "payload", n.Payload)
		changed()
	}
}
