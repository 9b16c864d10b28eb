# Package gateway composes rbac, trial and budget into the one document the
# ext_authz server asks for per request: data.gateway.decision.
#
# Contract notes that the Go side relies on:
#   - decision is always defined; anything the rules cannot decide denies.
#   - a deny carries exactly one code, chosen by a fixed priority
#     (DOMAIN_NOT_ALLOWED, RBAC_DENIED, TRIAL_EXPIRED, POLICY_DENIED), so the
#     same input always yields the same code.
#   - the Governor rule is deliberately absent: Go enforces it after this
#     decision so that no policy edit can weaken it.
package gateway

import data.budget
import data.rbac
import data.trial

default decision := {
	"allow": false,
	"code": "POLICY_DENIED",
	"reason": "no policy rule produced a decision",
	"permission": "",
	"action": "",
	"sandbox": false,
	"obligations": {},
	"budget": {"applies": false, "monthly_cap_usd": 0, "estimated_cost_usd": 0},
	"rate_limit_per_hour": 0,
}

decision := {
	"allow": allow,
	"code": code,
	"reason": reason,
	"permission": permission,
	"action": action,
	"sandbox": sandbox,
	"obligations": obligations,
	"budget": budget_doc,
	"rate_limit_per_hour": rate_limit_per_hour,
}

default allow := false

allow if not denial

# The else chain is the priority order: the first failing check names the
# code, and later checks are not evaluated at all. Domain comes first so that
# a foreign identity learns nothing about which permissions exist; ownership
# comes last because it is the most specific.
denial := {
	"code": "DOMAIN_NOT_ALLOWED",
	"reason": "this route is restricted to platform staff email domains",
} if {
	domain_denied
} else := {
	"code": "RBAC_DENIED",
	"reason": rbac_reason,
} if {
	rbac_denied
} else := {
	"code": "TRIAL_EXPIRED",
	"reason": "the trial has expired",
} if {
	trial.expired_action
} else := {
	"code": "POLICY_DENIED",
	"reason": "the request matched no route",
} if {
	not routed
} else := {
	"code": "POLICY_DENIED",
	"reason": "an authenticated user is required",
} if {
	not authenticated
} else := {
	"code": "POLICY_DENIED",
	"reason": sprintf("agent %s is not yours", [substring(requested_agent, 0, 64)]),
} if {
	ownership_denied
}

default code := ""

code := denial.code

default reason := ""

reason := denial.reason

default permission := ""

permission := rbac.permission

default action := ""

action := rbac.action

# --- checks ------------------------------------------------------------------------

# AUTH-004: platform portal routes are for the platform's own staff accounts.
# The reason does not echo the address (data minimisation).
domain_denied if {
	input.route.target_backend in data.gateway.config.domain_restricted_backends
	not staff_email_domain
}

# Compared on the part after the last @ so that "notwaooaw.com" suffixes and
# "waooaw.com.evil.io" do not pass.
staff_email_domain if {
	parts := split(input.user.email, "@")
	count(parts) > 1
	domain := lower(parts[count(parts) - 1])
	some allowed in data.gateway.config.pp_email_domains
	domain == lower(allowed)
}

rbac_denied if {
	rbac.required
	not rbac.allow
}

rbac_reason := sprintf("your roles do not grant %s", [permission]) if {
	permission != ""
} else := "no permission is mapped for this route"

# Unknown paths are Envoy's 404, so an input without a route is a caller bug;
# it must not turn into an allow for whatever the other checks ignore.
routed if input.route.path_template != ""

# Go only calls after authenticating, but a decision for an anonymous input
# would be cached and reused, so the policy refuses it on its own. This is a
# named rule because OPA hoists an undefined reference out of a negation:
# "not input.user.id != """ would be undefined, not true, without a user.
authenticated if input.user.id != ""

# A caller without a staff role may act only on its own agent. Applying this
# to everyone who is not staff (not just to known customer roles) keeps an
# unknown role from slipping past it.
ownership_denied if {
	agent_scoped_route
	not rbac.staff
	not owns_requested_agent
}

agent_scoped_route if input.route.path_template == data.gateway.config.agent_scoped_path_prefix

agent_scoped_route if {
	startswith(input.route.path_template, concat("", [data.gateway.config.agent_scoped_path_prefix, "/"]))
}

default requested_agent := ""

requested_agent := id if {
	id := input.request.params.id
	is_string(id)
}

owns_requested_agent if {
	requested_agent != ""
	requested_agent == input.user.agent_id
}

# --- obligations and limits -------------------------------------------------------

# Only an allowed request carries obligations, so an audit record of a denial
# never claims the request was sandboxed.
default sandbox := false

sandbox if {
	allow
	trial.sandbox_route
}

default obligations := {}

obligations := trial.obligations if allow

budget_doc := {
	"applies": budget.applies,
	"monthly_cap_usd": budget.monthly_cap_usd,
	"estimated_cost_usd": budget.estimated_cost_usd,
}

default rate_limit_per_hour := 0

rate_limit_per_hour := n if {
	n := input.route.rate_limit_per_hour
	is_number(n)
}
