package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/waooaw/policygateway/authz/policy"
	"github.com/waooaw/policygateway/authz/token"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
	"github.com/waooaw/policygateway/xds/translate"
)

const testSecret = "unit-secret-0123456789abcdef0123456789"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// seedExtensions are the context_extensions the translator gives each of
// the seed's routes, keyed by "METHOD template": the pipeline sees exactly
// what Envoy would send.
func seedExtensions(t testing.TB) map[string]map[string]string {
	t.Helper()
	rows, active, err := source.NewFile("../deploy/routes.example.yaml", quiet).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Give two routes the flags the seed never sets, to test them.
	rows = append(rows,
		model.Row{ID: 100, RouteVersion: 1, SourcePath: "/api/mobile/agents/{id}", HTTPMethod: "GET", TargetBackend: "cp",
			TargetServiceURL: "http://127.0.0.1:8015/api/mobile/agents/{id}", MiddlewareStack: json.RawMessage(`["auth","audit"]`),
			RequiresMobileDeviceToken: true, IsActive: true, TimeoutMS: 1000},
		model.Row{ID: 101, RouteVersion: 1, SourcePath: "/api/admin/agents/{id}/force-stop", HTTPMethod: "POST", TargetBackend: "pp",
			TargetServiceURL: "http://127.0.0.1:8006/api/agents/{id}/force-stop", MiddlewareStack: json.RawMessage(`["auth","rbac","audit"]`),
			Permission: "agent:update", RequiresReason: true, IsActive: true, TimeoutMS: 1000},
		model.Row{ID: 102, RouteVersion: 1, SourcePath: "/api/ws/dashboard", HTTPMethod: "GET", TargetBackend: "pp",
			TargetServiceURL: "http://127.0.0.1:8006/ws/dashboard", MiddlewareStack: json.RawMessage(`["auth","rbac","audit"]`),
			Permission: "dashboard:view", Websocket: true, IsActive: true, TimeoutMS: 0},
	)
	m, rej := model.Build(rows, active, model.Options{})
	if len(rej) > 0 {
		t.Fatalf("fixture rows rejected: %v", rej)
	}
	res, _, err := translate.Translate(m, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, r := range res.Routes[0].VirtualHosts[0].Routes {
		cfg, ok := r.TypedPerFilterConfig[translate.ExtAuthzFilterName]
		if !ok || strings.HasSuffix(r.Name, "-sandbox") {
			continue
		}
		var per extauthzv3.ExtAuthzPerRoute
		if err := cfg.UnmarshalTo(&per); err != nil {
			t.Fatal(err)
		}
		ext := per.GetCheckSettings().GetContextExtensions()
		if ext != nil {
			out[ext[translate.CtxMethod]+" "+ext[translate.CtxPathTemplate]] = ext
		}
	}
	return out
}

func newTestServer(t testing.TB, eval policy.Evaluator, failOpen bool) *Server {
	t.Helper()
	v, err := token.NewVerifier(context.Background(), token.Config{HS256Secret: []byte(testSecret), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if eval == nil {
		eng, err := policy.NewEngine(context.Background(), policy.EngineConfig{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		eval = eng
	}
	return NewServer(Config{Tokens: v, Policy: eval, FailOpen: failOpen, Logger: quiet, Audit: discardAudit{}})
}

type discardAudit struct{}

func (discardAudit) Decision(context.Context, *AuditRecord) {}

func sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := token.SignHS256([]byte(testSecret), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func checkRequest(ext map[string]string, method, path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Headers: headers,
		}},
		ContextExtensions: ext,
	}}
}

var (
	governorAdmin = map[string]any{"sub": "admin-123", "email": "admin@waooaw.com", "roles": []string{"admin"}, "is_governor": true}
	plainAdmin    = map[string]any{"sub": "admin-9", "email": "admin9@waooaw.com", "roles": []string{"admin"}, "is_governor": false}
	viewer        = map[string]any{"sub": "viewer-1", "email": "viewer@waooaw.com", "roles": []string{"viewer"}}
	trialCustomer = map[string]any{"sub": "customer-456", "email": "john@acmecorp.com", "roles": []string{"customer"},
		"agent_id": "abc123", "trial_mode": true, "trial_expires_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)}
	expiredTrial = map[string]any{"sub": "customer-456", "email": "john@acmecorp.com", "roles": []string{"customer"},
		"agent_id": "abc123", "trial_mode": true, "trial_expires_at": "2024-02-10T00:00:00Z"}
	paidCustomer = map[string]any{"sub": "customer-7", "email": "ann@acmecorp.com", "roles": []string{"customer"}, "agent_id": "abc123"}
)

func TestCheckPipeline(t *testing.T) {
	exts := seedExtensions(t)
	srv := newTestServer(t, nil, false)
	bearer := func(c map[string]any) map[string]string {
		return map[string]string{"authorization": "Bearer " + sign(t, c)}
	}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name     string
		route    string // "METHOD template" in the seed
		method   string
		path     string
		headers  map[string]string
		wantCode string // "" = allow
		wantSet  map[string]string
		wantGone []string // headers removed upstream
	}{
		{name: "seed case 1: trial customer executes in the sandbox", route: "POST /api/agents/{id}/execute", method: "POST",
			path: "/api/agents/abc123/execute", headers: bearer(trialCustomer),
			wantSet: map[string]string{HeaderSandbox: "trial", HeaderUserID: "customer-456", HeaderAgentID: "abc123", HeaderTrial: "true", HeaderPermission: "agent:execute"}},
		{name: "paid customer executes in production", route: "POST /api/agents/{id}/execute", method: "POST",
			path: "/api/agents/abc123/execute", headers: bearer(paidCustomer), wantSet: map[string]string{HeaderSandbox: "off"}},
		{name: "client cannot force the sandbox", route: "POST /api/agents/{id}/execute", method: "POST",
			path: "/api/agents/abc123/execute", headers: with(bearer(paidCustomer), HeaderSandbox, "trial"), wantSet: map[string]string{HeaderSandbox: "off"}},
		{name: "expired trial", route: "POST /api/agents/{id}/execute", method: "POST",
			path: "/api/agents/abc123/execute", headers: bearer(expiredTrial), wantCode: "TRIAL_EXPIRED"},
		{name: "another customer's agent", route: "POST /api/agents/{id}/execute", method: "POST",
			path: "/api/agents/zzz999/execute", headers: bearer(paidCustomer), wantCode: "POLICY_DENIED"},
		{name: "seed case 2: Governor admin creates an agent", route: "POST /api/v1/agents", method: "POST",
			path: "/api/v1/agents", headers: bearer(governorAdmin), wantSet: map[string]string{HeaderGovernor: "true", HeaderRoles: "admin"}},
		{name: "seed case 2: viewer is refused by RBAC first", route: "POST /api/v1/agents", method: "POST",
			path: "/api/v1/agents", headers: bearer(viewer), wantCode: "RBAC_DENIED"},
		{name: "seed case 2: non-Governor admin", route: "POST /api/v1/agents", method: "POST",
			path: "/api/v1/agents", headers: bearer(plainAdmin), wantCode: "GOVERNOR_REQUIRED"},
		{name: "governor role counts as Governor", route: "POST /api/governor/approve", method: "POST", path: "/api/governor/approve",
			headers: bearer(map[string]any{"sub": "g", "email": "g@waooaw.com", "roles": []string{"admin", "governor"}})},
		{name: "admin can create agents in PP", route: "POST /api/admin/agents/create", method: "POST",
			path: "/api/admin/agents/create", headers: bearer(plainAdmin)},
		{name: "viewer cannot create agents in PP", route: "POST /api/admin/agents/create", method: "POST",
			path: "/api/admin/agents/create", headers: bearer(viewer), wantCode: "RBAC_DENIED"},
		{name: "PP needs a waooaw.com email", route: "GET /api/admin/customers", method: "GET", path: "/api/admin/customers",
			headers: bearer(map[string]any{"sub": "x", "email": "x@gmail.com", "roles": []string{"admin"}}), wantCode: "DOMAIN_NOT_ALLOWED"},
		{name: "missing token", route: "GET /api/agents", method: "GET", path: "/api/agents", headers: map[string]string{}, wantCode: "AUTH_TOKEN_MISSING"},
		{name: "garbage token", route: "GET /api/agents", method: "GET", path: "/api/agents",
			headers: map[string]string{"authorization": "Bearer a.b.c"}, wantCode: "AUTH_TOKEN_INVALID"},
		{name: "expired token", route: "GET /api/agents", method: "GET", path: "/api/agents",
			headers: bearer(map[string]any{"sub": "a", "roles": []string{"customer"}, "exp": time.Now().Add(-time.Hour).Unix()}), wantCode: "AUTH_TOKEN_EXPIRED"},
		{name: "duplicate Authorization headers", route: "GET /api/agents", method: "GET", path: "/api/agents",
			headers: map[string]string{"authorization": "Bearer " + sign(t, viewer) + ",Bearer " + sign(t, governorAdmin)}, wantCode: "AUTH_TOKEN_INVALID"},
		{name: "spoofed identity is overwritten and foreign prefixed headers removed", route: "GET /api/agents", method: "GET", path: "/api/agents",
			headers:  with(bearer(paidCustomer), HeaderUserID, "root", HeaderRoles, "admin", HeaderGovernor, "true", "x-waooaw-anything", "x"),
			wantSet:  map[string]string{HeaderUserID: "customer-7", HeaderRoles: "customer", HeaderGovernor: "false"},
			wantGone: []string{"x-waooaw-anything", HeaderCustomerID, HeaderReason}},
		{name: "device token required", route: "GET /api/mobile/agents/{id}", method: "GET", path: "/api/mobile/agents/abc123",
			headers: bearer(paidCustomer), wantCode: "DEVICE_TOKEN_REQUIRED"},
		{name: "device token present", route: "GET /api/mobile/agents/{id}", method: "GET", path: "/api/mobile/agents/abc123",
			headers: with(bearer(paidCustomer), HeaderDeviceToken, "fcm-token-1")},
		{name: "force action needs a reason", route: "POST /api/admin/agents/{id}/force-stop", method: "POST",
			path: "/api/admin/agents/a1/force-stop", headers: bearer(plainAdmin), wantCode: "REASON_REQUIRED"},
		{name: "force action reason is passed on", route: "POST /api/admin/agents/{id}/force-stop", method: "POST",
			path: "/api/admin/agents/a1/force-stop", headers: with(bearer(plainAdmin), HeaderActionReason, " customer asked "),
			wantSet: map[string]string{HeaderReason: "customer asked"}},
		{name: "viewer may not force actions even with a reason", route: "POST /api/admin/agents/{id}/force-stop", method: "POST",
			path: "/api/admin/agents/a1/force-stop", headers: with(bearer(viewer), HeaderActionReason, "because"), wantCode: "RBAC_DENIED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ext, ok := exts[tc.route]
			if !ok {
				t.Fatalf("no seed route %q", tc.route)
			}
			resp, err := srv.Check(context.Background(), checkRequest(ext, tc.method, tc.path, tc.headers))
			if err != nil {
				t.Fatalf("Check returned a gRPC error (Envoy would treat it as an outage): %v", err)
			}
			if tc.wantCode != "" {
				denied := resp.GetDeniedResponse()
				if denied == nil {
					t.Fatalf("allowed; want %s", tc.wantCode)
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(denied.Body), &body); err != nil {
					t.Fatalf("deny body is not JSON: %q", denied.Body)
				}
				if body["error_code"] != tc.wantCode {
					t.Fatalf("error_code %v, want %s (body %s)", body["error_code"], tc.wantCode, denied.Body)
				}
				if int(body["status"].(float64)) != int(denied.GetStatus().GetCode()) {
					t.Errorf("body status %v != HTTP status %d", body["status"], denied.GetStatus().GetCode())
				}
				if !strings.HasPrefix(body["type"].(string), "https://waooaw.com/errors/") || body["correlation_id"] == "" {
					t.Errorf("problem body lacks type or correlation_id: %s", denied.Body)
				}
				if code := codes.Code(resp.GetStatus().GetCode()); code == codes.OK {
					t.Error("deny with gRPC status OK")
				}
				return
			}
			ok2 := resp.GetOkResponse()
			if ok2 == nil {
				t.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
			}
			set := map[string]string{}
			for _, h := range ok2.Headers {
				if h.AppendAction != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
					t.Errorf("header %s is not overwritten", h.Header.Key)
				}
				set[h.Header.Key] = h.Header.Value
			}
			for k, v := range tc.wantSet {
				if set[k] != v {
					t.Errorf("upstream %s = %q, want %q", k, set[k], v)
				}
			}
			if set[HeaderSandbox] == "" {
				t.Error("every allow must set the sandbox header")
			}
			for _, k := range tc.wantGone {
				if !slices.Contains(ok2.HeadersToRemove, k) {
					t.Errorf("%s not removed (removed: %v)", k, ok2.HeadersToRemove)
				}
			}
			for _, k := range ok2.HeadersToRemove {
				if _, alsoSet := set[k]; alsoSet {
					t.Errorf("%s is both set and removed", k)
				}
			}
		})
	}
}

func TestCorrelationIDs(t *testing.T) {
	exts := seedExtensions(t)
	srv := newTestServer(t, nil, false)
	ext := exts["GET /api/agents"]
	tok := "Bearer " + sign(t, paidCustomer)
	tests := []struct {
		name, corr, cause string
		keepCorr          bool
		wantCause         string // "" = same as the correlation id
	}{
		{name: "well-formed ids are kept", corr: "corr-123", cause: "cause-9", keepCorr: true, wantCause: "cause-9"},
		{name: "missing ids are generated; causation follows correlation", keepCorr: false},
		{name: "bad characters are replaced", corr: "abc<script>", cause: "x y", keepCorr: false},
		{name: "overlong ids are replaced", corr: strings.Repeat("a", 129), keepCorr: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"authorization": tok}
			if tc.corr != "" {
				h[HeaderCorrelationID] = tc.corr
			}
			if tc.cause != "" {
				h[HeaderCausationID] = tc.cause
			}
			resp, _ := srv.Check(context.Background(), checkRequest(ext, "GET", "/api/agents", h))
			set := map[string]string{}
			for _, hv := range resp.GetOkResponse().GetHeaders() {
				set[hv.Header.Key] = hv.Header.Value
			}
			corr := set[HeaderCorrelationID]
			if tc.keepCorr != (corr == tc.corr) || !wellFormedID(corr) {
				t.Errorf("correlation id %q (client sent %q)", corr, tc.corr)
			}
			want := tc.wantCause
			if want == "" {
				want = corr
			}
			if set[HeaderCausationID] != want {
				t.Errorf("causation id %q, want %q", set[HeaderCausationID], want)
			}
			var echoed string
			for _, hv := range resp.GetOkResponse().GetResponseHeadersToAdd() {
				if hv.Header.Key == HeaderCorrelationID {
					echoed = hv.Header.Value
				}
			}
			if echoed != corr {
				t.Errorf("response carries %q, want %q", echoed, corr)
			}
		})
	}
}

type failingPolicy struct{}

func (failingPolicy) Decide(context.Context, *policy.Input) (*policy.Decision, error) {
	return nil, fmt.Errorf("%w: connection refused", policy.ErrUnavailable)
}

func TestPolicyFailModes(t *testing.T) {
	exts := seedExtensions(t)
	ext := exts["POST /api/v1/agents"]
	tests := []struct {
		name     string
		failOpen bool
		claims   map[string]any
		wantCode string
	}{
		{name: "closed: 503 POLICY_UNAVAILABLE", failOpen: false, claims: governorAdmin, wantCode: "POLICY_UNAVAILABLE"},
		{name: "open: allowed, marked degraded", failOpen: true, claims: governorAdmin},
		{name: "open: the Governor rule still holds", failOpen: true, claims: plainAdmin, wantCode: "GOVERNOR_REQUIRED"},
		{name: "open: a token is still required", failOpen: true, claims: nil, wantCode: "AUTH_TOKEN_MISSING"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, failingPolicy{}, tc.failOpen)
			h := map[string]string{}
			if tc.claims != nil {
				h["authorization"] = "Bearer " + sign(t, tc.claims)
			}
			resp, err := srv.Check(context.Background(), checkRequest(ext, "POST", "/api/v1/agents", h))
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantCode != "" {
				d := resp.GetDeniedResponse()
				if d == nil || !strings.Contains(d.Body, `"error_code":"`+tc.wantCode+`"`) {
					t.Fatalf("got %v, want %s", resp, tc.wantCode)
				}
				if tc.wantCode == "POLICY_UNAVAILABLE" {
					var body map[string]any
					_ = json.Unmarshal([]byte(d.Body), &body)
					if d.Status.GetCode() != 503 || body["retry_after"] != float64(30) ||
						body["constitutional_principle"] != "L0-04: Deny-by-Default" || body["error"] == nil {
						t.Errorf("body %s, status %d", d.Body, d.Status.GetCode())
					}
					var retry string
					for _, h := range d.Headers {
						if h.Header.Key == "retry-after" {
							retry = h.Header.Value
						}
					}
					if retry != "30" {
						t.Errorf("Retry-After %q", retry)
					}
				}
				return
			}
			ok := resp.GetOkResponse()
			if ok == nil {
				t.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
			}
			var degraded bool
			for _, h := range ok.ResponseHeadersToAdd {
				degraded = degraded || h.Header.Key == HeaderPolicyEnforcement && h.Header.Value == "degraded"
			}
			if !degraded {
				t.Error("fail-open allow is not marked X-Policy-Enforcement: degraded")
			}
		})
	}
}

// A route without context is a translator bug: deny, never guess.
func TestCheckWithoutRouteContextDenies(t *testing.T) {
	srv := newTestServer(t, nil, false)
	resp, err := srv.Check(context.Background(), checkRequest(nil, "GET", "/x", map[string]string{"authorization": "Bearer " + sign(t, governorAdmin)}))
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Fatalf("got %v, %v; want a denial", resp, err)
	}
}

func benchServer(b *testing.B, cacheSize int) (*Server, map[string]map[string]string) {
	eng, err := policy.NewEngine(context.Background(), policy.EngineConfig{Logger: quiet, CacheSize: cacheSize})
	if err != nil {
		b.Fatal(err)
	}
	return newTestServer(b, eng, false), seedExtensions(b)
}

// BenchmarkCheckCached: the same JWT+RBAC request again and again; the
// policy decision comes from the cache.
func BenchmarkCheckCached(b *testing.B) {
	srv, exts := benchServer(b, 0)
	req := checkRequest(exts["POST /api/v1/agents"], "POST", "/api/v1/agents",
		map[string]string{"authorization": "Bearer " + sign(b, governorAdmin), HeaderCorrelationID: "bench-1"})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, _ := srv.Check(context.Background(), req)
		if resp.GetOkResponse() == nil {
			b.Fatal("denied")
		}
	}
}

// BenchmarkCheckUncached: every request is a different agent, so every
// decision is a fresh OPA evaluation.
func BenchmarkCheckUncached(b *testing.B) {
	srv, exts := benchServer(b, 0)
	ext := exts["POST /api/agents/{id}/execute"]
	tok := "Bearer " + sign(b, governorAdmin)
	paths := make([]string, 1<<16)
	for i := range paths {
		paths[i] = fmt.Sprintf("/api/agents/a%d/execute", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		req := checkRequest(ext, "POST", paths[i%len(paths)], map[string]string{"authorization": tok})
		i++
		resp, _ := srv.Check(context.Background(), req)
		if resp.GetOkResponse() == nil {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCheckDenyNoToken(b *testing.B) {
	srv, exts := benchServer(b, 0)
	req := checkRequest(exts["POST /api/v1/agents"], "POST", "/api/v1/agents", map[string]string{})
	b.ReportAllocs()
	for b.Loop() {
		srv.Check(context.Background(), req)
	}
}

// AUTH-007: on WebSocket routes a browser may pass the token in the query
// or the subprotocol list; either way it is stripped before the upstream.
func TestWebSocketTokenForms(t *testing.T) {
	exts := seedExtensions(t)
	srv := newTestServer(t, nil, false)
	tok := sign(t, viewer)
	tests := []struct {
		name      string
		route     string
		path      string
		headers   map[string]string
		wantAllow bool
		check     func(t *testing.T, ok *authv3.OkHttpResponse)
	}{
		{name: "query token on a websocket route", route: "GET /api/ws/dashboard", path: "/api/ws/dashboard?access_token=" + tok + "&x=1",
			headers: map[string]string{"upgrade": "websocket"}, wantAllow: true,
			check: func(t *testing.T, ok *authv3.OkHttpResponse) {
				if !slices.Contains(ok.QueryParametersToRemove, "access_token") {
					t.Errorf("access_token not removed from the query: %v", ok.QueryParametersToRemove)
				}
			}},
		{name: "subprotocol token on a websocket route", route: "GET /api/ws/dashboard", path: "/api/ws/dashboard",
			headers: map[string]string{"sec-websocket-protocol": "access_token, " + tok + ", chat"}, wantAllow: true,
			check: func(t *testing.T, ok *authv3.OkHttpResponse) {
				for _, h := range ok.Headers {
					if h.Header.Key == "sec-websocket-protocol" && strings.Contains(h.Header.Value, tok) {
						t.Errorf("token still offered upstream: %q", h.Header.Value)
					}
				}
			}},
		{name: "query token is not accepted on a plain route", route: "GET /api/agents", path: "/api/agents?access_token=" + tok,
			headers: map[string]string{}, wantAllow: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := srv.Check(context.Background(), checkRequest(exts[tc.route], "GET", tc.path, tc.headers))
			if err != nil {
				t.Fatal(err)
			}
			ok := resp.GetOkResponse()
			if (ok != nil) != tc.wantAllow {
				t.Fatalf("allowed=%v, want %v (%s)", ok != nil, tc.wantAllow, resp.GetDeniedResponse().GetBody())
			}
			if tc.check != nil {
				tc.check(t, ok)
			}
		})
	}
}

// FuzzCheck feeds hostile headers and paths to the pipeline: it must never
// panic, never return a gRPC error, and every answer must be either an allow
// that sets the sandbox header or a denial with a problem body.
func FuzzCheck(f *testing.F) {
	exts := seedExtensions(f)
	srv := newTestServer(f, nil, false)
	good := "Bearer " + sign(f, trialCustomer)
	f.Add(good, "/api/agents/abc123/execute", "corr", "x-waooaw-sandbox", "trial")
	f.Add("Bearer a.b.c", "/api/agents/%2e%2e/execute?x=1", "", "x-waooaw-user-id", "root")
	f.Add(good+","+good, "/api/agents//execute", "a b", "sec-websocket-protocol", "access_token, x")
	f.Fuzz(func(t *testing.T, auth, path, corr, hk, hv string) {
		h := map[string]string{"authorization": auth, HeaderCorrelationID: corr, strings.ToLower(hk): hv}
		resp, err := srv.Check(context.Background(), checkRequest(exts["POST /api/agents/{id}/execute"], "POST", path, h))
		if err != nil {
			t.Fatalf("gRPC error: %v", err)
		}
		if ok := resp.GetOkResponse(); ok != nil {
			for _, hv := range ok.Headers {
				if hv.Header.Key == HeaderSandbox {
					return
				}
			}
			t.Fatal("allow without the sandbox header")
		}
		if d := resp.GetDeniedResponse(); d == nil || !json.Valid([]byte(d.Body)) {
			t.Fatalf("neither allow nor problem denial: %v", resp)
		}
	})
}

// The catch-all route is answered here so the 404 carries the caller's id.
func TestNotFoundRoute(t *testing.T) {
	srv := newTestServer(t, nil, false)
	ext := map[string]string{translate.CtxNotFound: "true", translate.CtxRouteKey: "not-found"}
	resp, err := srv.Check(context.Background(), checkRequest(ext, "GET", "/nope", map[string]string{HeaderCorrelationID: "corr-404"}))
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDeniedResponse()
	if d == nil || d.Status.GetCode() != 404 || !strings.Contains(d.Body, `"error_code":"ROUTE_NOT_FOUND"`) ||
		!strings.Contains(d.Body, `"correlation_id":"corr-404"`) {
		t.Fatalf("got %v", resp)
	}
}
