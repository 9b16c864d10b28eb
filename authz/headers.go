package authz

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Headers the gateway owns. Everything under IdentityPrefix is set by the
// authz server alone: any copy a client sends is stripped first.
const (
	IdentityPrefix = "x-waooaw-"

	HeaderUserID     = IdentityPrefix + "user-id"
	HeaderEmail      = IdentityPrefix + "email"
	HeaderRoles      = IdentityPrefix + "roles"
	HeaderGovernor   = IdentityPrefix + "governor"
	HeaderAgentID    = IdentityPrefix + "agent-id"
	HeaderCustomerID = IdentityPrefix + "customer-id"
	HeaderTrial      = IdentityPrefix + "trial"
	HeaderPermission = IdentityPrefix + "permission"
	HeaderReason     = IdentityPrefix + "action-reason"
	HeaderSandbox    = IdentityPrefix + "sandbox" // == translate.SandboxHeader

	HeaderCorrelationID     = "x-correlation-id"
	HeaderCausationID       = "x-causation-id"
	HeaderPolicyEnforcement = "x-policy-enforcement"
	HeaderDeviceToken       = "x-device-token"
	HeaderActionReason      = "x-action-reason"
)

const (
	maxIDLen          = 128
	maxDeviceTokenLen = 4096
	maxReasonLen      = 1024
)

// wellFormedID accepts client-supplied correlation and causation IDs only
// when they are short and made of characters safe in logs and headers.
func wellFormedID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' {
			continue
		}
		return false
	}
	return true
}

// newID returns a random UUID v4 string.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux (getrandom)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// printable reports whether s is non-empty visible ASCII (spaces allowed
// inside), within max bytes: what may be copied into an audit record.
func printable(s string, max int) bool {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
