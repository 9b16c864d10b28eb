package migrations_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/waooaw/policygateway/e2e/testenv"
	"github.com/waooaw/policygateway/migrations"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestUpIsIdempotentAndStatusReportsIt(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := testenv.Postgres(t)
	files, err := filepath.Glob("*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files found: %v", err)
	}

	steps := []struct {
		name  string
		up    bool
		state string
	}{
		{name: "fresh database", up: false, state: "pending"},
		{name: "first up", up: true, state: "applied"},
		{name: "second up", up: true, state: "applied"},
	}
	for _, step := range steps {
		if step.up {
			if err := migrations.Up(ctx, dsn); err != nil {
				t.Fatalf("%s: Up: %v", step.name, err)
			}
		}
		var out bytes.Buffer
		if err := migrations.Status(ctx, dsn, &out); err != nil {
			t.Fatalf("%s: Status: %v", step.name, err)
		}
		for _, f := range files {
			line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f) + `\s+(\S+)`).FindStringSubmatch(out.String())
			if line == nil || line[1] != step.state {
				t.Errorf("%s: status of %s is %v, want %s; full status:\n%s", step.name, f, line, step.state, out.String())
			}
		}
	}
}

// Replicas of gatewayd may all migrate on start; the advisory lock must
// make that safe.
func TestConcurrentUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := testenv.Postgres(t)

	const replicas = 8
	errs := make(chan error, replicas)
	for range replicas {
		go func() { errs <- migrations.Up(ctx, dsn) }()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Up: %v", err)
		}
	}
	var settingsRows int
	if err := connect(ctx, t, dsn).QueryRow(ctx, `SELECT count(*) FROM gateway_route_settings`).Scan(&settingsRows); err != nil || settingsRows != 1 {
		t.Errorf("gateway_route_settings has %d rows (%v), want 1", settingsRows, err)
	}
}

func TestDownThenUpAgain(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := testenv.MigratedPostgres(t)

	// The embedded files are not exported; the same files on disk let the
	// test drive goose's Down, which the package deliberately does not offer.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("."), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	conn := connect(ctx, t, dsn)
	rows, _ := conn.Query(ctx, `
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')
		   AND c.relname NOT LIKE 'goose_db_version%'
		UNION ALL
		SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'`)
	leftovers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(leftovers) > 0 {
		t.Errorf("after migrating down, still present: %v", leftovers)
	}
	if err := migrations.Up(ctx, dsn); err != nil {
		t.Fatalf("up after down: %v", err)
	}
}

// The seed's appendix SQL must run unchanged, so the seed's own columns,
// types and defaults are pinned here column by column.
func TestGatewayRoutesSchemaMatchesSeed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))

	type column struct {
		name, dataType, nullable string
		dflt                     *string
	}
	str := func(s string) *string { return &s }
	want := []column{
		// The seed's ROUTING-001 columns.
		{"id", "integer", "NO", str("nextval('gateway_routes_id_seq'::regclass)")},
		{"route_version", "integer", "NO", nil},
		{"source_path", "text", "NO", nil},
		{"http_method", "text", "NO", nil},
		{"target_backend", "text", "NO", nil},
		{"target_service_url", "text", "NO", nil},
		{"middleware_stack", "jsonb", "YES", str("'[]'::jsonb")},
		{"requires_governor_role", "boolean", "YES", str("false")},
		{"trial_mode_sandbox_url", "text", "YES", nil},
		{"rate_limit_per_hour", "integer", "YES", str("1000")},
		{"requires_opa_policy", "text", "YES", nil},
		{"requires_mobile_device_token", "boolean", "YES", str("false")},
		{"is_active", "boolean", "YES", str("true")},
		{"created_at", "timestamp without time zone", "YES", str("now()")},
		// Ours, each with a default.
		{"permission", "text", "YES", nil},
		{"requires_reason", "boolean", "NO", str("false")},
		{"websocket", "boolean", "NO", str("false")},
		{"timeout_ms", "integer", "NO", str("15000")},
		{"updated_at", "timestamp without time zone", "NO", str("now()")},
	}
	rows, _ := conn.Query(ctx, `
		SELECT column_name, data_type, is_nullable, column_default
		  FROM information_schema.columns
		 WHERE table_schema = current_schema() AND table_name = 'gateway_routes'
		 ORDER BY ordinal_position`)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.name, &c.dataType, &c.nullable, &c.dflt)
		return c, err
	})
	if err != nil {
		t.Fatal(err)
	}
	show := func(cs []column) string {
		var b strings.Builder
		for _, c := range cs {
			d := "<none>"
			if c.dflt != nil {
				d = *c.dflt
			}
			b.WriteString(c.name + " " + c.dataType + " nullable=" + c.nullable + " default=" + d + "\n")
		}
		return b.String()
	}
	if show(got) != show(want) {
		t.Errorf("gateway_routes columns:\n%s\nwant:\n%s", show(got), show(want))
	}

	wantIndexes := map[string]string{
		"gateway_routes_pkey":            "CREATE UNIQUE INDEX gateway_routes_pkey ON public.gateway_routes USING btree (id)",
		"idx_gateway_routes_active":      "CREATE INDEX idx_gateway_routes_active ON public.gateway_routes USING btree (is_active, route_version)",
		"idx_gateway_routes_path_method": "CREATE INDEX idx_gateway_routes_path_method ON public.gateway_routes USING btree (source_path, http_method)",
	}
	rows, _ = conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'gateway_routes'`)
	gotIndexes := map[string]string{}
	var name, def string
	if _, err := pgx.ForEachRow(rows, []any{&name, &def}, func() error { gotIndexes[name] = def; return nil }); err != nil {
		t.Fatal(err)
	}
	for n, d := range wantIndexes {
		if gotIndexes[n] != d {
			t.Errorf("index %s = %q, want %q", n, gotIndexes[n], d)
		}
	}
	// Anything more, notably a unique index on (version, path, method),
	// would turn the translator's conflict reports into INSERT failures.
	for n := range gotIndexes {
		if _, ok := wantIndexes[n]; !ok {
			t.Errorf("unexpected index %s: %s", n, gotIndexes[n])
		}
	}
}

func TestSeedAppendixInsertRunsVerbatim(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))

	if _, err := conn.Exec(ctx, readFile(t, "testdata/seed_appendix.sql")); err != nil {
		t.Fatalf("seed appendix INSERT: %v", err)
	}
	var total, defaulted int
	err := conn.QueryRow(ctx, `
		SELECT count(*),
		       count(*) FILTER (WHERE is_active
		                          AND created_at IS NOT NULL
		                          AND requires_mobile_device_token = false
		                          AND permission IS NULL
		                          AND requires_reason = false
		                          AND websocket = false
		                          AND timeout_ms = 15000
		                          AND updated_at IS NOT NULL)
		  FROM gateway_routes`).Scan(&total, &defaulted)
	if err != nil {
		t.Fatal(err)
	}
	if total != 13 || defaulted != 13 {
		t.Errorf("after the appendix INSERT: %d rows, %d with every default filled; want 13 and 13", total, defaulted)
	}
}

// The INSERT in the seed's §3.2 is an excerpt: its fifth row ends in a comma
// followed by "-- ... 8 more routes" and a lone semicolon. As printed it is
// a syntax error; its five rows are fine once the dangling comma goes.
func TestSeedSection32Excerpt(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))
	excerpt := readFile(t, "testdata/seed_section_3_2.sql")

	_, err := conn.Exec(ctx, excerpt)
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42601" {
		t.Fatalf("verbatim §3.2 excerpt: err = %v, want a syntax error (42601)", err)
	}

	head, _, found := strings.Cut(excerpt, "-- ... 8 more routes")
	head = strings.TrimRight(head, " \n")
	if !found || !strings.HasSuffix(head, ",") {
		t.Fatalf("testdata no longer looks like the seed's §3.2 excerpt:\n%s", excerpt)
	}
	repaired := strings.TrimSuffix(head, ",") + ";"
	tag, err := conn.Exec(ctx, repaired)
	if err != nil {
		t.Fatalf("§3.2 excerpt with its trailing comma replaced: %v", err)
	}
	if tag.RowsAffected() != 5 {
		t.Errorf("inserted %d rows, want 5", tag.RowsAffected())
	}
}

func TestRouteUpdatedAtFollowsUpdates(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))

	exec(ctx, t, conn, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
		VALUES (1, '/x', 'GET', 'cp', 'http://cp')`)
	// Even an UPDATE that writes updated_at itself gets the real time.
	exec(ctx, t, conn, `UPDATE gateway_routes SET timeout_ms = 5000, updated_at = '2000-01-01'`)
	var fresh bool
	if err := conn.QueryRow(ctx, `SELECT updated_at > now() - interval '1 hour' FROM gateway_routes`).Scan(&fresh); err != nil {
		t.Fatal(err)
	}
	if !fresh {
		t.Error("updated_at was not set by the trigger")
	}
}

func TestRouteSettingsHoldsExactlyOneRow(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))

	var active int
	if err := conn.QueryRow(ctx, `SELECT active_version FROM gateway_route_settings`).Scan(&active); err != nil || active != 1 {
		t.Fatalf("active_version = %d, %v; want 1", active, err)
	}
	tests := []struct {
		name, sql, code string
	}{
		{"second row", `INSERT INTO gateway_route_settings (id, active_version) VALUES (true, 2)`, "23505"},
		{"false key", `INSERT INTO gateway_route_settings (id, active_version) VALUES (false, 2)`, "23514"},
	}
	for _, tt := range tests {
		_, err := conn.Exec(ctx, tt.sql)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != tt.code {
			t.Errorf("%s: err = %v, want SQLSTATE %s", tt.name, err, tt.code)
		}
	}
}

func TestChangesNotifyAtCommit(t *testing.T) {
	t.Parallel()
	const insertRoute = `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
		VALUES (2, '/a', 'GET', 'cp', 'http://cp'), (2, '/b', 'GET', 'cp', 'http://cp')`
	tests := []struct {
		name    string
		setup   string   // committed before listening
		stmts   []string // run in one transaction
		payload string   // "" when no notification is expected
		commit  bool
	}{
		{name: "route insert", stmts: []string{insertRoute}, payload: "gateway_routes:INSERT", commit: true},
		{name: "active version switch", stmts: []string{`UPDATE gateway_route_settings SET active_version = 2`},
			payload: "gateway_route_settings:UPDATE", commit: true},
		{name: "route delete", setup: insertRoute, stmts: []string{`DELETE FROM gateway_routes WHERE route_version = 2`},
			payload: "gateway_routes:DELETE", commit: true},
		{name: "route truncate", setup: insertRoute, stmts: []string{`TRUNCATE gateway_routes`},
			payload: "gateway_routes:TRUNCATE", commit: true},
		// Identical payloads within a transaction are folded into one, so
		// a bulk edit wakes gatewayd once.
		{name: "many statements one notification", stmts: []string{insertRoute, insertRoute, insertRoute},
			payload: "gateway_routes:INSERT", commit: true},
		{name: "rolled back", stmts: []string{insertRoute}, commit: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			dsn := testenv.MigratedPostgres(t)
			listener, writer := connect(ctx, t, dsn), connect(ctx, t, dsn)
			if tt.setup != "" {
				exec(ctx, t, writer, tt.setup)
			}
			exec(ctx, t, listener, "LISTEN gateway_routes_changed")

			tx, err := writer.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			for _, s := range tt.stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			if n := waitNotification(ctx, listener, 300*time.Millisecond); n != nil {
				t.Fatalf("notification %q before COMMIT", n.Payload)
			}
			if tt.commit {
				err = tx.Commit(ctx)
			} else {
				err = tx.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}

			if tt.payload != "" {
				n := waitNotification(ctx, listener, 10*time.Second)
				if n == nil {
					t.Fatal("no notification after COMMIT")
				}
				if n.Channel != "gateway_routes_changed" || n.Payload != tt.payload {
					t.Errorf("notification %s %q, want gateway_routes_changed %q", n.Channel, n.Payload, tt.payload)
				}
			}
			if n := waitNotification(ctx, listener, 300*time.Millisecond); n != nil {
				t.Errorf("unexpected further notification %q", n.Payload)
			}
		})
	}
}

func TestBudgetTrackingDefaults(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))

	var spend, capUSD string
	err := conn.QueryRow(ctx, `
		INSERT INTO agent_budget_tracking (agent_id, month)
		VALUES ('6f1c1c1e-3b8e-4a57-9d1e-2f4a2b9a0c11', '2024-01')
		RETURNING total_spend_usd::text, monthly_cap_usd::text`).Scan(&spend, &capUSD)
	if err != nil {
		t.Fatal(err)
	}
	if spend != "0.00" || capUSD != "30.00" {
		t.Errorf("defaults: spend %s, cap %s; want 0.00 and 30.00", spend, capUSD)
	}
	_, err = conn.Exec(ctx, `INSERT INTO agent_budget_tracking (agent_id, month) VALUES ('6f1c1c1e-3b8e-4a57-9d1e-2f4a2b9a0c11', '2024-01')`)
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "23505" {
		t.Errorf("second row for the same agent and month: err = %v, want a unique violation", err)
	}
}

func TestAuditLogsPartitionsAndRetention(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))
	now := time.Now().UTC()
	monthly := func(months int) string { return now.AddDate(0, months, 1-now.Day()).Format("audit_logs_y2006m01") }
	current, future, expired := monthly(0), monthly(36), monthly(-96)

	partitions := func() []string {
		t.Helper()
		rows, _ := conn.Query(ctx, `SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'audit_logs'::regclass ORDER BY 1`)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	want := []string{"audit_logs_default", current, monthly(1), monthly(2)}
	slices.Sort(want)
	if got := partitions(); !slices.Equal(got, want) {
		t.Fatalf("partitions after migrating: %v, want %v", got, want)
	}

	insert := func(createdAt string) (partition string, id int64) {
		t.Helper()
		err := conn.QueryRow(ctx, `
			INSERT INTO audit_logs (created_at, correlation_id, causation_id, method, path, decision, hash)
			VALUES (`+createdAt+`, 'corr', 'cause', 'GET', '/api/agents', 'allow', '\x01')
			RETURNING tableoid::regclass::text, id`).Scan(&partition, &id)
		if err != nil {
			t.Fatalf("insert audit row at %s: %v", createdAt, err)
		}
		return partition, id
	}
	if p, _ := insert("now()"); p != current {
		t.Errorf("row for now landed in %s, want %s", p, current)
	}
	p, futureID := insert("now() + interval '3 years'")
	if p != "audit_logs_default" {
		t.Errorf("row 3 years ahead landed in %s, want audit_logs_default", p)
	}

	t.Run("append only", func(t *testing.T) {
		for _, sql := range []string{
			`UPDATE audit_logs SET decision = 'deny'`,
			`DELETE FROM audit_logs`,
			`DELETE FROM ` + current,
			`TRUNCATE audit_logs`,
		} {
			_, err := conn.Exec(ctx, sql)
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "42501" {
				t.Errorf("%s: err = %v, want rejection (42501)", sql, err)
			}
		}
	})

	t.Run("ensure is idempotent", func(t *testing.T) {
		rows, _ := conn.Query(ctx, `SELECT audit_logs_ensure_partitions(current_date, 3)`)
		created, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(created) != 0 {
			t.Errorf("second ensure created %v, %v; want nothing", created, err)
		}
	})

	// A row stranded in the default partition must not block creating its
	// month later, and must keep its id when it moves.
	t.Run("ensure rehomes default rows", func(t *testing.T) {
		var created string
		err := conn.QueryRow(ctx, `SELECT audit_logs_ensure_partitions((now() + interval '3 years')::date, 1)`).Scan(&created)
		if err != nil || created != future {
			t.Fatalf("ensure for the future month: %q, %v; want %s", created, err, future)
		}
		var where string
		if err := conn.QueryRow(ctx, `SELECT tableoid::regclass::text FROM audit_logs WHERE id = $1`, futureID).Scan(&where); err != nil {
			t.Fatal(err)
		}
		if where != future {
			t.Errorf("future row is in %s, want %s", where, future)
		}
	})

	t.Run("drop expired", func(t *testing.T) {
		var created string
		if err := conn.QueryRow(ctx, `SELECT audit_logs_ensure_partitions((now() - interval '8 years')::date, 1)`).Scan(&created); err != nil || created != expired {
			t.Fatalf("ensure 8 years ago: %q, %v; want %s", created, err, expired)
		}
		if p, _ := insert("now() - interval '8 years'"); p != expired {
			t.Fatalf("row 8 years ago landed in %s, want %s", p, expired)
		}

		rows, _ := conn.Query(ctx, `SELECT audit_logs_drop_expired()`)
		dropped, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dropped, []string{expired}) {
			t.Errorf("dropped %v, want [%s]", dropped, expired)
		}
		got := partitions()
		if slices.Contains(got, expired) {
			t.Errorf("%s still attached", expired)
		}
		for _, keep := range []string{current, future, "audit_logs_default"} {
			if !slices.Contains(got, keep) {
				t.Errorf("%s was dropped too; partitions now %v", keep, got)
			}
		}
		var gone bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NULL`, expired).Scan(&gone); err != nil || !gone {
			t.Errorf("table %s still exists after detaching (%v)", expired, err)
		}
		var rowsLeft int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_logs`).Scan(&rowsLeft); err != nil || rowsLeft != 2 {
			t.Errorf("%d audit rows left (%v), want the current and the future one", rowsLeft, err)
		}
	})

	t.Run("retention below a year refused", func(t *testing.T) {
		_, err := conn.Exec(ctx, `SELECT audit_logs_drop_expired('7 days')`)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != "22023" {
			t.Errorf("drop_expired('7 days'): err = %v, want 22023", err)
		}
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(ctx context.Context, t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitNotification returns the next notification on conn, or nil if none
// arrives within d.
func waitNotification(ctx context.Context, conn *pgx.Conn, d time.Duration) *pgconn.Notification {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	if err != nil {
		return nil
	}
	return n
}
