package source_test

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waooaw/policygateway/e2e/testenv"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
)

// The tests below stop and restart the package's PostgreSQL cluster, which
// every test in this binary shares: none of them may use t.Parallel.
func TestMain(m *testing.M) { testenv.Main(m) }

// deadline bounds every wait for something asynchronous; it is a ceiling for
// slow CI machines, never a performance assertion.
const deadline = 30 * time.Second

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test against a real PostgreSQL; skipped with -short")
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// migrated returns a Postgres source on a fresh migrated database, the pool
// it loads through and the DSN.
func migrated(t *testing.T) (*source.Postgres, *pgxpool.Pool, string) {
	t.Helper()
	skipShort(t)
	dsn := testenv.MigratedPostgres(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return source.NewPostgres(pool, dsn, quiet), pool, dsn
}

func exec(ctx context.Context, t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func seed(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	sql, err := os.ReadFile("../../migrations/testdata/seed_appendix.sql")
	if err != nil {
		t.Fatal(err)
	}
	exec(ctx, t, pool, string(sql))
}

// The seed's appendix SQL, run verbatim, is the platform's real route table.
func TestPostgresLoadSeed(t *testing.T) {
	src, pool, _ := migrated(t)
	ctx := testCtx(t)
	seed(ctx, t, pool)

	rows, active, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 13 || active != 1 {
		t.Fatalf("%d rows, active version %d; want 13 rows and version 1", len(rows), active)
	}
	for i, r := range rows {
		if r.ID != int64(i+1) {
			t.Errorf("row %d has id %d: rows must come in id order", i, r.ID)
		}
	}
	// Row 4 uses almost every seed column.
	want := model.Row{
		ID: 4, RouteVersion: 1, SourcePath: "/api/agents/{id}/execute", HTTPMethod: "POST", TargetBackend: "cp",
		TargetServiceURL:    "https://cp.demo.waooaw.com/api/agents/{id}/execute",
		MiddlewareStack:     json.RawMessage(`["auth", "policy", "budget", "audit"]`),
		TrialModeSandboxURL: "https://sandbox.demo.waooaw.com/api/agents/{id}/execute",
		RateLimitPerHour:    500, RequiresOPAPolicy: "trial/sandbox_route", IsActive: true, TimeoutMS: 15000,
	}
	if diff := cmp.Diff(want, rows[3]); diff != "" {
		t.Errorf("row 4 (-want +got):\n%s", diff)
	}
	if !rows[7].RequiresGovernorRole {
		t.Errorf("row 8 (/api/governor/approve) lost requires_governor_role")
	}

	m, rej := model.Build(rows, active, model.Options{})
	if len(rej) != 0 {
		t.Errorf("seed rows rejected: %v", rej)
	}
	if len(m.Routes) != 13 {
		t.Errorf("%d routes serve, want 13", len(m.Routes))
	}
}

// Rows written by hand in psql carry NULLs the seed's schema allows. Each
// one must read as its column default, except is_active: NULL there is not an
// explicit "yes", so the row must not serve.
func TestPostgresNullColumns(t *testing.T) {
	src, pool, _ := migrated(t)
	ctx := testCtx(t)

	const insert = `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url`
	tests := []struct {
		name   string
		sql    string // completes insert and must RETURN id
		loaded bool
		check  func(*testing.T, model.Row)
	}{
		{
			name:   "NULL middleware_stack",
			sql:    `, middleware_stack) VALUES (1, '/a', 'GET', 'cp', 'http://cp/a', NULL) RETURNING id`,
			loaded: true,
			check: func(t *testing.T, r model.Row) {
				if string(r.MiddlewareStack) != "[]" {
					t.Errorf("middleware_stack = %s, want []", r.MiddlewareStack)
				}
			},
		},
		{
			name:   "NULL rate_limit_per_hour",
			sql:    `, rate_limit_per_hour) VALUES (1, '/b', 'GET', 'cp', 'http://cp/b', NULL) RETURNING id`,
			loaded: true,
			check: func(t *testing.T, r model.Row) {
				if r.RateLimitPerHour != model.DefaultRateLimitPerHour {
					t.Errorf("rate_limit_per_hour = %d, want %d", r.RateLimitPerHour, model.DefaultRateLimitPerHour)
				}
			},
		},
		{
			name: "NULL flags and optional text",
			sql: `, requires_governor_role, requires_mobile_device_token, trial_mode_sandbox_url, requires_opa_policy, permission)
			      VALUES (1, '/c', 'GET', 'cp', 'http://cp/c', NULL, NULL, NULL, NULL, NULL) RETURNING id`,
			loaded: true,
			check: func(t *testing.T, r model.Row) {
				if r.RequiresGovernorRole || r.RequiresMobileDeviceToken || r.TrialModeSandboxURL != "" || r.RequiresOPAPolicy != "" || r.Permission != "" {
					t.Errorf("NULLs did not read as defaults: %+v", r)
				}
			},
		},
		{
			name:   "omitted columns take their defaults",
			sql:    `) VALUES (1, '/d', 'GET', 'cp', 'http://cp/d') RETURNING id`,
			loaded: true,
			check: func(t *testing.T, r model.Row) {
				want := model.Row{ID: r.ID, RouteVersion: 1, SourcePath: "/d", HTTPMethod: "GET", TargetBackend: "cp",
					TargetServiceURL: "http://cp/d", MiddlewareStack: json.RawMessage("[]"), RateLimitPerHour: 1000,
					IsActive: true, TimeoutMS: 15000}
				if diff := cmp.Diff(want, r); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			},
		},
		{
			name:   "NULL is_active",
			sql:    `, is_active) VALUES (1, '/e', 'GET', 'cp', 'http://cp/e', NULL) RETURNING id`,
			loaded: false,
		},
		{
			name:   "false is_active",
			sql:    `, is_active) VALUES (1, '/f', 'GET', 'cp', 'http://cp/f', false) RETURNING id`,
			loaded: false,
		},
	}
	ids := make([]int64, len(tests))
	for i, tc := range tests {
		if err := pool.QueryRow(ctx, insert+tc.sql).Scan(&ids[i]); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	rows, _, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]model.Row{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := byID[ids[i]]
			if ok != tc.loaded {
				t.Fatalf("row %d loaded = %v, want %v", ids[i], ok, tc.loaded)
			}
			if !ok {
				return
			}
			if !r.IsActive {
				t.Error("a loaded row must be active")
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
	m, rej := model.Build(rows, 1, model.Options{})
	if len(rej) != 0 || len(m.Routes) != 4 {
		t.Errorf("built %d routes with rejections %v, want the 4 loaded rows to serve", len(m.Routes), rej)
	}
}

// Switching blue/green is one UPDATE of the settings row.
func TestPostgresActiveVersion(t *testing.T) {
	src, pool, _ := migrated(t)
	ctx := testCtx(t)
	for _, v := range []int{2, 1, 7} {
		exec(ctx, t, pool, `UPDATE gateway_route_settings SET active_version = $1`, v)
		_, active, err := src.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if active != v {
			t.Errorf("active version %d after switching to %d", active, v)
		}
	}
}

// Without the settings table there is no active version to serve: that is a
// load error (the last good snapshot keeps serving), not "version 0".
func TestPostgresLoadWithoutSchema(t *testing.T) {
	skipShort(t)
	dsn := testenv.Postgres(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, _, err = source.NewPostgres(pool, dsn, quiet).Load(testCtx(t))
	if err == nil {
		t.Fatal("Load on an empty database succeeded")
	}
}

// counter records changed() calls so a test can wait for the next one.
type counter struct {
	n      atomic.Int64
	signal chan struct{}
}

func newCounter() *counter { return &counter{signal: make(chan struct{}, 1)} }

func (c *counter) changed() {
	c.n.Add(1)
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// waitAbove waits until more than n calls were seen and returns the count.
func (c *counter) waitAbove(t *testing.T, n int64, what string) int64 {
	t.Helper()
	timeout := time.After(deadline)
	for {
		if got := c.n.Load(); got > n {
			return got
		}
		select {
		case <-c.signal:
		case <-timeout:
			t.Fatalf("changed was not called after %s", what)
		}
	}
}

// watch runs src.Watch until the test ends and waits for its first call,
// which means the LISTEN is in place.
func watch(t *testing.T, src *source.Postgres) *counter {
	t.Helper()
	c := newCounter()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Watch(ctx, c.changed) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
		case <-time.After(deadline):
			t.Error("Watch did not return after its context ended")
		}
	})
	c.waitAbove(t, 0, "connecting")
	return c
}

func TestPostgresWatch(t *testing.T) {
	src, pool, _ := migrated(t)
	ctx := testCtx(t)
	c := watch(t, src)

	n := c.n.Load()
	exec(ctx, t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
	                    VALUES (1, '/a', 'GET', 'cp', 'http://cp/a')`)
	n = c.waitAbove(t, n, "a committed INSERT")

	exec(ctx, t, pool, `UPDATE gateway_route_settings SET active_version = 2`)
	n = c.waitAbove(t, n, "UPDATE gateway_route_settings")

	exec(ctx, t, pool, `DELETE FROM gateway_routes`)
	n = c.waitAbove(t, n, "a committed DELETE")

	// Notifications go out at COMMIT, so gatewayd never loads a table that
	// another transaction is still changing. A committed statement from
	// another session is the barrier: PostgreSQL delivers notifications in
	// commit order, so once the barrier's has arrived anything the open
	// transaction had sent early would have arrived too.
	for _, end := range []string{"COMMIT", "ROLLBACK"} {
		t.Run(end, func(t *testing.T) {
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
			if _, err := tx.Exec(ctx, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
			                           VALUES (1, '/b', 'GET', 'cp', 'http://cp/b')`); err != nil {
				t.Fatal(err)
			}
			exec(ctx, t, pool, `UPDATE gateway_route_settings SET active_version = active_version`)
			n = c.waitAbove(t, n, "the barrier UPDATE")
			time.Sleep(200 * time.Millisecond) // room for a stray notification to show up
			if got := c.n.Load(); got != n {
				t.Fatalf("changed called %d times for an uncommitted INSERT", got-n)
			}
			if end == "ROLLBACK" {
				if err := tx.Rollback(ctx); err != nil {
					t.Fatal(err)
				}
				exec(ctx, t, pool, `UPDATE gateway_route_settings SET active_version = active_version`)
				n = c.waitAbove(t, n, "the second barrier UPDATE")
				time.Sleep(200 * time.Millisecond)
				if got := c.n.Load(); got != n {
					t.Fatalf("changed called %d extra times for a rolled-back INSERT", got-n)
				}
				return
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			n = c.waitAbove(t, n, "COMMIT")
		})
	}
}

// Notifications sent while the LISTEN connection was down are lost, so the
// reconnect itself must count as a change, and the new connection must hear
// later ones.
func TestPostgresWatchReconnects(t *testing.T) {
	src, _, dsn := migrated(t)
	ctx := testCtx(t)
	c := watch(t, src)

	n := c.n.Load()
	testenv.RestartPostgres(t)
	n = c.waitAbove(t, n, "PostgreSQL restarted")

	// A fresh connection: the pool's were cut by the restart.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
	                             VALUES (1, '/after-restart', 'GET', 'cp', 'http://cp/x')`); err != nil {
		t.Fatal(err)
	}
	c.waitAbove(t, n, "an INSERT after the reconnect")
}
