package trial_test

import data.fixtures
import data.trial

execute_as(user_name) := fixtures.request("cp_execute_agent", user_name, {"id": "abc123"})

test_trial_execute_goes_to_sandbox if {
	trial.sandbox_route with input as execute_as("trial_customer")
	trial.obligations == {"sandbox": true, "reason": "trial agents execute in the sandbox"} with input as execute_as("trial_customer")
}

test_paid_execute_stays_in_production if {
	not trial.sandbox_route with input as execute_as("paid_customer")
	trial.obligations == {} with input as execute_as("paid_customer")
}

test_trial_demo_is_not_sandboxed if {
	req := fixtures.request("cp_demo_agent", "trial_customer", {"id": "abc123"})
	not trial.sandbox_route with input as req
}

# A route without a sandbox URL cannot honour the obligation.
test_no_sandbox_on_route_without_one if {
	req := json.patch(execute_as("trial_customer"), [{"op": "replace", "path": "/route/has_sandbox", "value": false}])
	not trial.sandbox_route with input as req
}

test_expired_trial_is_refused_not_sandboxed if {
	trial.expired_action with input as execute_as("expired_customer")
	not trial.sandbox_route with input as execute_as("expired_customer")
	trial.expired_action with input as fixtures.request("cp_demo_agent", "expired_customer", {"id": "abc123"})
}

test_expired_trial_may_still_read if {
	not trial.expired_action with input as fixtures.request("cp_get_agent", "expired_customer", {"id": "abc123"})
}

# trial_expired without trial_mode is meaningless (a paid agent has no trial).
test_expiry_needs_trial_mode if {
	req := json.patch(execute_as("paid_customer"), [{"op": "replace", "path": "/user/trial_expired", "value": true}])
	not trial.expired_action with input as req
}

# Seed section 2.2 / 3.3: POST /v1/data/trial/sandbox_route.
test_seed_query_shape if {
	trial.sandbox_route with input as {"agent": {"trial_mode": true}, "action": "execute"}
	not trial.sandbox_route with input as {"agent": {"trial_mode": false}, "action": "execute"}
	not trial.sandbox_route with input as {"agent": {"trial_mode": true}, "action": "view"}
	not trial.sandbox_route with input as {"agent": {"trial_mode": true, "trial_expired": true}, "action": "execute"}
}
