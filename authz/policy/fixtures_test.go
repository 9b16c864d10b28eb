package policy

import (
	"strings"
)

// seedRoutes are the seed's 13 routes (appendix 9) as the Check server will
// present them.
var seedRoutes = map[string]Route{
	"cp_list_agents":      {ID: 1, Method: "GET", PathTemplate: "/api/agents", TargetBackend: "cp", MiddlewareStack: []string{"auth", "policy", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 1000},
	"cp_get_agent":        {ID: 2, Method: "GET", PathTemplate: "/api/agents/{id}", TargetBackend: "cp", MiddlewareStack: []string{"auth", "audit"}, RateLimitPerHour: 1000},
	"cp_demo_agent":       {ID: 3, Method: "POST", PathTemplate: "/api/agents/{id}/demo", TargetBackend: "cp", MiddlewareStack: []string{"auth", "policy", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 100},
	"cp_execute_agent":    {ID: 4, Method: "POST", PathTemplate: "/api/agents/{id}/execute", TargetBackend: "cp", MiddlewareStack: []string{"auth", "policy", "budget", "audit"}, RequiresOPAPolicy: "trial/sandbox_route", HasSandbox: true, RateLimitPerHour: 500},
	"pp_create_agent":     {ID: 5, Method: "POST", PathTemplate: "/api/admin/agents/create", TargetBackend: "pp", MiddlewareStack: []string{"auth", "rbac", "policy", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 10000},
	"pp_list_customers":   {ID: 6, Method: "GET", PathTemplate: "/api/admin/customers", TargetBackend: "pp", MiddlewareStack: []string{"auth", "rbac", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 10000},
	"pp_approve_credit":   {ID: 7, Method: "POST", PathTemplate: "/api/admin/billing/credit-proposals/approve", TargetBackend: "pp", MiddlewareStack: []string{"auth", "rbac", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 1000},
	"pp_governor_approve": {ID: 8, Method: "POST", PathTemplate: "/api/governor/approve", TargetBackend: "pp", MiddlewareStack: []string{"auth", "audit"}, RequiresGovernorRole: true, RateLimitPerHour: 10000},
	"plant_create_agent":  {ID: 9, Method: "POST", PathTemplate: "/api/v1/agents", TargetBackend: "plant", MiddlewareStack: []string{"auth", "policy", "audit"}, RequiresGovernorRole: true, RateLimitPerHour: 1000},
	"plant_list_agents":   {ID: 10, Method: "GET", PathTemplate: "/api/v1/agents", TargetBackend: "plant", MiddlewareStack: []string{"auth", "audit"}, RateLimitPerHour: 1000},
	"plant_certify_skill": {ID: 11, Method: "POST", PathTemplate: "/api/v1/genesis/skills/{id}/certify", TargetBackend: "plant", MiddlewareStack: []string{"auth", "rbac", "audit"}, RequiresOPAPolicy: "rbac/allow", RequiresGovernorRole: true, RateLimitPerHour: 100},
	"plant_audit_run":     {ID: 12, Method: "POST", PathTemplate: "/api/v1/audit/run", TargetBackend: "plant", MiddlewareStack: []string{"auth", "rbac", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 100},
	"plant_audit_export":  {ID: 13, Method: "GET", PathTemplate: "/api/v1/audit/export", TargetBackend: "plant", MiddlewareStack: []string{"auth", "rbac", "audit"}, RequiresOPAPolicy: "rbac/allow", RateLimitPerHour: 100},
}

var seedUsers = map[string]User{
	"trial_customer":   {ID: "customer-456", Email: "john@acmecorp.com", Roles: []string{"customer"}, AgentID: "abc123", CustomerID: "cust-1", TrialMode: true},
	"expired_customer": {ID: "customer-456", Email: "john@acmecorp.com", Roles: []string{"customer"}, AgentID: "abc123", CustomerID: "cust-1", TrialMode: true, TrialExpired: true},
	"paid_customer":    {ID: "customer-789", Email: "jane@acmecorp.com", Roles: []string{"customer"}, AgentID: "abc123", CustomerID: "cust-2"},
	"governor_admin":   {ID: "admin-123", Email: "admin@waooaw.com", Roles: []string{"admin"}, IsGovernor: true},
	"viewer":           {ID: "viewer-1", Email: "vera@waooaw.com", Roles: []string{"viewer"}},
	"orchestrator":     {ID: "orch-1", Email: "olga@waooaw.com", Roles: []string{"agent_orchestrator"}},
	"helpdesk":         {ID: "help-1", Email: "hana@waooaw.com", Roles: []string{"helpdesk_agent"}},
	"gmail_admin":      {ID: "admin-9", Email: "admin@gmail.com", Roles: []string{"admin"}},
	"intruder":         {ID: "x-1", Email: "x@waooaw.com", Roles: []string{"superuser"}},
}

// request builds the input for a seed route and user, capturing params from
// the template the way the Check server does.
func request(route, user string, params map[string]string) *Input {
	r, ok := seedRoutes[route]
	if !ok {
		panic("unknown route " + route)
	}
	u, ok := seedUsers[user]
	if !ok {
		panic("unknown user " + user)
	}
	r.Version = 1
	segs := strings.Split(r.PathTemplate, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = params[strings.Trim(s, "{}")]
		}
	}
	if params == nil {
		params = map[string]string{}
	}
	return &Input{
		User:    u,
		Route:   r,
		Request: Request{Method: r.Method, Path: strings.Join(segs, "/"), Params: params},
	}
}

// decisionCase is one row of the contract table shared by the engine and the
// remote tests, so both evaluators are held to the same answers.
type decisionCase struct {
	name string
	in   *Input
	want Decision
}

func decisionCases() []decisionCase {
	noBudget := Budget{MonthlyCapUSD: 30}
	return []decisionCase{
		{
			name: "seed case 1: trial customer executes own agent in the sandbox",
			in:   request("cp_execute_agent", "trial_customer", map[string]string{"id": "abc123"}),
			want: Decision{
				Allow: true, Permission: "agent:execute", Action: "execute", Sandbox: true,
				Obligations:      map[string]any{"sandbox": true, "reason": "trial agents execute in the sandbox"},
				Budget:           Budget{Applies: true, MonthlyCapUSD: 5, EstimatedCostUSD: 0.5},
				RateLimitPerHour: 500,
			},
		},
		{
			name: "seed case 2: governor admin creates an agent in plant",
			in:   request("plant_create_agent", "governor_admin", nil),
			want: Decision{Allow: true, Permission: "agent:create", Action: "create", Budget: noBudget, RateLimitPerHour: 1000},
		},
		{
			name: "seed case 2: viewer cannot create an agent",
			in:   request("plant_create_agent", "viewer", nil),
			want: Decision{
				Code: CodeRBACDenied, Reason: "your roles do not grant agent:create",
				Permission: "agent:create", Action: "create", Budget: noBudget, RateLimitPerHour: 1000,
			},
		},
		{
			name: "viewer lists plant agents on an auth-only route",
			in:   request("plant_list_agents", "viewer", nil),
			want: Decision{Allow: true, Permission: "agent:view", Action: "view", Budget: noBudget, RateLimitPerHour: 1000},
		},
		{
			name: "paid customer executes own agent in production at the default cap",
			in:   request("cp_execute_agent", "paid_customer", map[string]string{"id": "abc123"}),
			want: Decision{
				Allow: true, Permission: "agent:execute", Action: "execute",
				Budget: Budget{Applies: true, MonthlyCapUSD: 30, EstimatedCostUSD: 0.5}, RateLimitPerHour: 500,
			},
		},
		{
			name: "customer acts on another customer's agent",
			in:   request("cp_execute_agent", "paid_customer", map[string]string{"id": "zzz999"}),
			want: Decision{
				Code: CodePolicyDenied, Reason: "agent zzz999 is not yours", Permission: "agent:execute", Action: "execute",
				Budget: Budget{Applies: true, MonthlyCapUSD: 30, EstimatedCostUSD: 0.5}, RateLimitPerHour: 500,
			},
		},
		{
			name: "platform portal route with a gmail address",
			in:   request("pp_create_agent", "gmail_admin", nil),
			want: Decision{
				Code: CodeDomainNotAllowed, Reason: "this route is restricted to platform staff email domains",
				Permission: "agent:create", Action: "create", Budget: noBudget, RateLimitPerHour: 10000,
			},
		},
		{
			name: "expired trial executes",
			in:   request("cp_execute_agent", "expired_customer", map[string]string{"id": "abc123"}),
			want: Decision{
				Code: CodeTrialExpired, Reason: "the trial has expired", Permission: "agent:execute", Action: "execute",
				Budget: Budget{Applies: true, MonthlyCapUSD: 5, EstimatedCostUSD: 0.5}, RateLimitPerHour: 500,
			},
		},
		{
			name: "unknown role on an RBAC route",
			in:   request("plant_audit_run", "intruder", nil),
			want: Decision{
				Code: CodeRBACDenied, Reason: "your roles do not grant monitoring:configure",
				Permission: "monitoring:configure", Action: "configure", Budget: noBudget, RateLimitPerHour: 100,
			},
		},
		{
			name: "governor route is left to Go",
			in:   request("pp_governor_approve", "viewer", nil),
			want: Decision{Allow: true, Permission: "governor:approve", Action: "approve", Budget: noBudget, RateLimitPerHour: 10000},
		},
		{
			name: "nil collections deny rather than error",
			in: &Input{
				User:  User{ID: "u-1", Email: "u@waooaw.com"},
				Route: Route{ID: 1, Method: "GET", PathTemplate: "/api/agents", TargetBackend: "cp", RequiresOPAPolicy: "rbac/allow"},
			},
			want: Decision{
				Code: CodeRBACDenied, Reason: "your roles do not grant agent:view",
				Permission: "agent:view", Action: "view", Budget: noBudget,
			},
		},
		{
			name: "anonymous input is refused",
			in:   &Input{Route: seedRoutes["plant_list_agents"]},
			want: Decision{
				Code: CodePolicyDenied, Reason: "an authenticated user is required",
				Permission: "agent:view", Action: "view", Budget: noBudget, RateLimitPerHour: 1000,
			},
		},
	}
}
