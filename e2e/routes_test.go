// Package e2e runs the gateway for real: Envoy 1.40, gatewayd, PostgreSQL
// and the demo backends, talking over loopback HTTP and gRPC.
package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waooaw/policygateway/e2e/stack"
	"github.com/waooaw/policygateway/e2e/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// echo is what a demo backend answers.
type echo struct {
	Backend string            `json:"backend"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
}

// governor is a PP admin who is also the Governor: allowed on every seed route.
var governor = map[string]any{
	"sub": "admin-123", "email": "admin@waooaw.com", "roles": []string{"admin"}, "is_governor": true,
}

// seedStack loads the seed's appendix INSERT verbatim into a fresh database
// and starts the gateway on it.
func seedStack(t *testing.T, env map[string]string) (*stack.Stack, *pgxpool.Pool) {
	t.Helper()
	dsn := testenv.MigratedPostgres(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	seed, err := os.ReadFile("../migrations/testdata/seed_appendix.sql")
	if err != nil {
		t.Fatal(err)
	}
	exec(t, pool, string(seed))
	return stack.Start(t, stack.Options{DatabaseURL: dsn, Env: env}), pool
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

var idVar = regexp.MustCompile(`\{[a-z_]+\}`)

func TestSeedRoutesReachTheirBackends(t *testing.T) {
	s, pool := seedStack(t, nil)
	rows, err := pool.Query(context.Background(), `SELECT id, source_path, http_method, target_backend, target_service_url FROM gateway_routes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type route struct {
		id                            int
		path, method, backend, target string
	}
	var routes []route
	for rows.Next() {
		var r route
		if err := rows.Scan(&r.id, &r.path, &r.method, &r.backend, &r.target); err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	if len(routes) != 13 {
		t.Fatalf("seed has %d routes, want 13", len(routes))
	}
	auth := stack.Bearer(t, governor)
	for _, r := range routes {
		t.Run(fmt.Sprintf("%d %s %s", r.id, r.method, r.path), func(t *testing.T) {
			path := idVar.ReplaceAllString(r.path, "abc123")
			u, _ := url.Parse(r.target)
			wantPath := idVar.ReplaceAllString(u.Path, "abc123")
			resp := s.MustDo(t, r.method, path, auth)
			if resp.Status != 200 {
				t.Fatalf("status %d, body %s", resp.Status, resp.Body)
			}
			var e echo
			resp.JSON(t, &e)
			wantHost := fmt.Sprintf("127.0.0.1:%d", s.Backends[r.backend])
			if e.Backend != r.backend || e.Path != wantPath || e.Host != wantHost || e.Method != r.method {
				t.Errorf("reached %s %s %s host %s; want %s %s %s host %s", e.Backend, e.Method, e.Path, e.Host, r.backend, r.method, wantPath, wantHost)
			}
			if got := resp.Header.Get("X-Correlation-ID"); got == "" || e.Headers["x-correlation-id"] != got {
				t.Errorf("correlation id: response %q, upstream %q", got, e.Headers["x-correlation-id"])
			}
		})
	}

	t.Run("unknown path is a 404 problem", func(t *testing.T) {
		resp := s.MustDo(t, "GET", "/api/does-not-exist", auth)
		if resp.Status != 404 || !strings.Contains(string(resp.Body), `"error_code":"ROUTE_NOT_FOUND"`) ||
			resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("got %d %q %s", resp.Status, resp.Header.Get("Content-Type"), resp.Body)
		}
		if resp.Header.Get("X-Correlation-ID") == "" {
			t.Error("404 carries no X-Correlation-ID")
		}
		// A known path with the wrong method is unknown too.
		if resp := s.MustDo(t, "DELETE", "/api/agents", auth); resp.Status != 404 {
			t.Fatalf("DELETE /api/agents: %d", resp.Status)
		}
	})

	t.Run("missing token is a 401 problem", func(t *testing.T) {
		resp := s.MustDo(t, "GET", "/api/agents", map[string]string{"X-Correlation-ID": "corr-e2e-1"})
		if resp.Status != 401 || !strings.Contains(string(resp.Body), `"error_code":"AUTH_TOKEN_MISSING"`) {
			t.Fatalf("got %d %s", resp.Status, resp.Body)
		}
		if got := resp.Header.Get("X-Correlation-ID"); got != "corr-e2e-1" {
			t.Errorf("X-Correlation-ID echoed as %q", got)
		}
		// ext_proc sees ext_authz's own local reply and completes its record.
		s.Eventually(5*time.Second, "ext_proc logs the denial's response", func() bool {
			for _, line := range strings.Split(s.Log("gatewayd"), "\n") {
				if strings.Contains(line, `"msg":"audit response"`) && strings.Contains(line, `"correlation_id":"corr-e2e-1"`) &&
					strings.Contains(line, `"status":"401"`) {
					return true
				}
			}
			return false
		})
	})
}

// served polls until method path reaches backend (or, with backend "", 404s).
func served(t *testing.T, s *stack.Stack, method, path, backend string) {
	t.Helper()
	auth := stack.Bearer(t, governor)
	s.Eventually(10*time.Second, fmt.Sprintf("%s %s served by %q", method, path, backend), func() bool {
		resp, err := s.Do(method, path, auth)
		if err != nil {
			return false
		}
		if backend == "" {
			return resp.Status == 404
		}
		if resp.Status != 200 {
			return false
		}
		var e echo
		resp.JSON(t, &e)
		return e.Backend == backend
	})
}

func TestRouteChangesBySQLTakeEffect(t *testing.T) {
	s, pool := seedStack(t, nil)

	t.Run("insert", func(t *testing.T) {
		exec(t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack)
			VALUES (1, '/api/reports/{id}', 'GET', 'pp', 'https://pp.demo.waooaw.com/api/reports/{id}', '["auth","audit"]')`)
		served(t, s, "GET", "/api/reports/r1", "pp")
	})
	t.Run("update", func(t *testing.T) {
		exec(t, pool, `UPDATE gateway_routes SET target_backend = 'plant', target_service_url = 'https://plant.demo.waooaw.com/v1/reports/{id}'
			WHERE source_path = '/api/reports/{id}'`)
		served(t, s, "GET", "/api/reports/r1", "plant")
		resp := s.MustDo(t, "GET", "/api/reports/r1", stack.Bearer(t, governor))
		var e echo
		resp.JSON(t, &e)
		if e.Path != "/v1/reports/r1" {
			t.Errorf("upstream path %q, want the rewritten /v1/reports/r1", e.Path)
		}
	})
	t.Run("deactivate", func(t *testing.T) {
		exec(t, pool, `UPDATE gateway_routes SET is_active = false WHERE source_path = '/api/reports/{id}'`)
		served(t, s, "GET", "/api/reports/r1", "")
	})
	t.Run("switch active version and roll back", func(t *testing.T) {
		// Green: version 2 has /api/agents on PP, and nothing else.
		exec(t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack)
			VALUES (2, '/api/agents', 'GET', 'pp', 'https://pp.demo.waooaw.com/api/v2/agents', '["auth","audit"]')`)
		served(t, s, "GET", "/api/agents", "cp") // green is not live yet
		exec(t, pool, `UPDATE gateway_route_settings SET active_version = 2`)
		served(t, s, "GET", "/api/agents", "pp")
		served(t, s, "POST", "/api/v1/agents", "") // only in version 1
		exec(t, pool, `UPDATE gateway_route_settings SET active_version = 1`)
		served(t, s, "GET", "/api/agents", "cp")
		served(t, s, "POST", "/api/v1/agents", "plant")
	})
	t.Run("bad rows are rejected and the last good config keeps serving", func(t *testing.T) {
		before := readyz(t, s)
		exec(t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url)
			VALUES (1, '/api/broken', 'FETCH', 'cp', 'https://cp.demo.waooaw.com/api/broken'),
			       (1, '/api/agents', 'GET', 'pp', 'https://pp.demo.waooaw.com/api/agents'),
			       (1, '/api/also-broken/{id}', 'GET', 'cp', 'https://cp.demo.waooaw.com/api/x/{other}')`)
		s.Eventually(10*time.Second, "gatewayd reports 3 rejected rows", func() bool {
			return strings.Contains(readyz(t, s), "rejected_rows=3")
		})
		// Same content, same snapshot version: nothing was pushed.
		if after := readyz(t, s); snapshotOf(after) != snapshotOf(before) {
			t.Errorf("snapshot changed from %q to %q", before, after)
		}
		served(t, s, "GET", "/api/agents", "cp") // the earlier row wins the conflict
		for _, stat := range []string{"cluster_manager.cds.update_rejected", "listener_manager.lds.update_rejected",
			"http.gateway.rds.gateway_routes.update_rejected"} {
			if n := s.Stat(t, stat); n != 0 {
				t.Errorf("%s = %d, want 0 (Envoy NACKed a config)", stat, n)
			}
		}
		if !strings.Contains(s.Log("gatewayd"), `"reason":"\"FETCH\" is not one of`) {
			t.Error("gatewayd did not log the rejected row's reason")
		}
	})
}

func readyz(t *testing.T, s *stack.Stack) string {
	t.Helper()
	resp, err := s.Client.Get(s.OpsURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return b.String()
}

func snapshotOf(readyz string) string {
	for _, f := range strings.Fields(readyz) {
		if v, ok := strings.CutPrefix(f, "snapshot="); ok {
			return v
		}
	}
	return ""
}
