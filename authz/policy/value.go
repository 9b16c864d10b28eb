package policy

import (
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Object keys are built once: every evaluation would otherwise allocate the
// same few dozen key terms.
var (
	kUser    = ast.StringTerm("user")
	kRoute   = ast.StringTerm("route")
	kRequest = ast.StringTerm("request")

	kID           = ast.StringTerm("id")
	kEmail        = ast.StringTerm("email")
	kRoles        = ast.StringTerm("roles")
	kIsGovernor   = ast.StringTerm("is_governor")
	kAgentID      = ast.StringTerm("agent_id")
	kCustomerID   = ast.StringTerm("customer_id")
	kTrialMode    = ast.StringTerm("trial_mode")
	kTrialExpired = ast.StringTerm("trial_expired")
	kIssuer       = ast.StringTerm("issuer")

	kVersion              = ast.StringTerm("version")
	kMethod               = ast.StringTerm("method")
	kPathTemplate         = ast.StringTerm("path_template")
	kTargetBackend        = ast.StringTerm("target_backend")
	kMiddlewareStack      = ast.StringTerm("middleware_stack")
	kRequiresOPAPolicy    = ast.StringTerm("requires_opa_policy")
	kRequiresGovernorRole = ast.StringTerm("requires_governor_role")
	kHasSandbox           = ast.StringTerm("has_sandbox")
	kPermission           = ast.StringTerm("permission")
	kRateLimitPerHour     = ast.StringTerm("rate_limit_per_hour")

	kPath   = ast.StringTerm("path")
	kParams = ast.StringTerm("params")

	kAllow            = ast.StringTerm("allow")
	kCode             = ast.StringTerm("code")
	kReason           = ast.StringTerm("reason")
	kAction           = ast.StringTerm("action")
	kSandbox          = ast.StringTerm("sandbox")
	kObligations      = ast.StringTerm("obligations")
	kBudget           = ast.StringTerm("budget")
	kApplies          = ast.StringTerm("applies")
	kMonthlyCapUSD    = ast.StringTerm("monthly_cap_usd")
	kEstimatedCostUSD = ast.StringTerm("estimated_cost_usd")
)

// astValue builds the same value OPA would derive from the JSON encoding of
// in (nil collections become null, as encoding/json writes them), without
// the JSON round trip that rego.EvalInput performs on a struct.
// TestASTValueMatchesJSON holds the two equal.
func (in *Input) astValue() ast.Value {
	u, r, q := &in.User, &in.Route, &in.Request
	return ast.NewObject(
		ast.Item(kUser, ast.ObjectTerm(
			ast.Item(kID, ast.InternedTerm(u.ID)),
			ast.Item(kEmail, ast.InternedTerm(u.Email)),
			ast.Item(kRoles, stringsTerm(u.Roles)),
			ast.Item(kIsGovernor, ast.InternedTerm(u.IsGovernor)),
			ast.Item(kAgentID, ast.InternedTerm(u.AgentID)),
			ast.Item(kCustomerID, ast.InternedTerm(u.CustomerID)),
			ast.Item(kTrialMode, ast.InternedTerm(u.TrialMode)),
			ast.Item(kTrialExpired, ast.InternedTerm(u.TrialExpired)),
			ast.Item(kIssuer, ast.InternedTerm(u.Issuer)),
		)),
		ast.Item(kRoute, ast.ObjectTerm(
			ast.Item(kID, ast.InternedTerm(r.ID)),
			ast.Item(kVersion, ast.InternedTerm(r.Version)),
			ast.Item(kMethod, ast.InternedTerm(r.Method)),
			ast.Item(kPathTemplate, ast.InternedTerm(r.PathTemplate)),
			ast.Item(kTargetBackend, ast.InternedTerm(r.TargetBackend)),
			ast.Item(kMiddlewareStack, stringsTerm(r.MiddlewareStack)),
			ast.Item(kRequiresOPAPolicy, ast.InternedTerm(r.RequiresOPAPolicy)),
			ast.Item(kRequiresGovernorRole, ast.InternedTerm(r.RequiresGovernorRole)),
			ast.Item(kHasSandbox, ast.InternedTerm(r.HasSandbox)),
			ast.Item(kPermission, ast.InternedTerm(r.Permission)),
			ast.Item(kRateLimitPerHour, ast.InternedTerm(r.RateLimitPerHour)),
		)),
		ast.Item(kRequest, ast.ObjectTerm(
			ast.Item(kMethod, ast.InternedTerm(q.Method)),
			ast.Item(kPath, ast.InternedTerm(q.Path)),
			ast.Item(kParams, paramsTerm(q.Params)),
		)),
	)
}

func stringsTerm(ss []string) *ast.Term {
	if ss == nil {
		return ast.InternedNullTerm
	}
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.InternedTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

func paramsTerm(params map[string]string) *ast.Term {
	if params == nil {
		return ast.InternedNullTerm
	}
	items := make([][2]*ast.Term, 0, len(params))
	for k, v := range params {
		items = append(items, ast.Item(ast.InternedTerm(k), ast.InternedTerm(v)))
	}
	// Objects compare by content, but a fixed insertion order keeps any
	// order-sensitive iteration in a policy deterministic as well.
	slices.SortFunc(items, func(a, b [2]*ast.Term) int { return a[0].Value.Compare(b[0].Value) })
	return ast.ObjectTerm(items...)
}

// decisionFromValue reads the decision document straight from the AST,
// skipping the map[string]any that rego would otherwise build and that we
// would then have to decode again.
func decisionFromValue(v ast.Value) (*Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("decision is %s, not an object", ast.ValueName(v))
	}
	var d Decision
	var err error
	field := func(key *ast.Term, into func(ast.Value) bool, required bool) {
		if err != nil {
			return
		}
		t := obj.Get(key)
		if t == nil {
			if required {
				err = fmt.Errorf("decision has no %s", key)
			}
			return
		}
		if !into(t.Value) {
			err = fmt.Errorf("decision field %s has unexpected type %s", key, ast.ValueName(t.Value))
		}
	}
	field(kAllow, boolInto(&d.Allow), true)
	field(kCode, stringInto(&d.Code), false)
	field(kReason, stringInto(&d.Reason), false)
	field(kPermission, stringInto(&d.Permission), false)
	field(kAction, stringInto(&d.Action), false)
	field(kSandbox, boolInto(&d.Sandbox), false)
	field(kObligations, func(v ast.Value) bool {
		o, ok := v.(ast.Object)
		if !ok {
			return false
		}
		if o.Len() == 0 {
			return true
		}
		j, jerr := ast.JSON(o)
		m, isMap := j.(map[string]any)
		if jerr != nil || !isMap {
			return false
		}
		d.Obligations = m
		return true
	}, false)
	field(kBudget, func(v ast.Value) bool {
		o, ok := v.(ast.Object)
		if !ok {
			return false
		}
		sub := func(key *ast.Term, into func(ast.Value) bool) bool {
			t := o.Get(key)
			return t == nil || into(t.Value)
		}
		return sub(kApplies, boolInto(&d.Budget.Applies)) &&
			sub(kMonthlyCapUSD, floatInto(&d.Budget.MonthlyCapUSD)) &&
			sub(kEstimatedCostUSD, floatInto(&d.Budget.EstimatedCostUSD))
	}, false)
	field(kRateLimitPerHour, func(v ast.Value) bool {
		n, ok := v.(ast.Number)
		if !ok {
			return false
		}
		d.RateLimitPerHour, ok = n.Int()
		return ok
	}, false)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func boolInto(dst *bool) func(ast.Value) bool {
	return func(v ast.Value) bool {
		b, ok := v.(ast.Boolean)
		*dst = bool(b)
		return ok
	}
}

func stringInto(dst *string) func(ast.Value) bool {
	return func(v ast.Value) bool {
		s, ok := v.(ast.String)
		*dst = string(s)
		return ok
	}
}

func floatInto(dst *float64) func(ast.Value) bool {
	return func(v ast.Value) bool {
		n, ok := v.(ast.Number)
		if !ok {
			return false
		}
		*dst, ok = n.Float64()
		return ok
	}
}
