# Package fixtures holds the seed's 13 routes (appendix 9) and typical callers
# in the exact input shape the gateway sends, so every policy test exercises
# the real contract rather than a hand-trimmed fragment. It lives in a
# *_test.rego file so the runtime bundle never ships it.
package fixtures

route_fields := {
	"version": 1,
	"requires_governor_role": false,
	"has_sandbox": false,
	"permission": "",
	"requires_opa_policy": "",
}

# Keyed by a short name; ids follow the seed's insert order.
routes := {name: object.union(route_fields, r) | some name, r in {
	"cp_list_agents": {
		"id": 1, "method": "GET", "path_template": "/api/agents", "target_backend": "cp",
		"middleware_stack": ["auth", "policy", "audit"], "rate_limit_per_hour": 1000,
		"requires_opa_policy": "rbac/allow",
	},
	"cp_get_agent": {
		"id": 2, "method": "GET", "path_template": "/api/agents/{id}", "target_backend": "cp",
		"middleware_stack": ["auth", "audit"], "rate_limit_per_hour": 1000,
	},
	"cp_demo_agent": {
		"id": 3, "method": "POST", "path_template": "/api/agents/{id}/demo", "target_backend": "cp",
		"middleware_stack": ["auth", "policy", "audit"], "rate_limit_per_hour": 100,
		"requires_opa_policy": "rbac/allow",
	},
	"cp_execute_agent": {
		"id": 4, "method": "POST", "path_template": "/api/agents/{id}/execute", "target_backend": "cp",
		"middleware_stack": ["auth", "policy", "budget", "audit"], "rate_limit_per_hour": 500,
		"requires_opa_policy": "trial/sandbox_route", "has_sandbox": true,
	},
	"pp_create_agent": {
		"id": 5, "method": "POST", "path_template": "/api/admin/agents/create", "target_backend": "pp",
		"middleware_stack": ["auth", "rbac", "policy", "audit"], "rate_limit_per_hour": 10000,
		"requires_opa_policy": "rbac/allow",
	},
	"pp_list_customers": {
		"id": 6, "method": "GET", "path_template": "/api/admin/customers", "target_backend": "pp",
		"middleware_stack": ["auth", "rbac", "audit"], "rate_limit_per_hour": 10000,
		"requires_opa_policy": "rbac/allow",
	},
	"pp_approve_credit": {
		"id": 7, "method": "POST", "path_template": "/api/admin/billing/credit-proposals/approve", "target_backend": "pp",
		"middleware_stack": ["auth", "rbac", "audit"], "rate_limit_per_hour": 1000,
		"requires_opa_policy": "rbac/allow",
	},
	"pp_governor_approve": {
		"id": 8, "method": "POST", "path_template": "/api/governor/approve", "target_backend": "pp",
		"middleware_stack": ["auth", "audit"], "rate_limit_per_hour": 10000,
		"requires_governor_role": true,
	},
	"plant_create_agent": {
		"id": 9, "method": "POST", "path_template": "/api/v1/agents", "target_backend": "plant",
		"middleware_stack": ["auth", "policy", "audit"], "rate_limit_per_hour": 1000,
		"requires_governor_role": true,
	},
	"plant_list_agents": {
		"id": 10, "method": "GET", "path_template": "/api/v1/agents", "target_backend": "plant",
		"middleware_stack": ["auth", "audit"], "rate_limit_per_hour": 1000,
	},
	"plant_certify_skill": {
		"id": 11, "method": "POST", "path_template": "/api/v1/genesis/skills/{id}/certify", "target_backend": "plant",
		"middleware_stack": ["auth", "rbac", "audit"], "rate_limit_per_hour": 100,
		"requires_opa_policy": "rbac/allow", "requires_governor_role": true,
	},
	"plant_audit_run": {
		"id": 12, "method": "POST", "path_template": "/api/v1/audit/run", "target_backend": "plant",
		"middleware_stack": ["auth", "rbac", "audit"], "rate_limit_per_hour": 100,
		"requires_opa_policy": "rbac/allow",
	},
	"plant_audit_export": {
		"id": 13, "method": "GET", "path_template": "/api/v1/audit/export", "target_backend": "plant",
		"middleware_stack": ["auth", "rbac", "audit"], "rate_limit_per_hour": 100,
		"requires_opa_policy": "rbac/allow",
	},
}}

user_fields := {
	"is_governor": false,
	"agent_id": "",
	"customer_id": "",
	"trial_mode": false,
	"trial_expired": false,
	"issuer": "",
}

users := {name: object.union(user_fields, u) | some name, u in {
	# Seed test case 1.
	"trial_customer": {
		"id": "customer-456", "email": "john@acmecorp.com", "roles": ["customer"],
		"agent_id": "abc123", "customer_id": "cust-1", "trial_mode": true,
	},
	"paid_customer": {
		"id": "customer-789", "email": "jane@acmecorp.com", "roles": ["customer"],
		"agent_id": "abc123", "customer_id": "cust-2",
	},
	"expired_customer": {
		"id": "customer-456", "email": "john@acmecorp.com", "roles": ["customer"],
		"agent_id": "abc123", "customer_id": "cust-1", "trial_mode": true, "trial_expired": true,
	},
	# Seed test case 2.
	"governor_admin": {
		"id": "admin-123", "email": "admin@waooaw.com", "roles": ["admin"], "is_governor": true,
	},
	"viewer": {"id": "viewer-1", "email": "vera@waooaw.com", "roles": ["viewer"]},
	"orchestrator": {"id": "orch-1", "email": "olga@waooaw.com", "roles": ["agent_orchestrator"]},
	"subscription_manager": {"id": "subs-1", "email": "sam@waooaw.com", "roles": ["subscription_manager"]},
	"infra": {"id": "infra-1", "email": "ivan@waooaw.com", "roles": ["infrastructure_engineer"]},
	"helpdesk": {"id": "help-1", "email": "hana@waooaw.com", "roles": ["helpdesk_agent"]},
	"gmail_admin": {"id": "admin-9", "email": "admin@gmail.com", "roles": ["admin"]},
	"intruder": {"id": "x-1", "email": "x@waooaw.com", "roles": ["superuser"]},
}}

# request builds the full input for a named route and user; params are the
# values captured by the route's template, path is filled in from them.
request(route_name, user_name, params) := {
	"user": users[user_name],
	"route": routes[route_name],
	"request": {
		"method": routes[route_name].method,
		"path": expand(routes[route_name].path_template, params),
		"params": params,
	},
}

expand(template, params) := concat("/", [seg |
	some s in split(template, "/")
	seg := param_or_literal(s, params)
])

param_or_literal(s, params) := params[trim(s, "{}")] if {
	startswith(s, "{")
} else := s

# Every PP role plus the CP customer roles, for tables that must cover all.
pp_roles := {
	"admin", "subscription_manager", "agent_orchestrator", "infrastructure_engineer",
	"helpdesk_agent", "industry_manager", "viewer",
}

customer_roles := {"customer", "customer_user", "customer_admin"}

all_roles := pp_roles | customer_roles
