# Package trial keeps trial agents away from production backends: a trial
# agent's execute action goes to the sandbox, and an expired trial may no
# longer run metered actions at all.
#
# The seed's bare query shape
#   POST /v1/data/trial/sandbox_route {"input": {"agent": {"trial_mode": true}, "action": "execute"}}
# answers {"result": true}; the gateway input shape (input.user, input.route)
# is the one the gateway itself sends.
package trial

import data.rbac

# Both shapes are accepted so that clients written against the seed keep
# working while the gateway sends the richer input.
trial_mode if input.user.trial_mode == true

trial_mode if input.agent.trial_mode == true

# Expiry is computed by the caller (trial_expires_at against its clock), which
# keeps decisions a pure function of the input and therefore cacheable.
expired if {
	trial_mode
	input.user.trial_expired == true
}

expired if {
	trial_mode
	input.agent.trial_expired == true
}

action := input.action if {
	is_string(input.action)
} else := rbac.action

# A route without a sandbox cannot honour the obligation, so it is not asked
# to. The bare seed query carries no route and leaves that choice to its
# caller.
sandbox_available if input.route.has_sandbox == true

sandbox_available if not input.route

default sandbox_route := false

sandbox_route if {
	trial_mode
	not expired
	action in data.trial.config.sandbox_actions
	sandbox_available
}

default obligations := {}

obligations := {
	"sandbox": true,
	"reason": "trial agents execute in the sandbox",
} if sandbox_route

# Refused rather than sandboxed: an expired trial has no budget left to spend,
# even in the sandbox.
expired_action if {
	expired
	action in data.trial.config.metered_actions
}
