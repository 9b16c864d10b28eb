package source_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The file stands in for the table when there is no database, so an omitted
// column must mean what the column default means, and an explicit zero must
// stay zero rather than turn into the default.
func TestParseFile(t *testing.T) {
	minimal := func(id int64, path string) model.Row {
		return model.Row{
			ID: id, RouteVersion: 1, SourcePath: path, HTTPMethod: "GET", TargetBackend: "cp",
			TargetServiceURL: "http://127.0.0.1:8015" + path,
			IsActive:         true, RateLimitPerHour: 1000, TimeoutMS: 15000,
		}
	}
	tests := []struct {
		name       string
		yaml       string
		wantRows   []model.Row
		wantActive int
	}{
		{
			name:       "empty file",
			yaml:       "",
			wantRows:   []model.Row{},
			wantActive: 1,
		},
		{
			name: "column defaults",
			yaml: `
routes:
  - route_version: 1
    source_path: /api/agents
    http_method: GET
    target_backend: cp
    target_service_url: http://127.0.0.1:8015/api/agents
`,
			wantRows:   []model.Row{minimal(1, "/api/agents")},
			wantActive: 1,
		},
		{
			name: "omitted id is the 1-based position",
			yaml: `
active_version: 1
routes:
  - {route_version: 1, source_path: /a, http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:8015/a"}
  - {id: 42, route_version: 1, source_path: /b, http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:8015/b"}
  - {route_version: 1, source_path: /c, http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:8015/c"}
`,
			wantRows:   []model.Row{minimal(1, "/a"), minimal(42, "/b"), minimal(3, "/c")},
			wantActive: 1,
		},
		{
			name: "explicit zero and false are kept",
			yaml: `
active_version: 2
routes:
  - id: 7
    route_version: 2
    source_path: /api/agents
    http_method: GET
    target_backend: cp
    target_service_url: http://127.0.0.1:8015/api/agents
    is_active: false
    rate_limit_per_hour: 0
    timeout_ms: 0
`,
			wantRows: []model.Row{{
				ID: 7, RouteVersion: 2, SourcePath: "/api/agents", HTTPMethod: "GET", TargetBackend: "cp",
				TargetServiceURL: "http://127.0.0.1:8015/api/agents",
			}},
			wantActive: 2,
		},
		{
			name: "every column",
			yaml: `
active_version: 3
routes:
  - id: 9
    route_version: 3
    source_path: /api/agents/{id}/execute
    http_method: POST
    target_backend: cp
    target_service_url: http://127.0.0.1:8015/api/agents/{id}/execute
    middleware_stack: [auth, policy, budget, audit]
    requires_governor_role: true
    trial_mode_sandbox_url: http://127.0.0.1:8099/api/agents/{id}/execute
    rate_limit_per_hour: 500
    requires_opa_policy: trial/sandbox_route
    requires_mobile_device_token: true
    is_active: true
    permission: agent:execute
    requires_reason: true
    websocket: true
    timeout_ms: 30000
`,
			wantRows: []model.Row{{
				ID: 9, RouteVersion: 3, SourcePath: "/api/agents/{id}/execute", HTTPMethod: "POST", TargetBackend: "cp",
				TargetServiceURL:     "http://127.0.0.1:8015/api/agents/{id}/execute",
				MiddlewareStack:      json.RawMessage(`["auth","policy","budget","audit"]`),
				RequiresGovernorRole: true, TrialModeSandboxURL: "http://127.0.0.1:8099/api/agents/{id}/execute",
				RateLimitPerHour: 500, RequiresOPAPolicy: "trial/sandbox_route", RequiresMobileDeviceToken: true,
				IsActive: true, Permission: "agent:execute", RequiresReason: true, Websocket: true, TimeoutMS: 30000,
			}},
			wantActive: 3,
		},
		{
			// A bad value inside a good file is the model's business: it
			// must reach Build to be rejected with a reason, not fail the load.
			name: "malformed middleware stack is passed through raw",
			yaml: `
routes:
  - {route_version: 1, source_path: /a, http_method: GET, target_backend: cp, target_service_url: "http://127.0.0.1:8015/a", middleware_stack: "auth"}
`,
			wantRows: []model.Row{func() model.Row {
				r := minimal(1, "/a")
				r.MiddlewareStack = json.RawMessage(`"auth"`)
				return r
			}()},
			wantActive: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, active, err := source.ParseFile([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if active != tc.wantActive {
				t.Errorf("active version = %d, want %d", active, tc.wantActive)
			}
			if diff := cmp.Diff(tc.wantRows, rows); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// A file that does not parse as a whole must fail as a whole, so the last
// good snapshot keeps serving instead of a half-read table.
func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"unknown top-level field", "activ_version: 2\nroutes: []\n", "activ_version"},
		{"unknown row field", "routes:\n  - {sorce_path: /a, http_method: GET}\n", "sorce_path"},
		{"duplicate field", "routes:\n  - {source_path: /a, source_path: /b}\n", "source_path"},
		{"routes is not a list", "routes: {a: 1}\n", "parse route file"},
		{"wrong type", "routes:\n  - {rate_limit_per_hour: lots}\n", "parse route file"},
		{"not YAML", "routes: [\n", "parse route file"},
		{"over the size limit", "# " + strings.Repeat("x", 32<<20) + "\n", "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, _, err := source.ParseFile([]byte(tc.data))
			if err == nil {
				t.Fatalf("ParseFile succeeded with %d rows, want an error", len(rows))
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

// `make run` serves this file, and authz tests read it: it must stay the
// seed's 13 routes and every one of them must serve.
func TestShippedExample(t *testing.T) {
	rows, active, err := source.NewFile("../../deploy/routes.example.yaml", quiet).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 13 || active != 1 {
		t.Fatalf("%d rows, active version %d; want 13 rows of version 1", len(rows), active)
	}
	m, rej := model.Build(rows, active, model.Options{})
	if len(rej) != 0 {
		t.Errorf("the shipped example has rejected rows: %v", rej)
	}
	if len(m.Routes) != 13 {
		t.Errorf("%d routes serve, want 13", len(m.Routes))
	}
}

func TestFileLoadMissing(t *testing.T) {
	_, _, err := source.NewFile(filepath.Join(t.TempDir(), "nope.yaml"), quiet).Load(context.Background())
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

// Editors and ConfigMap mounts replace the file (write elsewhere, rename over
// it), which a watch on the file itself would miss after the first time.
func TestFileWatchSeesReplacement(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte("routes: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- source.NewFile(path, quiet).Watch(ctx, func() {
			select {
			case changed <- struct{}{}:
			default:
			}
		})
	}()

	replace := func(n int) {
		tmp := filepath.Join(dir, ".routes.yaml.tmp")
		body := "active_version: " + strings.Repeat("1", n%3+1) + "\nroutes: []\n"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	// Watch has no "ready" signal, so replace until it reports, within a
	// generous deadline; a broken watch never reports at all.
	for round := 0; ; round++ {
		replace(round)
		if waitFor(changed, 100*time.Millisecond) {
			break
		}
		if round > 100 {
			t.Fatal("Watch never reported the replaced file")
		}
	}
	// The second replacement is the one a watch on the old inode would miss.
	drain(changed)
	seen := false
	for round := 0; round < 100 && !seen; round++ {
		replace(round)
		seen = waitFor(changed, 100*time.Millisecond)
	}
	if !seen {
		t.Error("Watch did not report a second replacement")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

func TestFileWatchMissingDirectory(t *testing.T) {
	f := source.NewFile(filepath.Join(t.TempDir(), "gone", "routes.yaml"), quiet)
	if err := f.Watch(context.Background(), func() {}); err == nil {
		t.Fatal("Watch of a file in a missing directory returned nil, want an error")
	}
}

func waitFor(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func TestParseFileRejectsDuplicateIDs(t *testing.T) {
	doc := "routes:\n  - {id: 2, route_version: 1, source_path: /a, http_method: GET, target_backend: cp, target_service_url: http://x/a}\n" +
		"  - {route_version: 1, source_path: /b, http_method: GET, target_backend: cp, target_service_url: http://x/b}\n"
	if _, _, err := source.ParseFile([]byte(doc)); err == nil || !strings.Contains(err.Error(), "both have id 2") {
		t.Fatalf("got %v, want a duplicate id error", err)
	}
}
