package xds_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waooaw/policygateway/e2e/testenv"
	"github.com/waooaw/policygateway/xds"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
	"github.com/waooaw/policygateway/xds/translate"
)

// Some tests stop the binary's PostgreSQL cluster, which every test here
// shares: none of them may use t.Parallel.
func TestMain(m *testing.M) { testenv.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// deadline bounds every wait for the controller; it is a ceiling for slow
// machines, not a latency assertion.
const deadline = 30 * time.Second

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	stop := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(stop) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cached is the version Envoy would be served now ("" if none).
func cached(t *testing.T, cache cachev3.SnapshotCache) string {
	t.Helper()
	snap, err := cache.GetSnapshot(xds.NodeGroup)
	if err != nil {
		return ""
	}
	v := snap.GetVersion(resourcev3.ClusterType)
	for _, typ := range []string{resourcev3.RouteType, resourcev3.ListenerType} {
		if snap.GetVersion(typ) != v {
			t.Fatalf("snapshot mixes versions: clusters %s, %s %s", v, typ, snap.GetVersion(typ))
		}
	}
	return v
}

// cachedRoutes lists the route names Envoy would be served now.
func cachedRoutes(t *testing.T, cache cachev3.SnapshotCache) []string {
	t.Helper()
	snap, err := cache.GetSnapshot(xds.NodeGroup)
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := snap.GetResources(resourcev3.RouteType)[translate.RouteConfigName].(*routev3.RouteConfiguration)
	if !ok {
		t.Fatalf("no route configuration %q in the snapshot", translate.RouteConfigName)
	}
	var names []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			names = append(names, r.GetName())
		}
	}
	return names
}

// run starts c.Run until the test ends and waits for the first snapshot.
func run(t *testing.T, c *xds.Controller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(deadline):
			t.Error("Run did not return after its context ended")
		}
	})
	select {
	case <-c.Ready():
	case <-time.After(deadline):
		t.Fatalf("no first snapshot; status %+v", c.Status())
	}
}

// fakeSource serves rows from memory; Load fails while err is set and for
// its first failFirst calls.
type fakeSource struct {
	mu        sync.Mutex
	rows      []model.Row
	active    int
	err       error
	failFirst int
	loads     int
}

func (f *fakeSource) Load(context.Context) ([]model.Row, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	if f.err != nil {
		return nil, 0, f.err
	}
	if f.loads <= f.failFirst {
		return nil, 0, errDown
	}
	return slices.Clone(f.rows), f.active, nil
}

func (f *fakeSource) Watch(ctx context.Context, _ func()) error {
	<-ctx.Done()
	return nil
}

func (f *fakeSource) set(rows []model.Row, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows, f.err = rows, err
}

var errDown = errors.New("database is down")

// The controller's contract with Envoy, without a database: a bad row drops
// itself, a failed load publishes nothing, and the next good load recovers.
func TestControllerSync(t *testing.T) {
	ctx := context.Background()
	good := []model.Row{
		row(1, 1, "GET", "/api/agents", "https://cp.example.com/api/agents"),
		row(2, 1, "POST", "/api/agents/{id}/execute", "https://cp.example.com/api/agents/{id}/execute"),
	}
	src := &fakeSource{active: 1, err: errDown}
	cache := xds.NewCache(quiet)
	c := xds.NewController(xds.ControllerConfig{Source: src, Cache: cache, Logger: quiet})

	steps := []struct {
		name        string
		rows        []model.Row
		err         error
		wantErr     bool
		wantChange  bool
		wantRejects []int64
	}{
		{name: "first load fails", err: errDown, wantErr: true},
		{name: "first good load publishes", rows: good, wantChange: true},
		{name: "same rows publish nothing new", rows: good},
		{name: "bad row is rejected and changes nothing", rows: append(slices.Clone(good),
			row(3, 1, "FETCH", "/api/x", "https://cp.example.com/api/x")), wantRejects: []int64{3}},
		{name: "load error keeps the last good snapshot", err: errDown, wantErr: true, wantRejects: []int64{3}},
		{name: "recovery with a new row publishes", rows: append(slices.Clone(good),
			row(4, 1, "GET", "/api/new", "https://cp.example.com/api/new")), wantChange: true},
	}
	prev := ""
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			src.set(s.rows, s.err)
			err := c.Sync(ctx)
			if (err != nil) != s.wantErr {
				t.Fatalf("Sync() = %v, want error %v", err, s.wantErr)
			}
			st := c.Status()
			if (st.LastError != nil) != s.wantErr {
				t.Errorf("Status().LastError = %v after Sync() = %v", st.LastError, err)
			}
			now := cached(t, cache)
			if changed := now != prev; changed != s.wantChange {
				t.Errorf("cached version %q -> %q, want changed=%v", prev, now, s.wantChange)
			}
			if st.Version != now {
				t.Errorf("Status().Version = %q, cache serves %q", st.Version, now)
			}
			var rejected []int64
			for _, r := range st.Rejections {
				rejected = append(rejected, r.RowID)
			}
			if !slices.Equal(rejected, s.wantRejects) {
				t.Errorf("rejected rows %v, want %v", rejected, s.wantRejects)
			}
			select {
			case <-c.Ready():
				if now == "" {
					t.Error("Ready is closed but nothing was published")
				}
			default:
				if now != "" {
					t.Error("a snapshot was published but Ready is still open")
				}
			}
			prev = now
		})
	}
}

// Envoy has nothing to serve until the first load works, so Run keeps
// retrying it rather than waiting for a change notification.
func TestControllerRetriesFirstLoad(t *testing.T) {
	src := &fakeSource{active: 1, failFirst: 3,
		rows: []model.Row{row(1, 1, "GET", "/api/agents", "https://cp.example.com/api/agents")}}
	cache := xds.NewCache(quiet)
	c := xds.NewController(xds.ControllerConfig{Source: src, Cache: cache, Logger: quiet})
	run(t, c)
	if cached(t, cache) == "" {
		t.Error("Ready closed without a cached snapshot")
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.loads <= src.failFirst {
		t.Errorf("%d loads, want more than the %d that failed", src.loads, src.failFirst)
	}
}

// postgresController runs a Controller over a seeded database.
func postgresController(t *testing.T, resync time.Duration, wrap func(xds.Source) xds.Source) (*xds.Controller, cachev3.SnapshotCache, *pgxpool.Pool, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test against a real PostgreSQL; skipped with -short")
	}
	dsn := testenv.MigratedPostgres(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	seedSQL, err := os.ReadFile("../migrations/testdata/seed_appendix.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), string(seedSQL)); err != nil {
		t.Fatal(err)
	}
	var src xds.Source = source.NewPostgres(pool, dsn, quiet)
	if wrap != nil {
		src = wrap(src)
	}
	cache := xds.NewCache(quiet)
	c := xds.NewController(xds.ControllerConfig{Source: src, Cache: cache, Logger: quiet, Resync: resync})
	run(t, c)
	return c, cache, pool, dsn
}

func insertRoute(t *testing.T, dsn, method, path string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	// Its own connection, so it works right after a restart of PostgreSQL.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var id int64
	err = conn.QueryRow(ctx, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
	                          VALUES (1, $1, $2, 'cp', 'https://cp.demo.waooaw.com' || $1) RETURNING id`, path, method).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestControllerFollowsPostgres(t *testing.T) {
	c, cache, _, dsn := postgresController(t, 0, nil)

	v0 := cached(t, cache)
	if st := c.Status(); st.Version != v0 || st.LastError != nil || len(st.Rejections) != 0 {
		t.Fatalf("status after the first snapshot: %+v (cache serves %q)", st, v0)
	}
	// 13 seed routes, the sandbox twin of the execute route, the 404 catch-all.
	if names := cachedRoutes(t, cache); len(names) != 15 {
		t.Errorf("first snapshot has %d routes, want 15: %v", len(names), names)
	}

	id := insertRoute(t, dsn, "GET", "/api/new-route")
	eventually(t, "a snapshot with the inserted route", func() bool {
		return slices.Contains(cachedRoutes(t, cache), "route-"+itoa(id))
	})
	if v := cached(t, cache); v == v0 || c.Status().Version != v {
		t.Errorf("version %q after the INSERT (was %q), status says %q", v, v0, c.Status().Version)
	}
}

func TestControllerRejectsBadRowKeepsVersion(t *testing.T) {
	c, cache, pool, dsn := postgresController(t, 0, nil)
	v0 := cached(t, cache)

	bad := insertRoute(t, dsn, "FETCH", "/api/bad")
	eventually(t, "the bad row in Status().Rejections", func() bool {
		return slices.ContainsFunc(c.Status().Rejections, func(r model.Rejection) bool {
			return r.RowID == bad && r.Field == "http_method"
		})
	})
	// Rejections and version are recorded by the same sync, so the version
	// is final once the rejection shows.
	if v := cached(t, cache); v != v0 {
		t.Errorf("a rejected row changed the served version: %q -> %q", v0, v)
	}
	if st := c.Status(); st.Version != v0 || st.LastError != nil {
		t.Errorf("status after a bad row: %+v, want version %q and no error", st, v0)
	}

	// Fixing the row serves it and clears the rejection.
	if _, err := pool.Exec(context.Background(), `UPDATE gateway_routes SET http_method = 'GET' WHERE id = $1`, bad); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the fixed row to serve", func() bool {
		return slices.Contains(cachedRoutes(t, cache), "route-"+itoa(bad))
	})
	if rej := c.Status().Rejections; len(rej) != 0 {
		t.Errorf("rejections after the fix: %v", rej)
	}
}

// DESIGN §7: with PostgreSQL down the last good snapshot keeps serving, and
// the controller picks up where it left off once the database is back.
func TestControllerSurvivesPostgresOutage(t *testing.T) {
	c, cache, _, dsn := postgresController(t, 0, nil)
	v0 := cached(t, cache)
	routes0 := cachedRoutes(t, cache)

	testenv.StopPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := c.Sync(ctx); err == nil {
		t.Fatal("Sync succeeded with PostgreSQL stopped")
	}
	if st := c.Status(); st.LastError == nil {
		t.Error("Status().LastError is nil after a failed sync")
	}
	if v := cached(t, cache); v != v0 {
		t.Errorf("a failed sync changed the served version: %q -> %q", v0, v)
	}
	if names := cachedRoutes(t, cache); !slices.Equal(names, routes0) {
		t.Errorf("a failed sync changed the served routes: %v -> %v", routes0, names)
	}
	if v := c.Status().Version; v != v0 {
		t.Errorf("Status().Version = %q during the outage, want %q", v, v0)
	}

	testenv.StartPostgres(t)
	// The LISTEN reconnect counts as a change and triggers a sync.
	eventually(t, "a successful sync after PostgreSQL is back", func() bool { return c.Status().LastError == nil })
	if v := cached(t, cache); v != v0 {
		t.Errorf("the same table after a restart changed the version: %q -> %q", v0, v)
	}
	id := insertRoute(t, dsn, "GET", "/api/after-outage")
	eventually(t, "the route inserted after the outage", func() bool {
		return slices.Contains(cachedRoutes(t, cache), "route-"+itoa(id))
	})
}

// deafSource never reports changes, like a LISTEN connection that silently
// lost a notification.
type deafSource struct{ xds.Source }

func (deafSource) Watch(ctx context.Context, _ func()) error {
	<-ctx.Done()
	return nil
}

func TestControllerResyncWithoutNotifications(t *testing.T) {
	_, cache, _, dsn := postgresController(t, 200*time.Millisecond, func(s xds.Source) xds.Source { return deafSource{s} })
	v0 := cached(t, cache)

	id := insertRoute(t, dsn, "GET", "/api/unnotified")
	eventually(t, "the periodic resync to publish the unnotified route", func() bool {
		return slices.Contains(cachedRoutes(t, cache), "route-"+itoa(id))
	})
	if cached(t, cache) == v0 {
		t.Error("new route served under the old version")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// An empty table is a legal state (everything answers 404): it must still
// publish, or gatewayd never becomes ready and Envoy gets no listener.
func TestControllerPublishesAnEmptyTable(t *testing.T) {
	src := &fakeSource{active: 1}
	c := xds.NewController(xds.ControllerConfig{Source: src, Cache: xds.NewCache(quiet), Logger: quiet})
	if err := c.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Ready():
	default:
		t.Fatal("not ready after publishing an empty table")
	}
	if c.Status().Version == "" {
		t.Error("empty table published without a version")
	}
}
