package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waooaw/policygateway/authz/token"
	"github.com/waooaw/policygateway/e2e/stack"
)

// problemBody is the part of an RFC 7807 body clients key on.
type problemBody struct {
	Type                    string `json:"type"`
	Title                   string `json:"title"`
	Status                  int    `json:"status"`
	Detail                  string `json:"detail"`
	ErrorCode               string `json:"error_code"`
	ConstitutionalPrinciple string `json:"constitutional_principle"`
	CorrelationID           string `json:"correlation_id"`
	RetryAfter              int    `json:"retry_after"`
}

// wantProblem checks the envelope every denial must carry, whatever its code,
// so each case below only states its status and code.
func wantProblem(t *testing.T, resp *stack.Response, status int, code string) problemBody {
	t.Helper()
	if resp.Status != status {
		t.Fatalf("status %d, want %d; body %s", resp.Status, status, resp.Body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemBody
	resp.JSON(t, &p)
	slug, ok := strings.CutPrefix(p.Type, "https://waooaw.com/errors/")
	if !ok || slug == "" || strings.Contains(slug, "/") {
		t.Errorf("type %q is not https://waooaw.com/errors/<slug>", p.Type)
	}
	if p.Status != status {
		t.Errorf("body status %d, want %d", p.Status, status)
	}
	if p.ErrorCode != code {
		t.Errorf("error_code %q, want %q (body %s)", p.ErrorCode, code, resp.Body)
	}
	if p.CorrelationID == "" || p.CorrelationID != resp.Header.Get("X-Correlation-ID") {
		t.Errorf("correlation_id %q, X-Correlation-ID header %q: want both, equal", p.CorrelationID, resp.Header.Get("X-Correlation-ID"))
	}
	return p
}

// wantBackend checks that the request reached backend at path, and that the
// sandbox routing signal did not leak to it: no backend may ever see it.
func wantBackend(t *testing.T, resp *stack.Response, backend, path string) echo {
	t.Helper()
	if resp.Status != 200 {
		t.Fatalf("status %d, want 200 from %s; body %s", resp.Status, backend, resp.Body)
	}
	var e echo
	resp.JSON(t, &e)
	if e.Backend != backend || e.Path != path {
		t.Errorf("reached %s %s, want %s %s", e.Backend, e.Path, backend, path)
	}
	for k, v := range e.Headers {
		if k == "x-waooaw-sandbox" {
			t.Errorf("backend %s received %s: %q", e.Backend, k, v)
		}
	}
	return e
}

func with(h map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(h)+len(kv)/2)
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// trialCustomer is the seed's Test Case 1 caller. A zero expiry leaves
// trial_expires_at out.
func trialCustomer(trial bool, expires time.Time) map[string]any {
	c := map[string]any{
		"sub": "customer-456", "email": "john@acmecorp.com", "roles": []string{"customer"},
		"is_governor": false, "agent_id": "abc123", "trial_mode": trial,
	}
	if !expires.IsZero() {
		c["trial_expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	return c
}

func staff(sub, email string, governor bool, roles ...string) map[string]any {
	return map[string]any{"sub": sub, "email": email, "roles": roles, "is_governor": governor}
}

// unsigned builds a token the library would refuse to sign: alg none.
func unsigned(claims map[string]any) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(claims)
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "."
}

// doRaw sends header values exactly as given, repeats included; stack.Do
// cannot send a header twice.
func doRaw(t *testing.T, s *stack.Stack, method, path string, header http.Header) *stack.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return &stack.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// routed waits until Envoy serves method path with something other than the
// catch-all 404, whatever the authz answer: a route whose flags deny the
// probe is still a route.
func routed(t *testing.T, s *stack.Stack, method, path string) {
	t.Helper()
	auth := stack.Bearer(t, governor)
	s.Eventually(10*time.Second, method+" "+path+" routed", func() bool {
		resp, err := s.Do(method, path, auth)
		return err == nil && resp.Status != 404
	})
}

func TestAuthzThroughEnvoy(t *testing.T) {
	s, pool := seedStack(t, nil)
	future := time.Now().Add(14 * 24 * time.Hour)
	const execute = "/api/agents/abc123/execute"

	t.Run("seed case 1: trial customer executes in the sandbox", func(t *testing.T) {
		resp := s.MustDo(t, "POST", execute, stack.Bearer(t, trialCustomer(true, future)))
		wantBackend(t, resp, "sandbox", execute)
	})
	t.Run("seed case 1: paying customer executes in cp", func(t *testing.T) {
		resp := s.MustDo(t, "POST", execute, stack.Bearer(t, trialCustomer(false, time.Time{})))
		wantBackend(t, resp, "cp", execute)
	})
	t.Run("seed case 1: expired trial is refused", func(t *testing.T) {
		resp := s.MustDo(t, "POST", execute, stack.Bearer(t, trialCustomer(true, time.Now().Add(-24*time.Hour))))
		wantProblem(t, resp, 403, "TRIAL_EXPIRED")
	})

	t.Run("seed case 2: Governor admin creates a Plant agent", func(t *testing.T) {
		resp := s.MustDo(t, "POST", "/api/v1/agents", stack.Bearer(t, governor))
		wantBackend(t, resp, "plant", "/api/v1/agents")
	})
	t.Run("seed case 2: viewer may not", func(t *testing.T) {
		resp := s.MustDo(t, "POST", "/api/v1/agents", stack.Bearer(t, staff("viewer-1", "viewer@waooaw.com", false, "viewer")))
		wantProblem(t, resp, 403, "RBAC_DENIED")
	})
	t.Run("seed case 2: admin without Governor may not", func(t *testing.T) {
		resp := s.MustDo(t, "POST", "/api/v1/agents", stack.Bearer(t, staff("admin-9", "ops@waooaw.com", false, "admin")))
		p := wantProblem(t, resp, 403, "GOVERNOR_REQUIRED")
		if p.ConstitutionalPrinciple != "L0-01: Single Governor" {
			t.Errorf("constitutional_principle %q", p.ConstitutionalPrinciple)
		}
	})

	const ppCreate = "/api/admin/agents/create"
	t.Run("PP: admin can create agents", func(t *testing.T) {
		resp := s.MustDo(t, "POST", ppCreate, stack.Bearer(t, staff("admin-2", "admin2@waooaw.com", false, "admin")))
		wantBackend(t, resp, "pp", "/api/agents/create")
	})
	t.Run("PP: viewer cannot", func(t *testing.T) {
		resp := s.MustDo(t, "POST", ppCreate, stack.Bearer(t, staff("viewer-2", "viewer2@waooaw.com", false, "viewer")))
		wantProblem(t, resp, 403, "RBAC_DENIED")
	})
	t.Run("PP: admin from a foreign domain cannot", func(t *testing.T) {
		resp := s.MustDo(t, "POST", ppCreate, stack.Bearer(t, staff("admin-3", "someone@gmail.com", false, "admin")))
		wantProblem(t, resp, 403, "DOMAIN_NOT_ALLOWED")
	})

	t.Run("customer cannot run another customer's agent", func(t *testing.T) {
		resp := s.MustDo(t, "POST", "/api/agents/zzz999/execute", stack.Bearer(t, trialCustomer(false, time.Time{})))
		wantProblem(t, resp, 403, "POLICY_DENIED")
	})

	t.Run("spoofed identity headers are replaced or removed", func(t *testing.T) {
		h := with(stack.Bearer(t, trialCustomer(false, time.Time{})),
			"x-waooaw-user-id", "root", "x-waooaw-roles", "admin", "x-waooaw-governor", "true", "x-waooaw-anything", "x")
		e := wantBackend(t, s.MustDo(t, "POST", execute, h), "cp", execute)
		want := map[string]string{
			"x-waooaw-user-id": "customer-456", "x-waooaw-roles": "customer", "x-waooaw-governor": "false",
			"x-waooaw-agent-id": "abc123", "x-waooaw-email": "john@acmecorp.com",
		}
		for k, v := range want {
			if e.Headers[k] != v {
				t.Errorf("upstream %s = %q, want %q", k, e.Headers[k], v)
			}
		}
		if v, ok := e.Headers["x-waooaw-anything"]; ok {
			t.Errorf("client-sent x-waooaw-anything reached the backend: %q", v)
		}
	})
	t.Run("non-trial caller cannot force the sandbox", func(t *testing.T) {
		h := with(stack.Bearer(t, trialCustomer(false, time.Time{})), "x-waooaw-sandbox", "trial")
		wantBackend(t, s.MustDo(t, "POST", execute, h), "cp", execute)
	})
	t.Run("trial caller cannot avoid the sandbox", func(t *testing.T) {
		h := with(stack.Bearer(t, trialCustomer(true, future)), "x-waooaw-sandbox", "off")
		wantBackend(t, s.MustDo(t, "POST", execute, h), "sandbox", execute)
	})
	t.Run("sandbox header on a route without a sandbox", func(t *testing.T) {
		h := with(stack.Bearer(t, governor), "x-waooaw-sandbox", "trial")
		wantBackend(t, s.MustDo(t, "GET", "/api/v1/agents", h), "plant", "/api/v1/agents")
	})

	t.Run("correlation ids", func(t *testing.T) {
		auth := stack.Bearer(t, governor)
		t.Run("well-formed id is kept and forwarded", func(t *testing.T) {
			const id = "corr-e2e_42:a.b"
			resp := s.MustDo(t, "GET", "/api/v1/agents", with(auth, "X-Correlation-ID", id))
			e := wantBackend(t, resp, "plant", "/api/v1/agents")
			if got := resp.Header.Get("X-Correlation-ID"); got != id {
				t.Errorf("response X-Correlation-ID %q, want %q", got, id)
			}
			if e.Headers["x-correlation-id"] != id {
				t.Errorf("upstream x-correlation-id %q, want %q", e.Headers["x-correlation-id"], id)
			}
			if e.Headers["x-causation-id"] != id {
				t.Errorf("upstream x-causation-id %q, want the correlation id %q", e.Headers["x-causation-id"], id)
			}
		})
		t.Run("explicit causation id is kept", func(t *testing.T) {
			resp := s.MustDo(t, "GET", "/api/v1/agents", with(auth, "X-Correlation-ID", "corr-1", "X-Causation-ID", "cause-1"))
			e := wantBackend(t, resp, "plant", "/api/v1/agents")
			if e.Headers["x-causation-id"] != "cause-1" {
				t.Errorf("upstream x-causation-id %q, want cause-1", e.Headers["x-causation-id"])
			}
		})
		for name, bad := range map[string]string{
			"too long":  strings.Repeat("a", 129),
			"bad chars": "corr<script>",
			"space":     "corr id",
		} {
			t.Run("malformed id is replaced: "+name, func(t *testing.T) {
				resp := s.MustDo(t, "GET", "/api/v1/agents", with(auth, "X-Correlation-ID", bad))
				e := wantBackend(t, resp, "plant", "/api/v1/agents")
				got := resp.Header.Get("X-Correlation-ID")
				if got == "" || got == bad {
					t.Errorf("response X-Correlation-ID %q: want a generated id", got)
				}
				if e.Headers["x-correlation-id"] != got {
					t.Errorf("upstream x-correlation-id %q, response %q: want equal", e.Headers["x-correlation-id"], got)
				}
				if e.Headers["x-causation-id"] != got {
					t.Errorf("upstream x-causation-id %q, want the generated correlation id %q", e.Headers["x-causation-id"], got)
				}
			})
		}
		t.Run("a denial echoes the client's id", func(t *testing.T) {
			resp := s.MustDo(t, "POST", "/api/v1/agents", with(stack.Bearer(t, staff("v", "v@waooaw.com", false, "viewer")),
				"X-Correlation-ID", "corr-deny-1"))
			if p := wantProblem(t, resp, 403, "RBAC_DENIED"); p.CorrelationID != "corr-deny-1" {
				t.Errorf("correlation_id %q, want corr-deny-1", p.CorrelationID)
			}
		})
	})

	t.Run("bad tokens", func(t *testing.T) {
		expired := map[string]any{"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()}
		for k, v := range governor {
			expired[k] = v
		}
		t.Run("expired", func(t *testing.T) {
			resp := s.MustDo(t, "GET", "/api/v1/agents", stack.Bearer(t, expired))
			wantProblem(t, resp, 401, "AUTH_TOKEN_EXPIRED")
		})
		t.Run("wrong signature", func(t *testing.T) {
			claims := map[string]any{"exp": time.Now().Add(time.Hour).Unix()}
			for k, v := range governor {
				claims[k] = v
			}
			forged, err := token.SignHS256([]byte("not-the-gateway-secret-0123456789abcdef"), claims)
			if err != nil {
				t.Fatal(err)
			}
			resp := s.MustDo(t, "GET", "/api/v1/agents", map[string]string{"Authorization": "Bearer " + forged})
			wantProblem(t, resp, 401, "AUTH_TOKEN_INVALID")
		})
		t.Run("alg none", func(t *testing.T) {
			claims := map[string]any{"exp": time.Now().Add(time.Hour).Unix()}
			for k, v := range governor {
				claims[k] = v
			}
			resp := s.MustDo(t, "GET", "/api/v1/agents", map[string]string{"Authorization": "Bearer " + unsigned(claims)})
			wantProblem(t, resp, 401, "AUTH_TOKEN_INVALID")
		})
		t.Run("two Authorization headers", func(t *testing.T) {
			good := "Bearer " + stack.Token(t, governor)
			resp := doRaw(t, s, "GET", "/api/v1/agents", http.Header{"Authorization": {good, good}})
			wantProblem(t, resp, 401, "AUTH_TOKEN_INVALID")
		})
	})

	t.Run("route flags", func(t *testing.T) {
		exec(t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack, requires_mobile_device_token)
			VALUES (1, '/api/mobile/agents/{id}', 'GET', 'cp', 'https://cp.demo.waooaw.com/api/mobile/agents/{id}', '["auth","audit"]', true)`)
		exec(t, pool, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack, requires_reason)
			VALUES (1, '/api/v1/agents/{id}/retire', 'POST', 'plant', 'https://plant.demo.waooaw.com/api/v1/agents/{id}/retire', '["auth","policy","audit"]', true)`)
		routed(t, s, "GET", "/api/mobile/agents/a1")
		routed(t, s, "POST", "/api/v1/agents/a1/retire")
		auth := stack.Bearer(t, governor)

		t.Run("device token required", func(t *testing.T) {
			wantProblem(t, s.MustDo(t, "GET", "/api/mobile/agents/a1", auth), 403, "DEVICE_TOKEN_REQUIRED")
			resp := s.MustDo(t, "GET", "/api/mobile/agents/a1", with(auth, "X-Device-Token", "dev-tok-1"))
			wantBackend(t, resp, "cp", "/api/mobile/agents/a1")
		})
		t.Run("action reason required", func(t *testing.T) {
			wantProblem(t, s.MustDo(t, "POST", "/api/v1/agents/a1/retire", auth), 403, "REASON_REQUIRED")
			wantProblem(t, s.MustDo(t, "POST", "/api/v1/agents/a1/retire", with(auth, "X-Action-Reason", "   ")), 403, "REASON_REQUIRED")
			const reason = "ticket OPS-17: agent superseded"
			resp := s.MustDo(t, "POST", "/api/v1/agents/a1/retire", with(auth, "X-Action-Reason", reason))
			e := wantBackend(t, resp, "plant", "/api/v1/agents/a1/retire")
			if e.Headers["x-waooaw-action-reason"] != reason {
				t.Errorf("upstream x-waooaw-action-reason %q, want %q", e.Headers["x-waooaw-action-reason"], reason)
			}
		})
		t.Run("client cannot supply the reason header itself", func(t *testing.T) {
			resp := s.MustDo(t, "GET", "/api/v1/agents", with(auth, "x-waooaw-action-reason", "forged"))
			e := wantBackend(t, resp, "plant", "/api/v1/agents")
			if v, ok := e.Headers["x-waooaw-action-reason"]; ok {
				t.Errorf("client-sent x-waooaw-action-reason reached the backend: %q", v)
			}
		})
	})

	t.Run("client cannot mark a request degraded", func(t *testing.T) {
		resp := s.MustDo(t, "GET", "/api/v1/agents", with(stack.Bearer(t, governor), "X-Policy-Enforcement", "degraded"))
		e := wantBackend(t, resp, "plant", "/api/v1/agents")
		if v, ok := e.Headers["x-policy-enforcement"]; ok {
			t.Errorf("client-sent x-policy-enforcement reached the backend under full enforcement: %q", v)
		}
	})

	t.Run("unknown path is a problem with a correlation id", func(t *testing.T) {
		resp := s.MustDo(t, "GET", "/api/nowhere", with(stack.Bearer(t, governor), "X-Correlation-ID", "corr-404"))
		if p := wantProblem(t, resp, 404, "ROUTE_NOT_FOUND"); p.CorrelationID != "corr-404" {
			t.Errorf("correlation_id %q, want corr-404", p.CorrelationID)
		}
	})

	// Last, so that every subtest above has moved the counters.
	t.Run("envoy stats", func(t *testing.T) {
		if n := s.Stat(t, "http.gateway.ext_authz.denied"); n <= 0 {
			t.Errorf("http.gateway.ext_authz.denied = %d, want > 0", n)
		}
		if n := s.Stat(t, "http.gateway.ext_authz.ok"); n <= 0 {
			t.Errorf("http.gateway.ext_authz.ok = %d, want > 0", n)
		}
		for _, stat := range []string{"cluster_manager.cds.update_rejected", "listener_manager.lds.update_rejected",
			"http.gateway.rds.gateway_routes.update_rejected"} {
			if n := s.Stat(t, stat); n != 0 {
				t.Errorf("%s = %d, want 0", stat, n)
			}
		}
	})
}

// refusingPort reserves a loopback port on which connections are refused:
// the socket is bound but never listens. A port merely found free could be
// handed to one of the stack's own servers a moment later.
func refusingPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// TestPolicyFailModesThroughEnvoy points gatewayd at a remote OPA that is not
// there. Routes come from the example YAML: no database is needed to show
// what happens when policy cannot answer.
func TestPolicyFailModesThroughEnvoy(t *testing.T) {
	routes, err := filepath.Abs("../deploy/routes.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	deadOPA := "http://127.0.0.1:" + strconv.Itoa(refusingPort(t))
	nonGovernorAdmin := staff("admin-9", "ops@waooaw.com", false, "admin")

	t.Run("closed", func(t *testing.T) {
		s := stack.Start(t, stack.Options{RoutesFile: routes, Env: map[string]string{
			"OPA_SERVICE_URL": deadOPA, "OPA_FAIL_MODE": "closed",
		}})
		resp := s.MustDo(t, "POST", "/api/v1/agents", stack.Bearer(t, governor))
		p := wantProblem(t, resp, 503, "POLICY_UNAVAILABLE")
		if p.ConstitutionalPrinciple != "L0-04: Deny-by-Default" {
			t.Errorf("constitutional_principle %q", p.ConstitutionalPrinciple)
		}
		if p.RetryAfter != 30 {
			t.Errorf("retry_after %d, want 30", p.RetryAfter)
		}
		if got := resp.Header.Get("Retry-After"); got != "30" {
			t.Errorf("Retry-After header %q, want 30", got)
		}
		if got := resp.Header.Get("X-Policy-Enforcement"); got != "" {
			t.Errorf("X-Policy-Enforcement %q on a fail-closed denial", got)
		}
		wantProblem(t, s.MustDo(t, "GET", "/api/v1/agents", nil), 401, "AUTH_TOKEN_MISSING")
	})

	t.Run("open", func(t *testing.T) {
		s := stack.Start(t, stack.Options{RoutesFile: routes, Env: map[string]string{
			"OPA_SERVICE_URL": deadOPA, "OPA_FAIL_MODE": "open",
		}})
		t.Run("allowed, marked degraded", func(t *testing.T) {
			resp := s.MustDo(t, "POST", "/api/v1/agents", stack.Bearer(t, governor))
			e := wantBackend(t, resp, "plant", "/api/v1/agents")
			if got := resp.Header.Get("X-Policy-Enforcement"); got != "degraded" {
				t.Errorf("response X-Policy-Enforcement %q, want degraded", got)
			}
			if got := e.Headers["x-policy-enforcement"]; got != "degraded" {
				t.Errorf("upstream x-policy-enforcement %q, want degraded", got)
			}
		})
		t.Run("Governor rule still holds", func(t *testing.T) {
			wantProblem(t, s.MustDo(t, "POST", "/api/v1/agents", stack.Bearer(t, nonGovernorAdmin)), 403, "GOVERNOR_REQUIRED")
		})
		t.Run("token still required", func(t *testing.T) {
			wantProblem(t, s.MustDo(t, "POST", "/api/v1/agents", nil), 401, "AUTH_TOKEN_MISSING")
		})
		t.Run("client cannot claim degraded itself", func(t *testing.T) {
			// Only the authz server may mark a request degraded, but the
			// header is not under the identity prefix: check who wins.
			resp := s.MustDo(t, "GET", "/api/v1/agents", with(stack.Bearer(t, governor), "X-Policy-Enforcement", "none"))
			e := wantBackend(t, resp, "plant", "/api/v1/agents")
			if got := e.Headers["x-policy-enforcement"]; got != "degraded" {
				t.Errorf("upstream x-policy-enforcement %q, want degraded", got)
			}
		})
	})
}
