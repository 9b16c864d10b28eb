package source

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
	"sigs.k8s.io/yaml"

	"github.com/waooaw/policygateway/xds/model"
)

// maxFileBytes bounds what a route file may hold (10,000 routes fit easily).
const maxFileBytes = 32 << 20

// File reads routes from a YAML file in the gateway_routes row shape:
//
//	active_version: 1
//	routes:
//	  - id: 1
//	    route_version: 1
//	    source_path: /api/agents
//	    http_method: GET
//	    ...
//
// Omitted columns take the table's defaults; an omitted id is the row's
// 1-based position. A file that does not parse is an error as a whole (the
// last good snapshot keeps serving); a bad row inside a good file only
// rejects itself, as with PostgreSQL.
type File struct {
	path string
	log  *slog.Logger
}

func NewFile(path string, log *slog.Logger) *File {
	return &File{path: path, log: log.With("component", "route-source", "source", "file", "path", path)}
}

type fileDoc struct {
	ActiveVersion *int      `json:"active_version"`
	Routes        []fileRow `json:"routes"`
}

// fileRow uses pointers where the column default differs from Go's zero value.
type fileRow struct {
	ID                        int64           `json:"id"`
	RouteVersion              int             `json:"route_version"`
	SourcePath                string          `json:"source_path"`
	HTTPMethod                string          `json:"http_method"`
	TargetBackend             string          `json:"target_backend"`
	TargetServiceURL          string          `json:"target_service_url"`
	MiddlewareStack           json.RawMessage `json:"middleware_stack"`
	RequiresGovernorRole      bool            `json:"requires_governor_role"`
	TrialModeSandboxURL       string          `json:"trial_mode_sandbox_url"`
	RateLimitPerHour          *int            `json:"rate_limit_per_hour"`
	RequiresOPAPolicy         string          `json:"requires_opa_policy"`
	RequiresMobileDeviceToken bool            `json:"requires_mobile_device_token"`
	IsActive                  *bool           `json:"is_active"`
	Permission                string          `json:"permission"`
	RequiresReason            bool            `json:"requires_reason"`
	Websocket                 bool            `json:"websocket"`
	TimeoutMS                 *int            `json:"timeout_ms"`
}

// ParseFile decodes a route file's bytes.
func ParseFile(data []byte) ([]model.Row, int, error) {
	if len(data) > maxFileBytes {
		return nil, 0, fmt.Errorf("route file is %d bytes, limit %d", len(data), maxFileBytes)
	}
	var doc fileDoc
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, 0, fmt.Errorf("parse route file: %w", err)
	}
	active := 1
	if doc.ActiveVersion != nil {
		active = *doc.ActiveVersion
	}
	rows := make([]model.Row, 0, len(doc.Routes))
	seen := make(map[int64]int, len(doc.Routes))
	for i, f := range doc.Routes {
		r := model.Row{
			ID: f.ID, RouteVersion: f.RouteVersion, SourcePath: f.SourcePath, HTTPMethod: f.HTTPMethod,
			TargetBackend: f.TargetBackend, TargetServiceURL: f.TargetServiceURL, MiddlewareStack: f.MiddlewareStack,
			RequiresGovernorRole: f.RequiresGovernorRole, TrialModeSandboxURL: f.TrialModeSandboxURL,
			RateLimitPerHour: model.DefaultRateLimitPerHour, RequiresOPAPolicy: f.RequiresOPAPolicy,
			RequiresMobileDeviceToken: f.RequiresMobileDeviceToken, IsActive: true, Permission: f.Permission,
			RequiresReason: f.RequiresReason, Websocket: f.Websocket, TimeoutMS: model.DefaultTimeoutMS,
		}
		if r.ID == 0 {
			r.ID = int64(i + 1)
		}
		// Ids name routes in Envoy and decide conflicts: they must be unique.
		if j, dup := seen[r.ID]; dup {
			return nil, 0, fmt.Errorf("route file: routes %d and %d both have id %d", j+1, i+1, r.ID)
		}
		seen[r.ID] = i
		if f.RateLimitPerHour != nil {
			r.RateLimitPerHour = *f.RateLimitPerHour
		}
		if f.IsActive != nil {
			r.IsActive = *f.IsActive
		}
		if f.TimeoutMS != nil {
			r.TimeoutMS = *f.TimeoutMS
		}
		rows = append(rows, r)
	}
	return rows, active, nil
}

func (f *File) Load(ctx context.Context) ([]model.Row, int, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, 0, fmt.Errorf("read route file: %w", err)
	}
	return ParseFile(data)
}

// Watch watches the file's directory, because editors and config-map
// mounts replace a file rather than write it in place.
func (f *File) Watch(ctx context.Context, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch route file: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(f.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	name := filepath.Clean(f.path)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) == name {
				changed()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			f.log.Warn("route file watch error", "err", err)
		}
	}
}
