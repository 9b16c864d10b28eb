package model_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/translate"
)

// goodRow is a row every check accepts; cases change one thing about it.
func goodRow(id int64, method, path string) model.Row {
	return model.Row{
		ID: id, RouteVersion: 1, SourcePath: path, HTTPMethod: method,
		TargetBackend: "cp", TargetServiceURL: "https://cp.example.com" + path,
		MiddlewareStack: json.RawMessage(`["auth","audit"]`), RateLimitPerHour: model.DefaultRateLimitPerHour,
		IsActive: true, TimeoutMS: model.DefaultTimeoutMS,
	}
}

func routeIDs(m *model.Model) []int64 {
	var ids []int64
	for _, r := range m.Routes {
		ids = append(ids, r.ID)
	}
	return ids
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Each reason names the field at fault so that `gatewayctl routes validate`
// can point the platform team at the column to fix; the test pins the field
// and a stable part of the reason.
func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*model.Row)
		wantField  string
		wantReason string
	}{
		{"version zero", func(r *model.Row) { r.RouteVersion = 0 }, "route_version", "must be a positive integer"},
		{"negative version", func(r *model.Row) { r.RouteVersion = -1 }, "route_version", "must be a positive integer"},
		{"unknown method", func(r *model.Row) { r.HTTPMethod = "FETCH" }, "http_method", `"FETCH" is not one of`},
		{"lower-case method", func(r *model.Row) { r.HTTPMethod = "get" }, "http_method", `"get" is not one of`},
		{"empty method", func(r *model.Row) { r.HTTPMethod = "" }, "http_method", "is not one of"},
		{"bad template", func(r *model.Row) { r.SourcePath = "api/agents" }, "source_path", "must start with /"},
		{"six variables", func(r *model.Row) { r.SourcePath = "/{a}/{b}/{c}/{d}/{e}/{f}" }, "source_path", "at most 5"},
		{"upper-case backend", func(r *model.Row) { r.TargetBackend = "CP" }, "target_backend", "must be a lower-case name"},
		{"empty backend", func(r *model.Row) { r.TargetBackend = "" }, "target_backend", "must be a lower-case name"},
		{"backend with a space", func(r *model.Row) { r.TargetBackend = "cp backend" }, "target_backend", "must be a lower-case name"},
		{"33-character backend", func(r *model.Row) { r.TargetBackend = strings.Repeat("b", 33) }, "target_backend", "must be a lower-case name"},
		{"ftp scheme", func(r *model.Row) { r.TargetServiceURL = "ftp://cp.example.com/api/agents" }, "target_service_url", "scheme must be http or https"},
		{"no scheme", func(r *model.Row) { r.TargetServiceURL = "cp.example.com/api/agents" }, "target_service_url", "scheme must be http or https"},
		{"no host", func(r *model.Row) { r.TargetServiceURL = "https:///api/agents" }, "target_service_url", "no host"},
		{"query", func(r *model.Row) { r.TargetServiceURL = "https://cp.example.com/api/agents?debug=1" }, "target_service_url", "must not carry a query"},
		{"fragment", func(r *model.Row) { r.TargetServiceURL = "https://cp.example.com/api/agents#x" }, "target_service_url", "must not carry a query"},
		{"user info", func(r *model.Row) { r.TargetServiceURL = "https://u:p@cp.example.com/api/agents" }, "target_service_url", "must not carry a query"},
		{"port zero", func(r *model.Row) { r.TargetServiceURL = "https://cp.example.com:0/api/agents" }, "target_service_url", "bad port"},
		{"port out of range", func(r *model.Row) { r.TargetServiceURL = "https://cp.example.com:70000/api/agents" }, "target_service_url", "bad port"},
		{"unparsable URL", func(r *model.Row) { r.TargetServiceURL = "http://[::1/api/agents" }, "target_service_url", "not a URL"},
		{"URL over 2048 characters", func(r *model.Row) {
			r.TargetServiceURL = "https://cp.example.com/" + strings.Repeat("a", 2048)
		}, "target_service_url", "longer than 2048"},
		// Envoy checks the upstream TLS context's sni (max 255 bytes) when it
		// loads the cluster, and DNS names stop at 253: such a host would
		// NACK the whole CDS update instead of dropping one row.
		{"host longer than a DNS name", func(r *model.Row) {
			r.TargetServiceURL = "https://" + strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." +
				strings.Repeat("c", 60) + "." + strings.Repeat("d", 60) + "." + strings.Repeat("e", 60) + ".example.com/api/agents"
		}, "target_service_url", "host"},
		{"upstream variable missing from source_path", func(r *model.Row) {
			r.SourcePath, r.TargetServiceURL = "/api/agents/{id}", "https://cp.example.com/api/agents/{other}"
		}, "target_service_url", "path variable {other} does not appear in source_path"},
		{"anonymous variable in upstream path", func(r *model.Row) {
			r.SourcePath, r.TargetServiceURL = "/api/agents/*", "https://cp.example.com/api/agents/*"
		}, "target_service_url", "only named variables"},
		{"glob in upstream path", func(r *model.Row) {
			r.SourcePath, r.TargetServiceURL = "/api/**", "https://cp.example.com/api/**"
		}, "target_service_url", "only named variables"},
		{"bad upstream path", func(r *model.Row) { r.TargetServiceURL = "https://cp.example.com/api//agents" }, "target_service_url", "path: empty segment"},
		{"sandbox with a bad scheme", func(r *model.Row) { r.TrialModeSandboxURL = "ftp://sandbox.example.com/x" }, "trial_mode_sandbox_url", "scheme must be http or https"},
		{"sandbox without a host", func(r *model.Row) { r.TrialModeSandboxURL = "sandbox" }, "trial_mode_sandbox_url", "scheme must be http or https"},
		{"sandbox variable missing from source_path", func(r *model.Row) {
			r.SourcePath = "/api/agents/{id}/execute"
			r.TargetServiceURL = "https://cp.example.com/api/agents/{id}/execute"
			r.TrialModeSandboxURL = "https://sandbox.example.com/api/agents/{agent}/execute"
		}, "trial_mode_sandbox_url", "path variable {agent} does not appear"},
		{"middleware object", func(r *model.Row) { r.MiddlewareStack = json.RawMessage(`{"auth":true}`) }, "middleware_stack", "must be a JSON array of strings"},
		{"middleware string", func(r *model.Row) { r.MiddlewareStack = json.RawMessage(`"auth"`) }, "middleware_stack", "must be a JSON array of strings"},
		{"middleware numbers", func(r *model.Row) { r.MiddlewareStack = json.RawMessage(`[1]`) }, "middleware_stack", "must be a JSON array of strings"},
		{"middleware not JSON", func(r *model.Row) { r.MiddlewareStack = json.RawMessage(`[auth`) }, "middleware_stack", "must be a JSON array of strings"},
		// A typo would silently skip a check, so it must not serve.
		{"middleware typo", func(r *model.Row) { r.MiddlewareStack = json.RawMessage(`["auth","rbca"]`) }, "middleware_stack", `unknown middleware "rbca"`},
		{"negative rate limit", func(r *model.Row) { r.RateLimitPerHour = -1 }, "rate_limit_per_hour", "must not be negative"},
		{"OPA policy without rule", func(r *model.Row) { r.RequiresOPAPolicy = "rbac" }, "requires_opa_policy", "must look like package/rule"},
		{"OPA policy upper case", func(r *model.Row) { r.RequiresOPAPolicy = "RBAC/allow" }, "requires_opa_policy", "must look like package/rule"},
		{"OPA policy with a space", func(r *model.Row) { r.RequiresOPAPolicy = "rbac allow" }, "requires_opa_policy", "must look like package/rule"},
		{"permission with a dot", func(r *model.Row) { r.Permission = "agent.create" }, "permission", "must look like resource:action"},
		{"permission upper case", func(r *model.Row) { r.Permission = "Agent:create" }, "permission", "must look like resource:action"},
		{"negative timeout", func(r *model.Row) { r.TimeoutMS = -1 }, "timeout_ms", "must be between 0 and 600000"},
		{"timeout over ten minutes", func(r *model.Row) { r.TimeoutMS = 600001 }, "timeout_ms", "must be between 0 and 600000"},
		// The file source reads timeout_ms as a Go int: a value whose
		// nanoseconds wrap around int64 must not pass as a tiny timeout.
		{"timeout overflowing time.Duration", func(r *model.Row) { r.TimeoutMS = 18446744073710 }, "timeout_ms", "must be between 0 and 600000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row := goodRow(7, "GET", "/api/agents")
			tc.edit(&row)
			version := max(row.RouteVersion, 1)
			if row.RouteVersion < 1 {
				// Build only looks at the active version; Validate sees them all.
				rej := model.Validate([]model.Row{row}, model.Options{})
				checkOneRejection(t, rej, row, tc.wantField, tc.wantReason)
				return
			}
			m, rej := model.Build([]model.Row{row}, version, model.Options{})
			if len(m.Routes) != 0 {
				t.Errorf("rejected row still serves: %+v", m.Routes)
			}
			if len(m.Clusters) != 0 {
				t.Errorf("rejected row still has clusters: %+v", m.Clusters)
			}
			checkOneRejection(t, rej, row, tc.wantField, tc.wantReason)
		})
	}
}

func checkOneRejection(t *testing.T, rej []model.Rejection, row model.Row, field, reason string) {
	t.Helper()
	if len(rej) != 1 {
		t.Fatalf("got %d rejections %v, want 1", len(rej), rej)
	}
	r := rej[0]
	if r.RowID != row.ID || r.Version != row.RouteVersion {
		t.Errorf("rejection is for row %d version %d, want row %d version %d", r.RowID, r.Version, row.ID, row.RouteVersion)
	}
	if r.Field != field {
		t.Errorf("Field = %q, want %q (reason %q)", r.Field, field, r.Reason)
	}
	if !strings.Contains(r.Reason, reason) {
		t.Errorf("Reason = %q, want it to contain %q", r.Reason, reason)
	}
	if !strings.Contains(r.Error(), fmt.Sprintf("route row %d", row.ID)) {
		t.Errorf("Error() = %q does not name the row", r.Error())
	}
}

// The boundaries of each check, from the accepting side.
func TestBuildAccepts(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*model.Row)
		check func(*testing.T, model.Route)
	}{
		{"NULL middleware stack is empty", func(r *model.Row) { r.MiddlewareStack = nil }, func(t *testing.T, rt model.Route) {
			if rt.MiddlewareStack == nil || len(rt.MiddlewareStack) != 0 {
				t.Errorf("MiddlewareStack = %#v, want an empty, non-nil list", rt.MiddlewareStack)
			}
		}},
		{"JSON null middleware stack is empty", func(r *model.Row) { r.MiddlewareStack = json.RawMessage(`null`) }, func(t *testing.T, rt model.Route) {
			if len(rt.MiddlewareStack) != 0 {
				t.Errorf("MiddlewareStack = %#v, want empty", rt.MiddlewareStack)
			}
		}},
		{"every known middleware", func(r *model.Row) {
			r.MiddlewareStack = json.RawMessage(`["auth","rbac","policy","opa","budget","audit","rate_limit"]`)
		}, func(t *testing.T, rt model.Route) {
			if len(rt.MiddlewareStack) != 7 {
				t.Errorf("MiddlewareStack = %v", rt.MiddlewareStack)
			}
		}},
		{"zero rate limit", func(r *model.Row) { r.RateLimitPerHour = 0 }, nil},
		{"zero timeout disables it", func(r *model.Row) { r.TimeoutMS = 0 }, func(t *testing.T, rt model.Route) {
			if rt.Timeout != 0 {
				t.Errorf("Timeout = %v", rt.Timeout)
			}
		}},
		{"ten-minute timeout", func(r *model.Row) { r.TimeoutMS = 600000 }, func(t *testing.T, rt model.Route) {
			if rt.Timeout != 10*time.Minute {
				t.Errorf("Timeout = %v", rt.Timeout)
			}
		}},
		{"nested OPA policy", func(r *model.Row) { r.RequiresOPAPolicy = "trial/sandbox_route" }, nil},
		{"permission", func(r *model.Row) { r.Permission = "agent:create" }, nil},
		{"upper-case host and scheme", func(r *model.Row) { r.TargetServiceURL = "HTTPS://CP.Example.COM/api/agents" }, func(t *testing.T, rt model.Route) {
			want := model.Upstream{Scheme: "https", Host: "cp.example.com", Port: 443, PathTemplate: "/api/agents"}
			if rt.Upstream != want {
				t.Errorf("Upstream = %+v, want %+v", rt.Upstream, want)
			}
		}},
		{"flags are carried", func(r *model.Row) {
			r.RequiresGovernorRole, r.RequiresMobileDeviceToken, r.RequiresReason, r.Websocket = true, true, true, true
		}, func(t *testing.T, rt model.Route) {
			if !rt.RequiresGovernor || !rt.RequiresDeviceToken || !rt.RequiresReason || !rt.Websocket {
				t.Errorf("flags lost: %+v", rt)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row := goodRow(3, "GET", "/api/agents")
			tc.edit(&row)
			m, rej := model.Build([]model.Row{row}, 1, model.Options{})
			if len(rej) != 0 {
				t.Fatalf("rejected: %v", rej)
			}
			if len(m.Routes) != 1 {
				t.Fatalf("%d routes, want 1", len(m.Routes))
			}
			if tc.check != nil {
				tc.check(t, m.Routes[0])
			}
		})
	}
}

// The earlier row (by id, which is insertion order in gateway_routes) keeps
// serving when a later one collides with it: adding a row must never take an
// existing route away, whatever order the source returned the rows in.
func TestBuildConflicts(t *testing.T) {
	tests := []struct {
		name       string
		rows       []model.Row
		wantRoutes []int64
		wantRej    map[int64]string // row id -> reason substring
	}{
		{
			name:       "same shape with other variable names",
			rows:       []model.Row{goodRow(5, "GET", "/api/agents/{other}"), goodRow(3, "GET", "/api/agents/{id}")},
			wantRoutes: []int64{3},
			wantRej:    map[int64]string{5: "conflicts with row 3"},
		},
		{
			name: "anonymous variable collides with a named one",
			rows: func() []model.Row {
				anon := goodRow(9, "POST", "/api/x/*")
				anon.TargetServiceURL = "https://cp.example.com" // "*" cannot be substituted upstream
				return []model.Row{anon, goodRow(2, "POST", "/api/x/{id}")}
			}(),
			wantRoutes: []int64{2},
			wantRej:    map[int64]string{9: "conflicts with row 2"},
		},
		{
			name:       "three copies: both later ones name the first",
			rows:       []model.Row{goodRow(30, "GET", "/a"), goodRow(10, "GET", "/a"), goodRow(20, "GET", "/a")},
			wantRoutes: []int64{10},
			wantRej:    map[int64]string{20: "conflicts with row 10", 30: "conflicts with row 10"},
		},
		{
			name:       "other method is no conflict",
			rows:       []model.Row{goodRow(1, "GET", "/api/agents"), goodRow(2, "POST", "/api/agents")},
			wantRoutes: []int64{1, 2},
		},
		{
			name:       "variable and literal overlap but do not conflict",
			rows:       []model.Row{goodRow(1, "GET", "/api/agents/{id}"), goodRow(2, "GET", "/api/agents/create")},
			wantRoutes: []int64{2, 1},
		},
		{
			// A row that is rejected anyway must not block a good one.
			name: "rejected earlier row does not claim the path",
			rows: func() []model.Row {
				bad := goodRow(1, "GET", "/api/agents")
				bad.TargetBackend = "BAD"
				return []model.Row{bad, goodRow(2, "GET", "/api/agents")}
			}(),
			wantRoutes: []int64{2},
			wantRej:    map[int64]string{1: "lower-case name"},
		},
	}
	for _, tc := range tests {
		for _, order := range []string{"given", "reversed"} {
			t.Run(tc.name+"/"+order, func(t *testing.T) {
				rows := slices.Clone(tc.rows)
				if order == "reversed" {
					slices.Reverse(rows)
				}
				m, rej := model.Build(rows, 1, model.Options{})
				if diff := cmp.Diff(tc.wantRoutes, routeIDs(m)); diff != "" {
					t.Errorf("served route ids (-want +got):\n%s", diff)
				}
				got := map[int64]string{}
				for _, r := range rej {
					got[r.RowID] = r.Reason
				}
				if len(got) != len(tc.wantRej) {
					t.Errorf("rejections %v, want rows %v", rej, tc.wantRej)
				}
				for id, want := range tc.wantRej {
					if !strings.Contains(got[id], want) {
						t.Errorf("row %d: reason %q, want it to contain %q", id, got[id], want)
					}
				}
			})
		}
	}
}

// Blue/green: only active rows of the version being served matter to Build,
// while Validate checks a green version before it is switched on.
func TestBuildAndValidateVersions(t *testing.T) {
	inactive := goodRow(2, "FETCH", "/api/inactive") // bad, but not active
	inactive.IsActive = false
	green := goodRow(3, "GET", "/api/agents") // same path as row 1, other version
	green.RouteVersion = 2
	greenBad := goodRow(4, "GET", "no-slash")
	greenBad.RouteVersion = 2
	greenDup := goodRow(5, "GET", "/api/agents")
	greenDup.RouteVersion = 2
	blueBad := goodRow(6, "GET", "/api/blue")
	blueBad.TargetBackend = "Blue"
	rows := []model.Row{goodRow(1, "GET", "/api/agents"), inactive, green, greenBad, greenDup, blueBad}

	rejected := func(rej []model.Rejection) []int64 {
		var ids []int64
		for _, r := range rej {
			ids = append(ids, r.RowID)
		}
		slices.Sort(ids)
		return ids
	}
	tests := []struct {
		name       string
		active     int
		wantRoutes []int64
		wantRej    []int64
	}{
		{"blue", 1, []int64{1}, []int64{6}},
		{"green", 2, []int64{3}, []int64{4, 5}},
		{"version nobody uses", 9, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, rej := model.Build(rows, tc.active, model.Options{})
			if m.ActiveVersion != tc.active {
				t.Errorf("ActiveVersion = %d, want %d", m.ActiveVersion, tc.active)
			}
			if diff := cmp.Diff(tc.wantRoutes, routeIDs(m)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantRej, rejected(rej)); diff != "" {
				t.Errorf("rejected rows (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("Validate sees every version", func(t *testing.T) {
		// Row 3 repeats row 1's path in another version: not a conflict.
		if diff := cmp.Diff([]int64{4, 5, 6}, rejected(model.Validate(rows, model.Options{}))); diff != "" {
			t.Errorf("rejected rows (-want +got):\n%s", diff)
		}
	})
}

// GATEWAY_USE_INTERNAL_URLS swaps scheme, host and port and keeps the path.
func TestInternalURLs(t *testing.T) {
	opts := model.Options{InternalURLs: map[string]*url.URL{
		"cp":      mustURL(t, "http://127.0.0.1:8015"),
		"plant":   mustURL(t, "http://plant.internal"),
		"sandbox": mustURL(t, "http://127.0.0.1:8099"),
	}}
	tests := []struct {
		name        string
		row         model.Row
		wantUp      model.Upstream
		wantSandbox *model.Upstream
	}{
		{
			name: "mapped backend and sandbox",
			row: func() model.Row {
				r := goodRow(1, "POST", "/api/agents/{id}/execute")
				r.TargetServiceURL = "https://cp.demo.waooaw.com/api/agents/{id}/execute"
				r.TrialModeSandboxURL = "https://sandbox.demo.waooaw.com/trial/agents/{id}/execute"
				return r
			}(),
			wantUp:      model.Upstream{Scheme: "http", Host: "127.0.0.1", Port: 8015, PathTemplate: "/api/agents/{id}/execute"},
			wantSandbox: &model.Upstream{Scheme: "http", Host: "127.0.0.1", Port: 8099, PathTemplate: "/trial/agents/{id}/execute"},
		},
		{
			name: "mapping without a port takes the scheme's",
			row: func() model.Row {
				r := goodRow(2, "GET", "/api/v1/agents")
				r.TargetBackend, r.TargetServiceURL = "plant", "https://plant.demo.waooaw.com:8443/api/v1/agents"
				return r
			}(),
			wantUp: model.Upstream{Scheme: "http", Host: "plant.internal", Port: 80, PathTemplate: "/api/v1/agents"},
		},
		{
			name: "unmapped backend keeps its public URL",
			row: func() model.Row {
				r := goodRow(3, "GET", "/api/admin/customers")
				r.TargetBackend, r.TargetServiceURL = "pp", "https://pp.demo.waooaw.com/api/customers"
				return r
			}(),
			wantUp: model.Upstream{Scheme: "https", Host: "pp.demo.waooaw.com", Port: 443, PathTemplate: "/api/customers"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, rej := model.Build([]model.Row{tc.row}, 1, opts)
			if len(rej) != 0 || len(m.Routes) != 1 {
				t.Fatalf("routes %v, rejections %v", m.Routes, rej)
			}
			rt := m.Routes[0]
			if rt.Upstream != tc.wantUp {
				t.Errorf("Upstream = %+v, want %+v", rt.Upstream, tc.wantUp)
			}
			if diff := cmp.Diff(tc.wantSandbox, rt.Sandbox); diff != "" {
				t.Errorf("Sandbox (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpstreamNames(t *testing.T) {
	tests := []struct {
		up            model.Upstream
		wantAuthority string
		wantCluster   string
	}{
		{model.Upstream{Scheme: "https", Host: "cp.demo.waooaw.com", Port: 443}, "cp.demo.waooaw.com", "https_cp.demo.waooaw.com_443"},
		{model.Upstream{Scheme: "http", Host: "cp.internal", Port: 80}, "cp.internal", "http_cp.internal_80"},
		{model.Upstream{Scheme: "https", Host: "cp.internal", Port: 8443}, "cp.internal:8443", "https_cp.internal_8443"},
		{model.Upstream{Scheme: "http", Host: "127.0.0.1", Port: 8015}, "127.0.0.1:8015", "http_127.0.0.1_8015"},
		// A port is default only for its own scheme.
		{model.Upstream{Scheme: "http", Host: "cp.internal", Port: 443}, "cp.internal:443", "http_cp.internal_443"},
		{model.Upstream{Scheme: "https", Host: "cp.internal", Port: 80}, "cp.internal:80", "https_cp.internal_80"},
		{model.Upstream{Scheme: "http", Host: "::1", Port: 8015}, "[::1]:8015", "http_::1_8015"},
		// A Host header must bracket an IPv6 literal with or without a port
		// (RFC 3986 IP-literal); "::1" alone is not a valid authority.
		{model.Upstream{Scheme: "http", Host: "::1", Port: 80}, "[::1]", "http_::1_80"},
	}
	for _, tc := range tests {
		t.Run(tc.wantCluster, func(t *testing.T) {
			if got := tc.up.Authority(); got != tc.wantAuthority {
				t.Errorf("Authority() = %q, want %q", got, tc.wantAuthority)
			}
			if got := tc.up.ClusterName(); got != tc.wantCluster {
				t.Errorf("ClusterName() = %q, want %q", got, tc.wantCluster)
			}
		})
	}
}

// A rewrite costs an extension per route in Envoy and changes what the
// upstream sees, so it must appear exactly when the paths differ.
func TestNeedsRewrite(t *testing.T) {
	tests := []struct {
		name, path, target string
		want               bool
	}{
		{"same path", "/api/agents/{id}", "https://cp.example.com/api/agents/{id}", false},
		{"no upstream path passes the public one through", "/api/agents/{id}", "https://cp.example.com", false},
		{"other prefix", "/api/admin/customers", "https://pp.example.com/api/customers", true},
		{"variable moved", "/api/agents/{id}/execute", "https://cp.example.com/run/{id}", true},
		{"variable dropped", "/api/agents/{id}", "https://cp.example.com/api/agents", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			row := goodRow(1, "GET", tc.path)
			row.TargetServiceURL = tc.target
			m, rej := model.Build([]model.Row{row}, 1, model.Options{})
			if len(rej) != 0 {
				t.Fatal(rej)
			}
			rt := m.Routes[0]
			if got := rt.NeedsRewrite(rt.Upstream); got != tc.want {
				t.Errorf("NeedsRewrite = %v (upstream path %q, public %q), want %v", got, rt.Upstream.PathTemplate, rt.Path.Raw, tc.want)
			}
		})
	}
}

// Envoy gets one cluster per scheme+host+port however many routes use it,
// and the sandbox is a cluster like any other.
func TestBuildClustersAndOrder(t *testing.T) {
	withTarget := func(r model.Row, target, sandbox string) model.Row {
		r.TargetServiceURL, r.TrialModeSandboxURL = target, sandbox
		return r
	}
	rows := []model.Row{
		withTarget(goodRow(1, "GET", "/api/**"), "https://cp.example.com", ""),
		withTarget(goodRow(2, "GET", "/api/agents/{id}"), "https://cp.example.com/agents/{id}", ""),
		withTarget(goodRow(3, "GET", "/api/agents/create"), "https://cp.example.com:443/agents/new", ""),
		withTarget(goodRow(4, "POST", "/api/agents/{id}/execute"), "https://cp.example.com:8443/x/{id}", "https://sandbox.example.com/x/{id}"),
		withTarget(goodRow(5, "GET", "/api/plain"), "http://cp.example.com/api/plain", ""),
		withTarget(goodRow(6, "GET", "/api/agents"), "https://cp.example.com/api/agents", "http://sandbox.example.com:8099"),
	}
	m, rej := model.Build(rows, 1, model.Options{})
	if len(rej) != 0 {
		t.Fatal(rej)
	}
	var names []string
	for _, c := range m.Clusters {
		names = append(names, c.ClusterName())
		if c.PathTemplate != "" {
			t.Errorf("cluster %s carries path %q: clusters are shared by routes with different paths", c.ClusterName(), c.PathTemplate)
		}
	}
	want := []string{"http_cp.example.com_80", "http_sandbox.example.com_8099", "https_cp.example.com_443", "https_cp.example.com_8443", "https_sandbox.example.com_443"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("clusters (-want +got):\n%s", diff)
	}

	// Most specific first: Envoy takes the first route that matches.
	wantOrder := []int64{3, 4, 2, 6, 5, 1}
	if diff := cmp.Diff(wantOrder, routeIDs(m)); diff != "" {
		t.Errorf("route order (-want +got):\n%s", diff)
	}

	byID := map[int64]model.Route{}
	for _, r := range m.Routes {
		byID[r.ID] = r
	}
	if byID[1].Sandbox != nil {
		t.Errorf("row without trial_mode_sandbox_url has sandbox %+v", byID[1].Sandbox)
	}
	wantSandbox := model.Upstream{Scheme: "https", Host: "sandbox.example.com", Port: 443, PathTemplate: "/x/{id}"}
	if sb := byID[4].Sandbox; sb == nil || *sb != wantSandbox {
		t.Errorf("row 4 sandbox = %+v, want %+v", sb, wantSandbox)
	}
	// A sandbox URL with no path serves the public path.
	if sb := byID[6].Sandbox; sb == nil || sb.PathTemplate != "/api/agents" || byID[6].NeedsRewrite(*sb) {
		t.Errorf("row 6 sandbox = %+v, want the public path passed through", sb)
	}
}

// fuzzBase is the row that must keep serving whatever the fuzzed row holds.
var fuzzBase = goodRow(1, "GET", "/api/base/{id}")

func FuzzBuildRow(f *testing.F) {
	f.Add("/api/agents/{id}", "GET", "cp", "https://cp.example.com/api/agents/{id}", "", `["auth"]`, "rbac/allow", "agent:view")
	f.Add("/api/agents/{id}/execute", "POST", "cp", "https://cp.example.com/x/{id}", "https://sandbox.example.com/x/{id}", `[]`, "", "")
	f.Add("/api/base/{x}", "GET", "cp", "http://cp.example.com", "", "null", "", "")
	f.Add("/api/**", "DELETE", "plant", "http://10.0.0.1:8000", "http://[::1]:9", `["budget"]`, "trial/sandbox_route", "")
	f.Add("api", "get", "CP", "ftp://x", "sandbox", `{"a":1}`, "rbac", "a.b")
	f.Add("/a/{id}", "PUT", "pp", "https://h/a/{nope}", "https://u@h/", `["rbca"]`, "x/y z", "A:b")
	f.Fuzz(func(t *testing.T, path, method, backend, target, sandbox, stack, opa, permission string) {
		row := model.Row{
			ID: 2, RouteVersion: 1, SourcePath: path, HTTPMethod: method, TargetBackend: backend,
			TargetServiceURL: target, TrialModeSandboxURL: sandbox, MiddlewareStack: json.RawMessage(stack),
			RequiresOPAPolicy: opa, Permission: permission, IsActive: true,
			RateLimitPerHour: model.DefaultRateLimitPerHour, TimeoutMS: model.DefaultTimeoutMS,
		}
		rows := []model.Row{row, fuzzBase}
		m, rej := model.Build(rows, 1, model.Options{})

		served := map[int64]int{}
		for _, r := range m.Routes {
			served[r.ID]++
		}
		rejected := map[int64]int{}
		for _, r := range rej {
			rejected[r.RowID]++
			if r.Field == "" || r.Reason == "" {
				t.Fatalf("rejection without field or reason: %+v", r)
			}
		}
		if served[1] != 1 || rejected[1] != 0 {
			t.Fatalf("the earlier good row stopped serving: routes %v, rejections %v", m.Routes, rej)
		}
		if served[2]+rejected[2] != 1 {
			t.Fatalf("row 2 served %d times and rejected %d times, want exactly one of the two", served[2], rejected[2])
		}
		if diff := cmp.Diff(rej, model.Validate(rows, model.Options{})); diff != "" {
			t.Fatalf("Validate and Build disagree on a single-version table (-build +validate):\n%s", diff)
		}

		// Whatever Build accepts, Translate must accept as a whole: an error
		// there is a system fault that freezes every route, not just this one.
		res, dropped, err := translate.Translate(m, translate.Options{})
		if err != nil {
			t.Fatalf("Translate failed on a built model: %v\nrow: %+v", err, row)
		}
		for _, d := range dropped {
			if d.RowID == 1 {
				t.Fatalf("the good row was dropped by Translate: %v", d)
			}
		}
		if len(res.Clusters) != len(m.Clusters) {
			t.Fatalf("%d clusters translated from %d", len(res.Clusters), len(m.Clusters))
		}
	})
}
