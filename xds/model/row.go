// Package model turns gateway_routes rows into a validated, typed model of
// what Envoy should serve. It knows nothing about SQL or Envoy protos: the
// source packages produce Rows, the translate package consumes a Model.
package model

import "encoding/json"

// Row is one gateway_routes row in the shape the table (and the YAML file
// source) stores it. Nullable columns arrive already coalesced to their
// column defaults; MiddlewareStack stays raw JSON so that a malformed value
// rejects only its own row instead of failing the whole load.
type Row struct {
	ID                        int64           `json:"id"`
	RouteVersion              int             `json:"route_version"`
	SourcePath                string          `json:"source_path"`
	HTTPMethod                string          `json:"http_method"`
	TargetBackend             string          `json:"target_backend"`
	TargetServiceURL          string          `json:"target_service_url"`
	MiddlewareStack           json.RawMessage `json:"middleware_stack,omitempty"`
	RequiresGovernorRole      bool            `json:"requires_governor_role"`
	TrialModeSandboxURL       string          `json:"trial_mode_sandbox_url,omitempty"`
	RateLimitPerHour          int             `json:"rate_limit_per_hour"`
	RequiresOPAPolicy         string          `json:"requires_opa_policy,omitempty"`
	RequiresMobileDeviceToken bool            `json:"requires_mobile_device_token"`
	IsActive                  bool            `json:"is_active"`

	// Columns this project adds, each with a default in the migration.
	Permission     string `json:"permission,omitempty"`
	RequiresReason bool   `json:"requires_reason"`
	Websocket      bool   `json:"websocket"`
	TimeoutMS      int    `json:"timeout_ms"`
}

// Column defaults, shared by the file source (which has no DB to apply them)
// and by the tests.
const (
	DefaultRateLimitPerHour = 1000
	DefaultTimeoutMS        = 15000
)
