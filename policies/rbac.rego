# Package rbac answers two questions for a request: which permission does it
# need, and do the caller's roles grant it. Grants and route mappings are data
# (data.rbac.config in data.json) so that a grant change is a reviewed data
# diff, not a rule edit.
#
# It also answers the seed's bare query shape
#   POST /v1/data/rbac/allow {"input": {"user": {"roles": [...]}, "permission": "agent:execute"}}
# because an explicit input.permission takes precedence over route derivation.
#
# Rules on the per-request path read data.rbac.config.* directly and avoid
# helper functions and set building: each evaluation step costs about a
# microsecond, and the Check server evaluates this for every uncached input.
package rbac

# --- which permission ---------------------------------------------------------

# Precedence, most specific first: an explicit permission in the query (seed
# shape), the route row's override column, the "METHOD template" table, then a
# generic derivation so that a new route gets a narrow permission that only
# admin holds until someone grants it.
permission := input.permission if {
	input.permission != ""
} else := input.route.permission if {
	input.route.permission != ""
} else := p if {
	p := data.rbac.config.route_permissions[route_key]
} else := derived_permission

route_key := concat(" ", [upper(input.route.method), input.route.path_template])

# The action is the part after the colon: downstream policies (trial, budget)
# and the audit record reason about "execute" or "demo", not about resources.
action := parts[1] if {
	parts := split(permission, ":")
	count(parts) == 2
}

# Some resources have a single coarse permission in the platform's table
# (billing:manage), so every verb on them maps to it.
derived_permission := p if {
	p := data.rbac.config.resource_permissions[resource]
} else := concat(":", [resource, derived_action])

path_segments := [s | some s in split(input.route.path_template, "/"); s != ""]

# Literal segments that name neither a parameter nor routing structure; the
# first is the resource, a later one may be a verb ("execute", "approve").
resource_segments := [s |
	some s in path_segments
	not startswith(s, "{")
	not structural_segment(s)
]

structural_segment(s) if s in {"api", "admin"}

structural_segment(s) if regex.match(`^v[0-9]+$`, s)

resource := a if {
	a := data.rbac.config.resource_aliases[resource_segments[0]]
} else := singular(resource_segments[0])

# Good enough for the platform's plural nouns (agents, customers,
# industries); irregular ones belong in resource_aliases.
singular(s) := concat("", [trim_suffix(s, "ies"), "y"]) if {
	endswith(s, "ies")
} else := trim_suffix(s, "s") if {
	endswith(s, "s")
	not endswith(s, "ss")
} else := s

derived_action := a if {
	count(resource_segments) > 1
	a := data.rbac.config.path_actions[resource_segments[count(resource_segments) - 1]]
} else := a if {
	a := data.rbac.config.method_actions[upper(input.route.method)]
}

# --- whether the route is RBAC-checked -----------------------------------------

# The seed marks RBAC-checked routes in three ways; any of them counts, so a
# route row cannot lose its check by being written in a different style.
default required := false

required if "rbac" in input.route.middleware_stack

required if "policy" in input.route.middleware_stack

required if input.route.requires_opa_policy != ""

# --- what the caller holds ----------------------------------------------------

default allow := false

# admin's "*" lives in data rather than in a rule so that the whole grant
# table can be reviewed in one place.
allow if {
	some role in input.user.roles
	"*" in data.rbac.config.role_permissions[role]
}

allow if {
	some role in input.user.roles
	permission in data.rbac.config.role_permissions[role]
}

# granted is for tests and for explaining a decision; allow does not build it.
granted contains p if {
	some role in input.user.roles
	some p in data.rbac.config.role_permissions[role]
}

# Staff means holding at least one known platform role. Unknown roles are not
# staff, so ownership rules that exempt staff cannot be bypassed by inventing
# a role name.
staff if {
	some role in input.user.roles
	data.rbac.config.role_permissions[role]
	not role in data.rbac.config.customer_roles
}
