package model

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Model is everything Envoy needs to serve one route version.
type Model struct {
	ActiveVersion int
	Routes        []Route    // most specific first
	Clusters      []Upstream // one per scheme+host+port, sorted by name
}

// Route is one validated, active row of the active version.
type Route struct {
	ID                  int64
	Version             int
	Method              string
	Path                Template
	Backend             string
	Upstream            Upstream
	Sandbox             *Upstream // nil unless the row has trial_mode_sandbox_url
	MiddlewareStack     []string
	RequiresGovernor    bool
	RateLimitPerHour    int
	OPAPolicy           string
	RequiresDeviceToken bool
	Permission          string
	RequiresReason      bool
	Websocket           bool
	Timeout             time.Duration
}

// Upstream is where a route sends requests: a cluster plus the path template
// the upstream expects (equal to the public template when no rewrite is needed).
type Upstream struct {
	Scheme       string
	Host         string // without port
	Port         uint32
	PathTemplate string
}

// ClusterName is stable and readable in Envoy stats, e.g. "https_cp.demo.waooaw.com_443".
func (u Upstream) ClusterName() string {
	return u.Scheme + "_" + u.Host + "_" + strconv.FormatUint(uint64(u.Port), 10)
}

// Authority is the Host header the upstream expects.
func (u Upstream) Authority() string {
	if u.Scheme == "https" && u.Port == 443 || u.Scheme == "http" && u.Port == 80 {
		if strings.Contains(u.Host, ":") {
			return "[" + u.Host + "]" // IPv6 literal
		}
		return u.Host
	}
	return net.JoinHostPort(u.Host, strconv.FormatUint(uint64(u.Port), 10))
}

// Rejection says why one row does not serve.
type Rejection struct {
	RowID   int64
	Version int
	Field   string
	Reason  string
}

func (r Rejection) Error() string {
	return fmt.Sprintf("route row %d (version %d): %s: %s", r.RowID, r.Version, r.Field, r.Reason)
}

// Options change how rows are interpreted.
type Options struct {
	// InternalURLs maps a target_backend name (cp, pp, plant, sandbox, ...)
	// to a base URL that replaces the scheme, host and port of its public
	// URL (GATEWAY_USE_INTERNAL_URLS). Sandbox URLs use the "sandbox" key.
	InternalURLs map[string]*url.URL
}

// Known middleware names. An unknown one is a typo that would silently skip
// a check, so it rejects the row.
var knownMiddleware = map[string]bool{
	"auth": true, "rbac": true, "policy": true, "opa": true, "budget": true, "audit": true, "rate_limit": true,
}

var (
	backendRe    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	opaPolicyRe  = regexp.MustCompile(`^[a-z_][a-z0-9_]*(/[a-z_][a-z0-9_]*)+$`)
	permissionRe = regexp.MustCompile(`^[a-z_]+:[a-z_]+$`)
	methods      = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "OPTIONS": true}
)

const maxTimeout = 10 * time.Minute

// Validate checks every active row of every version (so a green version can
// be checked before it is switched on) and returns why each bad row is
// rejected. Inactive rows are ignored.
func Validate(rows []Row, opts Options) []Rejection {
	_, rej := build(rows, 0, true, opts)
	return rej
}

// Build returns the model for activeVersion plus the rejections of that
// version's rows. It never fails as a whole: a bad row drops itself.
func Build(rows []Row, activeVersion int, opts Options) (*Model, []Rejection) {
	return build(rows, activeVersion, false, opts)
}

func build(rows []Row, activeVersion int, allVersions bool, opts Options) (*Model, []Rejection) {
	sorted := make([]Row, 0, len(rows))
	for _, r := range rows {
		if r.IsActive && (allVersions || r.RouteVersion == activeVersion) {
			sorted = append(sorted, r)
		}
	}
	// Earlier rows win conflicts, so order by id.
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })

	m := &Model{ActiveVersion: activeVersion}
	var rejections []Rejection
	claimed := map[string]int64{} // version+method+match key -> row id
	clusters := map[string]Upstream{}
	for _, row := range sorted {
		rt, rej := buildRoute(row, opts)
		if rej != nil {
			rejections = append(rejections, *rej)
			continue
		}
		key := fmt.Sprintf("%d %s %s", row.RouteVersion, rt.Method, rt.Path.MatchKey())
		if first, dup := claimed[key]; dup {
			rejections = append(rejections, Rejection{RowID: row.ID, Version: row.RouteVersion, Field: "source_path",
				Reason: fmt.Sprintf("conflicts with row %d: same version, method and path", first)})
			continue
		}
		claimed[key] = row.ID
		m.Routes = append(m.Routes, rt)
		clusters[rt.Upstream.ClusterName()] = clusterOf(rt.Upstream)
		if rt.Sandbox != nil {
			clusters[rt.Sandbox.ClusterName()] = clusterOf(*rt.Sandbox)
		}
	}
	sort.SliceStable(m.Routes, func(i, j int) bool {
		a, b := m.Routes[i], m.Routes[j]
		if a.Path.MoreSpecific(b.Path) {
			return true
		}
		if b.Path.MoreSpecific(a.Path) {
			return false
		}
		if a.Path.Raw != b.Path.Raw {
			return a.Path.Raw < b.Path.Raw
		}
		return a.Method < b.Method
	})
	for _, c := range clusters {
		m.Clusters = append(m.Clusters, c)
	}
	sort.Slice(m.Clusters, func(i, j int) bool { return m.Clusters[i].ClusterName() < m.Clusters[j].ClusterName() })
	return m, rejections
}

// clusterOf drops the path: clusters are shared by every route to the same host.
func clusterOf(u Upstream) Upstream {
	u.PathTemplate = ""
	return u
}

func buildRoute(row Row, opts Options) (Route, *Rejection) {
	reject := func(field, format string, args ...any) (Route, *Rejection) {
		return Route{}, &Rejection{RowID: row.ID, Version: row.RouteVersion, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	rt := Route{
		ID:                  row.ID,
		Version:             row.RouteVersion,
		Method:              row.HTTPMethod,
		Backend:             row.TargetBackend,
		RequiresGovernor:    row.RequiresGovernorRole,
		RateLimitPerHour:    row.RateLimitPerHour,
		OPAPolicy:           row.RequiresOPAPolicy,
		RequiresDeviceToken: row.RequiresMobileDeviceToken,
		Permission:          row.Permission,
		RequiresReason:      row.RequiresReason,
		Websocket:           row.Websocket,
		Timeout:             time.Duration(row.TimeoutMS) * time.Millisecond,
	}
	if row.RouteVersion < 1 {
		return reject("route_version", "must be a positive integer, got %d", row.RouteVersion)
	}
	if !methods[row.HTTPMethod] {
		return reject("http_method", "%q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (upper case)", row.HTTPMethod)
	}
	tmpl, err := ParseTemplate(row.SourcePath)
	if err != nil {
		return reject("source_path", "%q: %v", row.SourcePath, err)
	}
	rt.Path = tmpl
	if !backendRe.MatchString(row.TargetBackend) {
		return reject("target_backend", "%q must be a lower-case name like cp, pp or plant", row.TargetBackend)
	}
	up, err := parseUpstream(row.TargetServiceURL, row.TargetBackend, tmpl, opts)
	if err != nil {
		return reject("target_service_url", "%q: %v", row.TargetServiceURL, err)
	}
	rt.Upstream = up
	if row.TrialModeSandboxURL != "" {
		sb, err := parseUpstream(row.TrialModeSandboxURL, "sandbox", tmpl, opts)
		if err != nil {
			return reject("trial_mode_sandbox_url", "%q: %v", row.TrialModeSandboxURL, err)
		}
		rt.Sandbox = &sb
	}
	stack, err := parseMiddleware(row.MiddlewareStack)
	if err != nil {
		return reject("middleware_stack", "%v", err)
	}
	rt.MiddlewareStack = stack
	if row.RateLimitPerHour < 0 {
		return reject("rate_limit_per_hour", "must not be negative, got %d", row.RateLimitPerHour)
	}
	if row.RequiresOPAPolicy != "" && !opaPolicyRe.MatchString(row.RequiresOPAPolicy) {
		return reject("requires_opa_policy", "%q must look like package/rule, e.g. rbac/allow", row.RequiresOPAPolicy)
	}
	if row.Permission != "" && !permissionRe.MatchString(row.Permission) {
		return reject("permission", "%q must look like resource:action, e.g. agent:create", row.Permission)
	}
	// Checked in milliseconds: a huge value would wrap when converted to a Duration.
	if row.TimeoutMS < 0 || int64(row.TimeoutMS) > maxTimeout.Milliseconds() {
		return reject("timeout_ms", "must be between 0 and %d, got %d", maxTimeout.Milliseconds(), row.TimeoutMS)
	}
	return rt, nil
}

func parseMiddleware(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return []string{}, nil
	}
	var stack []string
	if err := json.Unmarshal(raw, &stack); err != nil {
		return nil, fmt.Errorf("must be a JSON array of strings: %v", err)
	}
	for _, s := range stack {
		if !knownMiddleware[s] {
			return nil, fmt.Errorf("unknown middleware %q", s)
		}
	}
	return stack, nil
}

// parseUpstream reads a target URL whose path may carry the same variables
// as the public template, and applies the internal-URL mapping.
func parseUpstream(raw, backend string, public Template, opts Options) (Upstream, error) {
	if len(raw) > 2048 {
		return Upstream{}, fmt.Errorf("longer than 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Upstream{}, fmt.Errorf("not a URL: %v", err)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return Upstream{}, fmt.Errorf("must not carry a query, fragment or user info")
	}
	path := u.Path
	if base, ok := opts.InternalURLs[backend]; ok {
		u = base
	}
	up := Upstream{Scheme: u.Scheme, Host: strings.ToLower(u.Hostname())}
	switch up.Scheme {
	case "http":
		up.Port = 80
	case "https":
		up.Port = 443
	default:
		return Upstream{}, fmt.Errorf("scheme must be http or https")
	}
	if up.Host == "" {
		return Upstream{}, fmt.Errorf("no host")
	}
	if len(up.Host) > 253 {
		// Envoy caps SNI at 255 bytes and would refuse the whole cluster update.
		return Upstream{}, fmt.Errorf("host longer than 253 characters")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return Upstream{}, fmt.Errorf("bad port %q", p)
		}
		up.Port = uint32(n)
	}
	if path == "" {
		up.PathTemplate = public.Raw // no path: pass the public path through unchanged
		return up, nil
	}
	tmpl, err := ParseTemplate(path)
	if err != nil {
		return Upstream{}, fmt.Errorf("path: %v", err)
	}
	for _, s := range tmpl.Segments {
		if s.Kind == Glob || s.Kind == Var && s.Value == "" {
			return Upstream{}, fmt.Errorf("path: only named variables can be substituted")
		}
	}
	for _, v := range tmpl.Vars {
		if !slices.Contains(public.Vars, v) {
			return Upstream{}, fmt.Errorf("path variable {%s} does not appear in source_path", v)
		}
	}
	up.PathTemplate = tmpl.Raw
	return up, nil
}

// NeedsRewrite reports whether the upstream path differs from the public one.
func (r Route) NeedsRewrite(u Upstream) bool { return u.PathTemplate != r.Path.Raw }
