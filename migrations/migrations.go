// Package migrations holds the gateway's PostgreSQL schema as numbered goose
// SQL files compiled into the binary, so gatewayd, gatewayctl and the tests
// all apply exactly the same schema without reading files at run time.
//
// The schema: gateway_routes (the seed's ROUTING-001 table plus defaulted
// extra columns), gateway_route_settings (the active blue/green version),
// NOTIFY triggers on both for gateway_routes_changed, agent_budget_tracking
// (BUDGET-001) and the monthly-partitioned, append-only audit_logs.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// Up applies every pending migration and does nothing when the database is
// current. Concurrent callers (several gatewayd replicas starting together)
// are serialised by a PostgreSQL advisory lock, so each migration runs once.
func Up(ctx context.Context, dsn string) (err error) {
	db, err := open(dsn)
	if err != nil {
		return err
	}
	defer closeInto(db, &err)

	// Poll every second rather than goose's five: a replica waiting for
	// another's migrations should start as soon as they are done. The
	// total wait stays at goose's five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: advisory lock: %w", err)
	}
	p, err := newProvider(db, goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrations: up: %w", err)
	}
	log := slog.Default().With("component", "migrations")
	if len(results) == 0 {
		log.InfoContext(ctx, "no pending migrations")
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied", "file", path.Base(r.Source.Path), "duration", r.Duration)
	}
	return nil
}

// Status writes one line per known migration to w, saying whether it has
// been applied (and when) or is still pending.
func Status(ctx context.Context, dsn string, w io.Writer) (err error) {
	db, err := open(dsn)
	if err != nil {
		return err
	}
	defer closeInto(db, &err)

	// No locker here: a status query must not queue behind a long
	// migration that holds the advisory lock.
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	status, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("migrations: status: %w", err)
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MIGRATION\tSTATE\tAPPLIED AT")
	for _, s := range status {
		applied := "-"
		if s.State == goose.StateApplied {
			applied = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", path.Base(s.Source.Path), s.State, applied)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("migrations: write status: %w", err)
	}
	return nil
}

func open(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("migrations: parse database URL: %w", err)
	}
	// OpenDB takes the parsed config directly, so no driver name has to be
	// registered in database/sql's global table.
	return stdlib.OpenDB(*cfg), nil
}

func newProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	// Go migrations registered globally by some other package must never
	// leak into this schema.
	opts = append(opts, goose.WithDisableGlobalRegistry(true))
	p, err := goose.NewProvider(goose.DialectPostgres, db, files, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

func closeInto(c io.Closer, err *error) {
	if cerr := c.Close(); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("migrations: close database: %w", cerr))
	}
}
