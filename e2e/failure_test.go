package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/waooaw/policygateway/e2e/stack"
	"github.com/waooaw/policygateway/e2e/testenv"
)

// When gatewayd dies, Envoy keeps its last config but can no longer ask
// for decisions: every request must fail closed, and no backend is reached.
func TestGatewaydOutageFailsClosed(t *testing.T) {
	s := stack.Start(t, stack.Options{RoutesFile: "../deploy/routes.example.yaml"})
	auth := stack.Bearer(t, governor)
	if resp := s.MustDo(t, "GET", "/api/v1/agents", auth); resp.Status != 200 {
		t.Fatalf("before the outage: %d %s", resp.Status, resp.Body)
	}
	s.Kill("gatewayd")
	s.Eventually(10*time.Second, "requests fail closed", func() bool {
		resp, err := s.Do("GET", "/api/v1/agents", auth)
		return err == nil && resp.Status == 503
	})
	resp := s.MustDo(t, "GET", "/api/v1/agents", auth)
	if strings.Contains(string(resp.Body), `"backend"`) {
		t.Fatalf("a backend answered during the outage: %s", resp.Body)
	}
	if n := s.Stat(t, "http.gateway.ext_authz.error"); n < 1 {
		t.Errorf("ext_authz.error = %d, want the outage counted", n)
	}
	if n := s.Stat(t, "http.gateway.ext_authz.failure_mode_allowed"); n > 0 {
		t.Errorf("failure_mode_allowed = %d: requests were let through", n)
	}
}

// A PostgreSQL outage changes nothing Envoy serves; once the database is
// back, gatewayd reconnects its LISTEN and new commits propagate again.
func TestPostgresOutageKeepsServing(t *testing.T) {
	s, pool := seedStack(t, nil)
	auth := stack.Bearer(t, governor)
	testenv.StopPostgres(t)
	// Long enough for a resync (5s in the stack) to fail against the dead database.
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		if resp := s.MustDo(t, "GET", "/api/v1/agents", auth); resp.Status != 200 {
			t.Fatalf("during the outage: %d %s", resp.Status, resp.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(s.Log("gatewayd"), "route sync failed; last good snapshot keeps serving") {
		t.Error("gatewayd did not report the failed sync")
	}
	testenv.StartPostgres(t)
	pool.Reset() // the pool's connections died with the server
	exec(t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack)
		VALUES (1, '/api/after-outage', 'GET', 'pp', 'https://pp.demo.waooaw.com/api/after-outage', '["auth","audit"]')`)
	served(t, s, "GET", "/api/after-outage", "pp")
}
