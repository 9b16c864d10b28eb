// Package problem builds the RFC 7807 application/problem+json bodies every
// denial carries. Codes are stable: clients and dashboards key on them.
package problem

import (
	"encoding/json"
	"strconv"
)

// ContentType of every body built here.
const ContentType = "application/problem+json"

// Code is a stable, machine-readable deny reason.
type Code string

const (
	AuthTokenMissing    Code = "AUTH_TOKEN_MISSING"
	AuthTokenInvalid    Code = "AUTH_TOKEN_INVALID"
	AuthTokenExpired    Code = "AUTH_TOKEN_EXPIRED"
	RBACDenied          Code = "RBAC_DENIED"
	GovernorRequired    Code = "GOVERNOR_REQUIRED"
	PolicyDenied        Code = "POLICY_DENIED"
	PolicyUnavailable   Code = "POLICY_UNAVAILABLE"
	TrialExpired        Code = "TRIAL_EXPIRED"
	BudgetExceeded      Code = "BUDGET_EXCEEDED"
	RateLimited         Code = "RATE_LIMITED"
	DomainNotAllowed    Code = "DOMAIN_NOT_ALLOWED"
	DeviceTokenRequired Code = "DEVICE_TOKEN_REQUIRED"
	ReasonRequired      Code = "REASON_REQUIRED"
	RouteNotFound       Code = "ROUTE_NOT_FOUND"
	// Written by Envoy itself (local_reply_config), never by the authz server.
	UpstreamUnavailable Code = "UPSTREAM_UNAVAILABLE"
	UpstreamTimeout     Code = "UPSTREAM_TIMEOUT"
)

// The seed's constitutional principles.
const (
	L0SingleGovernor = "L0-01: Single Governor"
	L0DenyByDefault  = "L0-04: Deny-by-Default"
	L0Audit          = "L0-05: Immutable Audit Trail"
	L0Governance     = "L0-07: Governance Protocols"
)

type spec struct {
	status    int
	slug      string
	title     string
	principle string
}

// The platform's clients already read https://waooaw.com/errors/<slug>.
var specs = map[Code]spec{
	AuthTokenMissing:    {401, "unauthorized", "Unauthorized", L0DenyByDefault},
	AuthTokenInvalid:    {401, "invalid-token", "Invalid token", L0DenyByDefault},
	AuthTokenExpired:    {401, "token-expired", "Token expired", L0DenyByDefault},
	RBACDenied:          {403, "permission-denied", "Permission denied", L0DenyByDefault},
	GovernorRequired:    {403, "governor-required", "Governor role required", L0SingleGovernor},
	PolicyDenied:        {403, "permission-denied", "Denied by policy", L0DenyByDefault},
	DomainNotAllowed:    {403, "permission-denied", "Email domain not allowed", L0DenyByDefault},
	TrialExpired:        {403, "trial-expired", "Trial expired", L0Governance},
	DeviceTokenRequired: {403, "device-token-required", "Device token required", L0DenyByDefault},
	ReasonRequired:      {403, "reason-required", "Action reason required", L0Audit},
	BudgetExceeded:      {403, "budget-exceeded", "Monthly budget exceeded", L0Governance},
	RateLimited:         {429, "too-many-requests", "Too many requests", ""},
	RouteNotFound:       {404, "not-found", "Not Found", L0DenyByDefault},
	PolicyUnavailable:   {503, "service-unavailable", "Policy service unavailable", L0DenyByDefault},
	UpstreamUnavailable: {503, "service-unavailable", "Upstream unavailable", ""},
	UpstreamTimeout:     {504, "gateway-timeout", "Upstream timeout", ""},
}

// Spec returns the fixed parts of code's body, for bodies built elsewhere
// (Envoy's own local replies).
func Spec(code Code) (status int, typeURI, title string) {
	s := specs[code]
	return s.status, "https://waooaw.com/errors/" + s.slug, s.title
}

// Problem is one error body.
type Problem struct {
	Type                    string `json:"type"`
	Title                   string `json:"title"`
	Status                  int    `json:"status"`
	Detail                  string `json:"detail"`
	ErrorCode               Code   `json:"error_code"`
	ConstitutionalPrinciple string `json:"constitutional_principle,omitempty"`
	CorrelationID           string `json:"correlation_id,omitempty"`
	RetryAfter              int    `json:"retry_after,omitempty"`
	// Error mirrors the title: the seed's clients read an "error" member (§5.2).
	Error string `json:"error,omitempty"`
	// Details is extra context that is safe to show the caller.
	Details string `json:"details,omitempty"`
}

// New fills the fixed parts of a problem from its code.
func New(code Code, detail, correlationID string) *Problem {
	s, ok := specs[code]
	if !ok {
		s = spec{403, "permission-denied", "Forbidden", L0DenyByDefault}
	}
	return &Problem{
		Type:                    "https://waooaw.com/errors/" + s.slug,
		Title:                   s.title,
		Status:                  s.status,
		Detail:                  detail,
		ErrorCode:               code,
		ConstitutionalPrinciple: s.principle,
		CorrelationID:           correlationID,
	}
}

// Status is the HTTP status for code.
func Status(code Code) int {
	if s, ok := specs[code]; ok {
		return s.status
	}
	return 403
}

// JSON encodes the body; it cannot fail for this struct.
func (p *Problem) JSON() []byte {
	b, _ := json.Marshal(p)
	return b
}

// RetryAfterHeader is the Retry-After header value, "" when none applies.
func (p *Problem) RetryAfterHeader() string {
	if p.RetryAfter <= 0 {
		return ""
	}
	return strconv.Itoa(p.RetryAfter)
}
