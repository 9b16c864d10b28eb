package policy

import (
	"encoding/binary"
	"slices"
)

// keyBufSize covers typical inputs (a few hundred bytes) so that building a
// key on the hot path stays on the stack.
const keyBufSize = 512

// appendKey appends an unambiguous binary encoding of in to b. It is the
// decision cache key, so it must distinguish every pair of inputs the policy
// could distinguish: strings are length-prefixed, and nil collections are
// told apart from empty ones because they reach Rego as null versus [] or {}.
// TestCacheKeyCoversEveryField fails when a new Input field is not encoded.
//
// It is hand-written rather than encoding/json because the cached decision
// path is dominated by key construction, and json.Marshal costs several
// allocations and about a microsecond here.
func appendKey(b []byte, in *Input) []byte {
	u := &in.User
	b = appendString(b, u.ID)
	b = appendString(b, u.Email)
	b = appendStrings(b, u.Roles)
	b = appendBools(b, u.IsGovernor, u.TrialMode, u.TrialExpired)
	b = appendString(b, u.AgentID)
	b = appendString(b, u.CustomerID)
	b = appendString(b, u.Issuer)

	r := &in.Route
	b = binary.AppendVarint(b, int64(r.ID))
	b = binary.AppendVarint(b, int64(r.Version))
	b = appendString(b, r.Method)
	b = appendString(b, r.PathTemplate)
	b = appendString(b, r.TargetBackend)
	b = appendStrings(b, r.MiddlewareStack)
	b = appendString(b, r.RequiresOPAPolicy)
	b = appendBools(b, r.RequiresGovernorRole, r.HasSandbox, false)
	b = appendString(b, r.Permission)
	b = binary.AppendVarint(b, int64(r.RateLimitPerHour))

	q := &in.Request
	b = appendString(b, q.Method)
	b = appendString(b, q.Path)
	b = appendParams(b, q.Params)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendStrings writes 0 for nil and len+1 otherwise.
func appendStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(ss))+1)
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendBools(b []byte, x, y, z bool) []byte {
	var v byte
	if x {
		v |= 1
	}
	if y {
		v |= 2
	}
	if z {
		v |= 4
	}
	return append(b, v)
}

// maxSortedParams bounds the stack array used to order params; routes have
// one or two. Larger maps fall back to a heap-allocated sort.
const maxSortedParams = 8

// appendParams writes params in key order, because map iteration order is
// random and the key must not be.
func appendParams(b []byte, params map[string]string) []byte {
	if params == nil {
		return append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(params))+1)
	var stack [maxSortedParams]string
	keys := stack[:0]
	if len(params) > maxSortedParams {
		keys = make([]string, 0, len(params))
	}
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, params[k])
	}
	return b
}
