package rbac_test

import data.fixtures
import data.rbac

default allowed(_, _) := false

allowed(roles, perm) if rbac.allow with input as {"user": {"roles": roles}, "permission": perm}

# Every role must hold exactly the listed permissions and nothing else: a row
# test alone would miss a grant that the table never mentions.
expected_grants := {
	"admin": {"*"},
	"subscription_manager": {
		"billing:manage", "subscription:create", "subscription:update", "subscription:cancel",
		"customer:manage", "customer:view", "dashboard:view", "report:view", "agent:view",
	},
	"agent_orchestrator": {
		"agent:create", "agent:update", "agent:deploy", "agent:execute", "task:create", "task:cancel",
		"dashboard:view", "report:view", "agent:view",
	},
	"infrastructure_engineer": {
		"infrastructure:deploy", "infrastructure:configure", "database:access", "monitoring:configure",
		"dashboard:view", "report:view", "agent:view",
	},
	"helpdesk_agent": {
		"customer:view", "ticket:create", "ticket:update", "ticket:resolve",
		"dashboard:view", "report:view", "agent:view",
	},
	"industry_manager": {"industry:manage", "agent:categorize", "dashboard:view", "report:view", "agent:view"},
	"viewer": {"dashboard:view", "report:view", "agent:view"},
	"customer": {"agent:view", "agent:demo", "agent:execute", "task:create"},
	"customer_user": {"agent:view", "agent:demo", "agent:execute", "task:create"},
	"customer_admin": {"agent:view", "agent:demo", "agent:execute", "task:create", "subscription:update"},
}

test_every_role_holds_exactly_its_grants if {
	mismatched := {role |
		some role in fixtures.all_roles
		got := rbac.granted with input as {"user": {"roles": [role]}}
		got != expected_grants[role]
	}
	print("roles with unexpected grants:", mismatched)
	mismatched == set()
}

# row_mismatches lists (role, permission) pairs where the decision differs
# from "the row's holders plus admin", over the seven PP roles.
row_mismatches(perms, holders) := {[role, p] |
	some p in perms
	some role in fixtures.pp_roles
	want := role in (holders | {"admin"})
	allowed([role], p) != want
}

test_row_system_configure_user_delete_admin_only if {
	m := row_mismatches({"system:configure", "user:delete"}, set())
	print(m)
	m == set()
}

test_row_billing_subscription_customer_manage if {
	m := row_mismatches(
		{"billing:manage", "subscription:create", "subscription:update", "subscription:cancel", "customer:manage"},
		{"subscription_manager"},
	)
	print(m)
	m == set()
}

test_row_agent_and_task_lifecycle if {
	m := row_mismatches(
		{"agent:create", "agent:update", "agent:deploy", "agent:execute", "task:create", "task:cancel"},
		{"agent_orchestrator"},
	)
	print(m)
	m == set()
}

test_row_infrastructure if {
	m := row_mismatches(
		{"infrastructure:deploy", "infrastructure:configure", "database:access", "monitoring:configure"},
		{"infrastructure_engineer"},
	)
	print(m)
	m == set()
}

test_row_customer_view if {
	m := row_mismatches({"customer:view"}, {"subscription_manager", "helpdesk_agent"})
	print(m)
	m == set()
}

test_row_tickets if {
	m := row_mismatches({"ticket:create", "ticket:update", "ticket:resolve"}, {"helpdesk_agent"})
	print(m)
	m == set()
}

test_row_industry if {
	m := row_mismatches({"industry:manage", "agent:categorize"}, {"industry_manager"})
	print(m)
	m == set()
}

test_row_views_for_every_role if {
	m := row_mismatches({"dashboard:view", "report:view", "agent:view"}, fixtures.pp_roles)
	print(m)
	m == set()
}

test_admin_may_do_anything_even_unlisted if {
	allowed(["admin"], "system:configure")
	allowed(["admin"], "governor:approve")
	allowed(["admin"], "something:new")
}

test_customer_roles_hold_no_staff_permissions if {
	some role in fixtures.customer_roles
	not allowed([role], "customer:view")
	not allowed([role], "agent:create")
	not allowed([role], "billing:manage")
	not allowed([role], "report:view")
}

test_customer_admin_may_update_subscription if {
	allowed(["customer_admin"], "subscription:update")
	not allowed(["customer"], "subscription:update")
}

test_unknown_and_missing_roles_are_denied if {
	not allowed(["superuser"], "agent:view")
	not allowed([], "agent:view")
	not rbac.allow with input as {"user": {}, "permission": "agent:view"}
	not rbac.allow with input as {"permission": "agent:view"}
	not rbac.allow with input as {"user": {"roles": "admin"}, "permission": "agent:view"}
}

test_roles_union if {
	allowed(["viewer", "helpdesk_agent"], "ticket:create")
	allowed(["viewer", "helpdesk_agent"], "dashboard:view")
}

# Seed section 3.3 query shape: POST /v1/data/rbac/allow.
test_seed_query_shape if {
	rbac.allow with input as {"user": {"roles": ["customer"]}, "permission": "agent:execute"}
	rbac.allow with input as {"user": {"roles": ["admin"]}, "permission": "agent:create"}
	not rbac.allow with input as {"user": {"roles": ["viewer"]}, "permission": "agent:create"}
}

expected_route_permissions := {
	"cp_list_agents": "agent:view",
	"cp_get_agent": "agent:view",
	"cp_demo_agent": "agent:demo",
	"cp_execute_agent": "agent:execute",
	"pp_create_agent": "agent:create",
	"pp_list_customers": "customer:view",
	"pp_approve_credit": "billing:manage",
	"pp_governor_approve": "governor:approve",
	"plant_create_agent": "agent:create",
	"plant_list_agents": "agent:view",
	"plant_certify_skill": "agent:deploy",
	"plant_audit_run": "monitoring:configure",
	"plant_audit_export": "report:view",
}

route_permission(name) := p if {
	p := rbac.permission with input as {"route": fixtures.routes[name]}
}

test_seed_routes_map_to_permissions if {
	wrong := {name: got |
		some name, want in expected_route_permissions
		got := route_permission(name)
		got != want
	}
	missing := {name | some name, _ in expected_route_permissions; not route_permission(name)}
	print("wrong:", wrong, "missing:", missing)
	wrong == {}
	missing == set()
}

# The generic derivation must agree with the table wherever the table merely
# spells out the obvious, so that a new route with a regular shape needs no
# table entry. Audit routes are the deliberate exceptions.
test_derivation_agrees_with_table_for_regular_routes if {
	irregular := {"plant_audit_run", "plant_audit_export"}
	wrong := {name: got |
		some name, want in expected_route_permissions
		not name in irregular
		got := rbac.permission with input as {"route": fixtures.routes[name]}
			with data.rbac.config.route_permissions as {}
		got != want
	}
	print(wrong)
	wrong == {}
}

test_derivation_of_unmapped_routes if {
	derive("DELETE", "/api/v1/agents/{id}") == "agent:delete"
	derive("PUT", "/api/admin/customers/{id}") == "customer:update"
	derive("PATCH", "/api/v2/tasks/{id}") == "task:update"
	derive("POST", "/api/agents/{id}/cancel") == "agent:cancel"
	derive("GET", "/api/admin/billing/invoices") == "billing:manage"
	derive("GET", "/api/v1/industries") == "industry:view"
}

derive(method, template) := p if {
	p := rbac.permission with input as {"route": {"method": method, "path_template": template}}
}

test_route_permission_column_overrides if {
	r := object.union(fixtures.routes.plant_audit_export, {"permission": "database:access"})
	rbac.permission == "database:access" with input as {"route": r}
	rbac.action == "access" with input as {"route": r}
}

test_actions if {
	rbac.action == "execute" with input as {"route": fixtures.routes.cp_execute_agent}
	rbac.action == "demo" with input as {"route": fixtures.routes.cp_demo_agent}
	rbac.action == "view" with input as {"route": fixtures.routes.cp_get_agent}
}

rbac_checked := {
	"cp_list_agents", "cp_demo_agent", "cp_execute_agent", "pp_create_agent", "pp_list_customers",
	"pp_approve_credit", "plant_create_agent", "plant_certify_skill", "plant_audit_run", "plant_audit_export",
}

test_which_seed_routes_are_rbac_checked if {
	checked := {name |
		some name, r in fixtures.routes
		rbac.required with input as {"route": r}
	}
	print(checked)
	checked == rbac_checked
}

test_staff_detection if {
	rbac.staff with input as {"user": {"roles": ["viewer"]}}
	rbac.staff with input as {"user": {"roles": ["customer", "viewer"]}}
	not rbac.staff with input as {"user": {"roles": ["customer"]}}
	not rbac.staff with input as {"user": {"roles": ["superuser"]}}
	not rbac.staff with input as {"user": {}}
}
