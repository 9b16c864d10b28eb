package gateway_test

import data.fixtures
import data.gateway
import data.trial

decide(route_name, user_name, params) := d if {
	d := gateway.decision with input as fixtures.request(route_name, user_name, params)
}

denied_with(d, code) if {
	d.allow == false
	d.code == code
	d.reason != ""
}

# Seed test case 1: a trial customer executes its own agent; it is allowed,
# sent to the sandbox and metered against the smaller trial cap.
test_seed_case_1_trial_customer_execute if {
	d := decide("cp_execute_agent", "trial_customer", {"id": "abc123"})
	d == {
		"allow": true,
		"code": "",
		"reason": "",
		"permission": "agent:execute",
		"action": "execute",
		"sandbox": true,
		"obligations": {"sandbox": true, "reason": "trial agents execute in the sandbox"},
		"budget": {"applies": true, "monthly_cap_usd": 5, "estimated_cost_usd": 0.5},
		"rate_limit_per_hour": 500,
	}
}

# Seed test case 2: admin can create agents, viewer cannot. The Governor
# requirement is Go's; policy only answers the RBAC part.
test_seed_case_2_admin_creates_agent if {
	d := decide("plant_create_agent", "governor_admin", {})
	d.allow
	d.permission == "agent:create"
	d.sandbox == false
	d.budget.applies == false
}

test_seed_case_2_viewer_cannot_create_agent if {
	d := decide("plant_create_agent", "viewer", {})
	denied_with(d, "RBAC_DENIED")
	d.permission == "agent:create"
	d.reason == "your roles do not grant agent:create"
}

test_auth_only_route_allows_any_authenticated_role if {
	decide("plant_list_agents", "viewer", {}).allow
	decide("plant_list_agents", "paid_customer", {}).allow
	decide("plant_list_agents", "intruder", {}).allow
}

test_customer_acting_on_another_agent if {
	d := decide("cp_execute_agent", "paid_customer", {"id": "zzz999"})
	denied_with(d, "POLICY_DENIED")
	d.reason == "agent zzz999 is not yours"
}

# Ownership holds on auth-only routes too: GET /api/agents/{id} has no RBAC.
test_customer_reading_another_agent if {
	denied_with(decide("cp_get_agent", "paid_customer", {"id": "zzz999"}), "POLICY_DENIED")
	decide("cp_get_agent", "paid_customer", {"id": "abc123"}).allow
}

test_staff_are_not_bound_to_one_agent if {
	decide("cp_get_agent", "viewer", {"id": "zzz999"}).allow
	decide("cp_execute_agent", "orchestrator", {"id": "zzz999"}).allow
}

test_unknown_role_is_bound_like_a_customer if {
	denied_with(decide("cp_get_agent", "intruder", {"id": "zzz999"}), "POLICY_DENIED")
}

test_customer_without_agent_or_param_is_denied if {
	req := json.patch(
		fixtures.request("cp_get_agent", "paid_customer", {"id": ""}),
		[{"op": "replace", "path": "/user/agent_id", "value": ""}],
	)
	denied_with(gateway.decision, "POLICY_DENIED") with input as req
	req2 := json.remove(fixtures.request("cp_get_agent", "paid_customer", {"id": "abc123"}), ["request/params"])
	denied_with(gateway.decision, "POLICY_DENIED") with input as req2
}

test_listing_agents_is_not_ownership_checked if {
	decide("cp_list_agents", "paid_customer", {}).allow
}

test_pp_route_with_foreign_domain if {
	d := decide("pp_create_agent", "gmail_admin", {})
	denied_with(d, "DOMAIN_NOT_ALLOWED")
	not contains(d.reason, "gmail")
}

test_pp_domain_is_case_insensitive_and_exact if {
	base := fixtures.request("pp_list_customers", "helpdesk", {})
	allowed_for_email("Hana@WaooAW.com", base)
	not allowed_for_email("hana@notwaooaw.com", base)
	not allowed_for_email("hana@waooaw.com.evil.io", base)
	not allowed_for_email("waooaw.com", base)
	not allowed_for_email("", base)
	allowed_for_email("a@b@waooaw.com", base)
}

allowed_for_email(email, base) if {
	req := json.patch(base, [{"op": "replace", "path": "/user/email", "value": email}])
	gateway.decision.allow with input as req
}

test_domain_rule_skips_other_backends if {
	decide("plant_create_agent", "gmail_admin", {}).allow
}

test_pp_domains_are_data if {
	d := gateway.decision with input as fixtures.request("pp_create_agent", "gmail_admin", {})
		with data.gateway.config.pp_email_domains as ["waooaw.com", "GMAIL.com"]
	d.allow
}

test_expired_trial_execute if {
	d := decide("cp_execute_agent", "expired_customer", {"id": "abc123"})
	denied_with(d, "TRIAL_EXPIRED")
	d.sandbox == false
	d.obligations == {}
}

test_expired_trial_demo if {
	denied_with(decide("cp_demo_agent", "expired_customer", {"id": "abc123"}), "TRIAL_EXPIRED")
}

test_unknown_role_on_rbac_route if {
	denied_with(decide("plant_audit_run", "intruder", {}), "RBAC_DENIED")
	denied_with(decide("cp_list_agents", "intruder", {}), "RBAC_DENIED")
}

# Each seed RBAC route for one caller who may and one who may not.
test_seed_routes_rbac if {
	decide("pp_list_customers", "helpdesk", {}).allow
	denied_with(decide("pp_list_customers", "viewer", {}), "RBAC_DENIED")
	decide("pp_approve_credit", "subscription_manager", {}).allow
	denied_with(decide("pp_approve_credit", "helpdesk", {}), "RBAC_DENIED")
	decide("pp_create_agent", "orchestrator", {}).allow
	denied_with(decide("pp_create_agent", "viewer", {}), "RBAC_DENIED")
	decide("plant_certify_skill", "orchestrator", {"id": "s1"}).allow
	denied_with(decide("plant_certify_skill", "helpdesk", {"id": "s1"}), "RBAC_DENIED")
	decide("plant_audit_run", "infra", {}).allow
	denied_with(decide("plant_audit_run", "viewer", {}), "RBAC_DENIED")
	decide("plant_audit_export", "viewer", {}).allow
	denied_with(decide("plant_audit_export", "paid_customer", {}), "RBAC_DENIED")
	decide("cp_demo_agent", "trial_customer", {"id": "abc123"}).allow
}

# The Governor rule lives in Go; policy must not quietly add or drop it.
test_governor_route_is_not_decided_by_policy if {
	d := decide("pp_governor_approve", "viewer", {})
	d.allow
	d.permission == "governor:approve"
}

# Priority: DOMAIN_NOT_ALLOWED > RBAC_DENIED > TRIAL_EXPIRED > POLICY_DENIED.
test_priority_domain_over_rbac if {
	req := json.patch(
		fixtures.request("pp_create_agent", "viewer", {}),
		[{"op": "replace", "path": "/user/email", "value": "vera@gmail.com"}],
	)
	denied_with(gateway.decision, "DOMAIN_NOT_ALLOWED") with input as req
}

test_priority_rbac_over_trial_expired if {
	req := json.patch(
		fixtures.request("cp_execute_agent", "expired_customer", {"id": "abc123"}),
		[{"op": "replace", "path": "/user/roles", "value": ["intruder"]}],
	)
	denied_with(gateway.decision, "RBAC_DENIED") with input as req
}

test_priority_trial_expired_over_ownership if {
	denied_with(decide("cp_execute_agent", "expired_customer", {"id": "zzz999"}), "TRIAL_EXPIRED")
}

test_priority_all_four if {
	req := json.patch(
		fixtures.request("cp_execute_agent", "expired_customer", {"id": "zzz999"}),
		[
			{"op": "replace", "path": "/route/target_backend", "value": "pp"},
			{"op": "replace", "path": "/user/roles", "value": []},
		],
	)
	gateway.domain_denied with input as req
	gateway.rbac_denied with input as req
	trial.expired_action with input as req
	gateway.ownership_denied with input as req
	denied_with(gateway.decision, "DOMAIN_NOT_ALLOWED") with input as req
}

test_deny_by_default_for_empty_or_partial_input if {
	denied_with(gateway.decision, "POLICY_DENIED") with input as {}
	denied_with(gateway.decision, "POLICY_DENIED") with input as {"user": fixtures.users.viewer}
	no_user := json.remove(fixtures.request("plant_list_agents", "viewer", {}), ["user"])
	denied_with(gateway.decision, "POLICY_DENIED") with input as no_user
	no_roles := json.remove(fixtures.request("cp_list_agents", "viewer", {}), ["user/roles"])
	denied_with(gateway.decision, "RBAC_DENIED") with input as no_roles
}

test_null_collections_deny_rather_than_error if {
	req := json.patch(
		fixtures.request("cp_list_agents", "viewer", {}),
		[
			{"op": "replace", "path": "/user/roles", "value": null},
			{"op": "replace", "path": "/route/middleware_stack", "value": null},
			{"op": "replace", "path": "/request/params", "value": null},
		],
	)
	denied_with(gateway.decision, "RBAC_DENIED") with input as req
}

# A broken data document must not turn into an allow.
test_missing_config_denies if {
	d := gateway.decision with input as fixtures.request("cp_execute_agent", "trial_customer", {"id": "abc123"})
		with data.budget.config as {}
	denied_with(d, "POLICY_DENIED")
	d.reason == "no policy rule produced a decision"
}

test_decision_shape_is_stable if {
	keys := {
		"allow", "code", "reason", "permission", "action", "sandbox",
		"obligations", "budget", "rate_limit_per_hour",
	}
	every name, _ in fixtures.routes {
		every user, _ in fixtures.users {
			d := decide(name, user, {"id": "abc123"})
			{k | some k, _ in d} == keys
		}
	}
}

test_deny_code_is_always_a_stable_one if {
	codes := {"DOMAIN_NOT_ALLOWED", "RBAC_DENIED", "TRIAL_EXPIRED", "POLICY_DENIED"}
	every name, _ in fixtures.routes {
		every user, _ in fixtures.users {
			d := decide(name, user, {"id": "abc123"})
			no_code := d.code == ""
			no_reason := d.reason == ""
			d.allow == no_code
			d.allow == no_reason
			allowed_or_coded(d, codes)
		}
	}
}

allowed_or_coded(d, _) if d.allow

allowed_or_coded(d, codes) if d.code in codes

test_rate_limit_passes_through if {
	decide("plant_audit_run", "infra", {}).rate_limit_per_hour == 100
	decide("pp_create_agent", "governor_admin", {}).rate_limit_per_hour == 10000
}

test_unmappable_route_is_rbac_denied_except_for_admin if {
	req := json.patch(
		fixtures.request("plant_audit_run", "infra", {}),
		[{"op": "replace", "path": "/route/path_template", "value": "/api/{anything}"}],
	)
	d := gateway.decision with input as req
	denied_with(d, "RBAC_DENIED")
	d.reason == "no permission is mapped for this route"
	d.permission == ""
	admin := json.patch(req, [{"op": "replace", "path": "/user", "value": fixtures.users.governor_admin}])
	gateway.decision.allow with input as admin
}
