package budget_test

import data.budget
import data.fixtures

test_trial_execute_uses_trial_cap_and_execute_cost if {
	req := fixtures.request("cp_execute_agent", "trial_customer", {"id": "abc123"})
	budget.applies with input as req
	budget.monthly_cap_usd == 5 with input as req
	budget.estimated_cost_usd == 0.5 with input as req
}

# Seed BUDGET-001: the default cap is 30 USD a month.
test_paid_execute_uses_default_cap if {
	req := fixtures.request("cp_execute_agent", "paid_customer", {"id": "abc123"})
	budget.monthly_cap_usd == 30 with input as req
}

test_demo_cost if {
	req := fixtures.request("cp_demo_agent", "trial_customer", {"id": "abc123"})
	budget.estimated_cost_usd == 0.1 with input as req
	not budget.applies with input as req
}

test_unpriced_actions_cost_nothing if {
	req := fixtures.request("plant_list_agents", "viewer", {})
	budget.estimated_cost_usd == 0 with input as req
	not budget.applies with input as req
}

test_only_budget_routes_apply if {
	applying := {name |
		some name, r in fixtures.routes
		budget.applies with input as {"route": r}
	}
	applying == {"cp_execute_agent"}
}

test_caps_and_prices_are_data if {
	req := fixtures.request("cp_execute_agent", "paid_customer", {"id": "abc123"})
	budget.monthly_cap_usd == 100 with input as req with data.budget.config.default_monthly_cap_usd as 100
	budget.estimated_cost_usd == 2 with input as req with data.budget.config.cost_by_permission as {"agent:execute": 2}
}
