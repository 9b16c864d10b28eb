package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waooaw/policygateway/e2e/stack"
)

// Rows at the edges of what the model accepts must translate into config
// that the real Envoy accepts: Envoy never NACKs, whatever the table holds.
func TestEdgeRowsNeverMakeEnvoyNACK(t *testing.T) {
	long := "/api/" + strings.Repeat("a", 250) // 255 characters, the template limit is 256
	rows := []string{
		`{source_path: "/api/lit-._~%21$&'()+,;:@=", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1/x"}`,
		`{source_path: "/api/{a}/{b}/{c}/{d}/{e}", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1/{e}/{d}/{c}/{b}/{a}"}`,
		`{source_path: "/api/glob/**", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1"}`,
		`{source_path: "/api/star/*/x", http_method: DELETE, target_backend: cp, target_service_url: "http://127.0.0.1:1"}`,
		`{source_path: "/api/ipv6", http_method: GET, target_backend: cp, target_service_url: "http://[::1]:65535/ipv6"}`,
		`{source_path: "/api/https-ip", http_method: PATCH, target_backend: cp, target_service_url: "https://127.0.0.1/x"}`,
		`{source_path: "/api/under_score", http_method: HEAD, target_backend: cp, target_service_url: "https://under_score.example.internal/x"}`,
		`{source_path: "/api/unicode", http_method: OPTIONS, target_backend: cp, target_service_url: "https://bücher.example/x"}`,
		`{source_path: "/api/upper", http_method: PUT, target_backend: cp, target_service_url: "HTTPS://CP.EXAMPLE.COM:8443/Upper"}`,
		`{source_path: "/api/ws", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1/ws", websocket: true, timeout_ms: 0}`,
		`{source_path: "/api/max-timeout", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1/t", timeout_ms: 600000}`,
		`{source_path: "/api/sandboxed/{id}", http_method: POST, target_backend: cp, target_service_url: "http://127.0.0.1:1/a/{id}", trial_mode_sandbox_url: "https://sandbox.example/b/{id}"}`,
		fmt.Sprintf(`{source_path: %q, http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1"}`, long),
		`{source_path: "/", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1/"}`,
		`{source_path: "/api/bad", http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:1/", middleware_stack: [nope]}`,
	}
	var doc strings.Builder
	doc.WriteString("active_version: 1\nroutes:\n")
	for i, r := range rows {
		fmt.Fprintf(&doc, "  - {id: %d, route_version: 1, %s\n", i+1, strings.TrimPrefix(r, "{"))
	}
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte(doc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s := stack.Start(t, stack.Options{RoutesFile: file, Env: map[string]string{"GATEWAY_USE_INTERNAL_URLS": "false"}})
	// The listener came from the same snapshot as every route: if Envoy had
	// refused that snapshot, the stack would not have started. Check the
	// counters and that one of the edge routes is really being matched.
	s.Eventually(10*time.Second, "an edge route is matched (401 without a token, not the 404 catch-all)", func() bool {
		resp, err := s.Do("GET", "/api/x1/x2/x3/x4/x5", nil)
		return err == nil && resp.Status == 401
	})
	for _, stat := range []string{"cluster_manager.cds.update_rejected", "listener_manager.lds.update_rejected",
		"http.gateway.rds.gateway_routes.update_rejected"} {
		if n := s.Stat(t, stat); n != 0 {
			t.Errorf("%s = %d: Envoy NACKed\n%s", stat, n, s.Log("envoy"))
		}
	}
	if !strings.Contains(readyz(t, s), "rejected_rows=1") {
		t.Errorf("want exactly the one bad row rejected: %s", readyz(t, s))
	}
}
