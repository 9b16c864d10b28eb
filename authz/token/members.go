package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// encoding/json matches member names case-insensitively (with Unicode
// folding: "ſub" is sub, "\u212aid" is kid) and lets the last duplicate win.
// JWT claim names are case-sensitive (RFC 7519 §4), so {"EXP": ...} is not
// an exp claim, and a duplicate is ambiguous to every other parser that
// reads the same token. A token that could mean two things to two parsers
// is refused rather than interpreted.
var (
	headerMembers = []string{"alg", "kid", "crit"}
	claimMembers  = []string{
		"iss", "sub", "aud", "exp", "nbf", "iat", "user_id", "email", "roles",
		"is_governor", "governor_agent_id", "agent_id", "customer_id",
		"trial_mode", "trial_expires_at",
	}
)

// checkMembers rejects a top-level member that repeats a known name or
// differs from one only by case folding. data must be a JSON object that
// encoding/json has already accepted; the walk relies on that validity and
// only guards its indexes.
func checkMembers(data []byte, known []string) error {
	var seen uint64 // bit i: known[i] met; len(known) stays well under 64
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errors.New("not a JSON object")
	}
	i++
	for {
		i = skipSpace(data, i)
		if i >= len(data) {
			return errors.New("truncated object")
		}
		switch data[i] {
		case '}':
			return nil
		case ',':
			i++
			continue
		case '"':
		default:
			return errors.New("member name expected")
		}
		end := skipString(data, i)
		name := data[i+1 : max(i+1, end-1)]
		if bytes.IndexByte(name, '\\') >= 0 {
			// Escaped names are rare; let encoding/json unescape them exactly
			// as it did when it matched them.
			var s string
			if err := json.Unmarshal(data[i:end], &s); err != nil {
				return err
			}
			name = []byte(s)
		}
		for k, want := range known {
			if string(name) == want {
				if seen&(1<<k) != 0 {
					return fmt.Errorf("duplicate member %q", want)
				}
				seen |= 1 << k
				break
			}
			if bytes.EqualFold(name, []byte(want)) {
				return fmt.Errorf("member name differs from %q only in case", want)
			}
		}
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return errors.New("':' expected")
		}
		i = skipValue(data, skipSpace(data, i+1))
	}
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at d[i] == '"'.
func skipString(d []byte, i int) int {
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(d)
}

// skipValue returns the index just past the value starting at d[i] (for a
// number or literal: the delimiter that ends it).
func skipValue(d []byte, i int) int {
	depth := 0
	for i < len(d) {
		switch d[i] {
		case '"':
			i = skipString(d, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
