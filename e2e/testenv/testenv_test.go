package testenv_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/waooaw/policygateway/e2e/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestPostgresAnswers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.Postgres(t))

	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}

func TestPostgresDatabasesAreFreshAndSeparate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	a := connect(ctx, t, testenv.Postgres(t))
	b := connect(ctx, t, testenv.Postgres(t))

	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	for name, conn := range map[string]*pgx.Conn{"a": a, "b": b} {
		var tables int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'only_in_a'").Scan(&tables)
		if err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("database %s: %d unexpected tables, want an empty database", name, tables)
		}
	}
	var seen bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('only_in_a') IS NOT NULL").Scan(&seen); err != nil {
		t.Fatal(err)
	}
	if seen {
		t.Error("a table created in one test database is visible in another")
	}
}

func TestMigratedPostgresHasSchema(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	conn := connect(ctx, t, testenv.MigratedPostgres(t))
	var active int
	if err := conn.QueryRow(ctx, "SELECT active_version FROM gateway_route_settings").Scan(&active); err != nil {
		t.Fatalf("read gateway_route_settings: %v", err)
	}
}

func TestRedisAnswers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	opts, err := redis.ParseURL(testenv.Redis(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
}

// Not parallel: restarting the shared cluster would cut off the other tests.
func TestRestartPostgresKeepsPortAndData(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("restart needs the package's own cluster")
	}
	ctx := testContext(t)
	dsn := testenv.Postgres(t)
	conn := connect(ctx, t, dsn)
	if _, err := conn.Exec(ctx, "CREATE TABLE survives (x int); INSERT INTO survives VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	var portBefore int
	if err := conn.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&portBefore); err != nil {
		t.Fatal(err)
	}

	testenv.RestartPostgres(t)

	if err := conn.Ping(ctx); err == nil {
		t.Error("a connection from before the restart still works; the server did not restart")
	}
	after := connect(ctx, t, dsn) // same DSN, so necessarily the same port
	var portAfter, x int
	if err := after.QueryRow(ctx, "SELECT current_setting('port')::int, (SELECT x FROM survives)").Scan(&portAfter, &x); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if portAfter != portBefore || x != 42 {
		t.Errorf("after restart: port %d, x %d; want port %d, x 42", portAfter, x, portBefore)
	}
}

func TestStopPostgresRefusesConnections(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("stop needs the package's own cluster")
	}
	ctx := testContext(t)
	dsn := testenv.Postgres(t)

	testenv.StopPostgres(t)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(short, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a stopped cluster")
	}
	testenv.StartPostgres(t)
	connect(ctx, t, dsn)
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	if p := testenv.FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(ctx context.Context, t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
