# Package budget says which monthly cap and which cost estimate apply to a
# request. It does not enforce: the gateway reserves the estimate atomically
# against the agent's running spend, which policy evaluation cannot see.
package budget

import data.rbac
import data.trial

# Only routes that opted into budget tracking reserve spend, so that reads
# and admin calls never touch the counters.
default applies := false

applies if "budget" in input.route.middleware_stack

# Trial agents get a smaller cap so that an abandoned trial cannot run up
# the full paid allowance.
monthly_cap_usd := data.budget.config.trial_monthly_cap_usd if {
	trial.trial_mode
} else := data.budget.config.default_monthly_cap_usd

# A per-permission price beats a per-action one so that one expensive
# resource can be priced without repricing every execute.
estimated_cost_usd := c if {
	c := data.budget.config.cost_by_permission[rbac.permission]
} else := c if {
	c := data.budget.config.cost_by_action[rbac.action]
} else := data.budget.config.default_cost_usd
