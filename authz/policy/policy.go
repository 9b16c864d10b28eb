// Package policy obtains the gateway's policy decision for one request: one
// evaluation of data.gateway.decision, either in process (Engine, the Rego in
// policies/ or a directory that is hot-reloaded) or from a remote OPA server
// (Remote, when OPA_SERVICE_URL is set).
//
// Both evaluators cache decisions keyed by the exact Input, which is why the
// Input carries everything the policy may look at (trial expiry is computed
// by the caller) and nothing that varies per request without affecting the
// decision (no clock, no correlation id).
//
// Neither evaluator decides what happens when no decision is available: they
// return an error wrapping ErrUnavailable and the caller applies
// OPA_FAIL_MODE. The Governor rule is not part of the decision either; the
// caller enforces it afterwards so that no policy edit can weaken it.
package policy

import (
	"context"
	"errors"
)

// Evaluator is what the ext_authz Check server depends on.
type Evaluator interface {
	// Decide returns the decision for in. The Decision is the caller's to
	// modify, except Obligations, which may be shared with the cache and
	// must be treated as read-only.
	Decide(ctx context.Context, in *Input) (*Decision, error)
}

var (
	// ErrUnavailable wraps every failure to obtain a decision: a remote OPA
	// that is down, slow, answering non-200 or without a result, and an
	// embedded evaluation that errors or yields no decision. Callers map it
	// to POLICY_UNAVAILABLE or to fail-open per OPA_FAIL_MODE.
	ErrUnavailable = errors.New("policy decision unavailable")

	// ErrNilInput reports a programming error in the caller.
	ErrNilInput = errors.New("policy input is nil")

	// ErrRegoTestFailed is wrapped once per failing Rego test by RunRegoTests.
	ErrRegoTestFailed = errors.New("rego test failed")
)

// Deny codes a decision may carry. They are the stable error_code values of
// the gateway's problem+json bodies, so they never change spelling.
const (
	CodeDomainNotAllowed = "DOMAIN_NOT_ALLOWED"
	CodeRBACDenied       = "RBAC_DENIED"
	CodeTrialExpired     = "TRIAL_EXPIRED"
	CodePolicyDenied     = "POLICY_DENIED"
)

// DecisionPath is the document every evaluator asks for.
const DecisionPath = "data.gateway.decision"

// Input is the policy input document. Its JSON form is what a remote OPA
// receives as "input"; the embedded engine builds the identical value
// without JSON. Every field takes part in the cache key.
type Input struct {
	User    User    `json:"user"`
	Route   Route   `json:"route"`
	Request Request `json:"request"`
}

// User is the authenticated caller (the constitutional context).
type User struct {
	ID         string   `json:"id"`
	Email      string   `json:"email"`
	Roles      []string `json:"roles"`
	IsGovernor bool     `json:"is_governor"`
	AgentID    string   `json:"agent_id"`
	CustomerID string   `json:"customer_id"`
	TrialMode  bool     `json:"trial_mode"`
	// TrialExpired is computed by the caller from trial_expires_at, so the
	// decision stays a pure function of the input.
	TrialExpired bool   `json:"trial_expired"`
	Issuer       string `json:"issuer"`
}

// Route is the route row Envoy matched, as carried in context_extensions.
type Route struct {
	ID                int      `json:"id"`
	Version           int      `json:"version"`
	Method            string   `json:"method"`
	PathTemplate      string   `json:"path_template"`
	TargetBackend     string   `json:"target_backend"`
	MiddlewareStack   []string `json:"middleware_stack"`
	RequiresOPAPolicy string   `json:"requires_opa_policy"`
	// RequiresGovernorRole is informational: the caller enforces it.
	RequiresGovernorRole bool `json:"requires_governor_role"`
	HasSandbox           bool `json:"has_sandbox"`
	// Permission overrides the policy's route-to-permission mapping when set.
	Permission       string `json:"permission"`
	RateLimitPerHour int    `json:"rate_limit_per_hour"`
}

// Request is the part of the HTTP request the policy may look at.
type Request struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Params are the values captured by the route's URI template.
	Params map[string]string `json:"params"`
}

// Decision is data.gateway.decision.
type Decision struct {
	Allow bool `json:"allow"`
	// Code is one of the Code* constants when Allow is false, else empty.
	Code   string `json:"code"`
	Reason string `json:"reason"`
	// Permission and Action are what the request was judged as, for the
	// audit record (e.g. "agent:execute", "execute").
	Permission string `json:"permission"`
	Action     string `json:"action"`
	// Sandbox tells the caller to select the route's trial sandbox.
	Sandbox bool `json:"sandbox"`
	// Obligations is nil when there are none. Read-only: it may be shared
	// by every caller that hits the same cache entry.
	Obligations      map[string]any `json:"obligations"`
	Budget           Budget         `json:"budget"`
	RateLimitPerHour int            `json:"rate_limit_per_hour"`
}

// Budget is the policy's view of spend for this request; the caller enforces.
type Budget struct {
	Applies          bool    `json:"applies"`
	MonthlyCapUSD    float64 `json:"monthly_cap_usd"`
	EstimatedCostUSD float64 `json:"estimated_cost_usd"`
}

// normalize holds both evaluators to the contract, so the Check server can
// map codes with a total switch even if a remote policy drifts.
func (d *Decision) normalize() {
	if d.Allow {
		d.Code, d.Reason = "", ""
	} else {
		switch d.Code {
		case CodeDomainNotAllowed, CodeRBACDenied, CodeTrialExpired, CodePolicyDenied:
		default:
			d.Code = CodePolicyDenied
		}
		if d.Reason == "" {
			d.Reason = "denied by policy"
		}
		// A denied request goes nowhere, so it cannot be sandboxed.
		d.Sandbox = false
	}
	if len(d.Obligations) == 0 {
		d.Obligations = nil
	}
}

// clone gives each caller its own Decision so that a caller that overrides
// the verdict (say, for the Governor rule) cannot alter a cached one.
func (d *Decision) clone() *Decision {
	c := *d
	return &c
}
