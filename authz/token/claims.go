package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// wireClaims is the union of the seed's payload and the platform's later
// contract. Typed fields make encoding/json reject wrong claim types (roles
// as a string, is_governor as "true") instead of us coercing them.
type wireClaims struct {
	Iss             string      `json:"iss"`
	Sub             string      `json:"sub"`
	Aud             audience    `json:"aud"`
	Exp             numericDate `json:"exp"`
	Nbf             numericDate `json:"nbf"`
	Iat             numericDate `json:"iat"`
	UserID          string      `json:"user_id"`
	Email           string      `json:"email"`
	Roles           []string    `json:"roles"`
	IsGovernor      bool        `json:"is_governor"`
	GovernorAgentID string      `json:"governor_agent_id"`
	AgentID         string      `json:"agent_id"`
	CustomerID      string      `json:"customer_id"`
	TrialMode       bool        `json:"trial_mode"`
	TrialExpiresAt  string      `json:"trial_expires_at"`
}

// parsed keeps the wire form and the result in one allocation.
type parsed struct {
	c Claims
	w wireClaims
}

// Latest date RFC 3339 can express; anything beyond is not a real timestamp
// and would overflow time arithmetic.
const maxNumericDate = 253402300799

// numericDate is a JWT NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly fractional. set distinguishes an absent claim from 0.
type numericDate struct {
	t   time.Time
	set bool
}

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("NumericDate must be a number")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("NumericDate: %w", err)
	}
	if f < 0 || f > maxNumericDate {
		return errors.New("NumericDate out of range")
	}
	sec, frac := math.Modf(f)
	d.t = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	d.set = true
	return nil
}

// audience accepts both forms RFC 7519 §4.1.3 allows: a string or an array
// of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errors.New("aud is empty")
	}
	switch b[0] {
	case 'n':
		if string(b) != "null" {
			return errors.New("aud must be a string or an array of strings")
		}
		return nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	case '[':
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return err
		}
		*a = ss
		return nil
	default:
		return errors.New("aud must be a string or an array of strings")
	}
}

// validate applies the registered-claim rules. Issuer and audience come
// before time so that ErrExpired is only said about tokens meant for us.
func (v *Verifier) validate(w *wireClaims) error {
	if v.issuers != nil {
		if w.Iss == "" {
			return fmt.Errorf("%w: iss missing", ErrInvalid)
		}
		if _, ok := v.issuers[w.Iss]; !ok {
			return fmt.Errorf("%w: iss %q not accepted", ErrInvalid, quote(w.Iss))
		}
	}
	if v.audience != "" && !slices.Contains(w.Aud, v.audience) {
		return fmt.Errorf("%w: aud does not include %q", ErrInvalid, v.audience)
	}
	if !w.Exp.set {
		return fmt.Errorf("%w: exp missing", ErrInvalid)
	}
	now := v.now()
	if !now.Before(w.Exp.t.Add(v.leeway)) {
		return fmt.Errorf("%w: exp %s is past (now %s, leeway %s)", ErrExpired,
			w.Exp.t.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), v.leeway)
	}
	if w.Nbf.set && now.Add(v.leeway).Before(w.Nbf.t) {
		return fmt.Errorf("%w: nbf %s is in the future", ErrInvalid, w.Nbf.t.UTC().Format(time.RFC3339))
	}
	if w.Iat.set && w.Iat.t.After(now.Add(v.leeway)) {
		return fmt.Errorf("%w: iat %s is in the future", ErrInvalid, w.Iat.t.UTC().Format(time.RFC3339))
	}
	if w.Sub == "" && w.UserID == "" {
		// Every decision is audited against a subject; an anonymous token
		// cannot be attributed.
		return fmt.Errorf("%w: neither sub nor user_id present", ErrInvalid)
	}
	return nil
}

// fill derives Claims from the validated wire form.
func (p *parsed) fill() error {
	w := &p.w
	for _, r := range w.Roles {
		if r == "" {
			return fmt.Errorf("%w: roles contains an empty or null entry", ErrMalformed)
		}
	}
	var trialEnd time.Time
	if w.TrialExpiresAt != "" {
		t, err := time.Parse(time.RFC3339, w.TrialExpiresAt)
		if err != nil {
			return fmt.Errorf("%w: trial_expires_at is not RFC 3339", ErrMalformed)
		}
		trialEnd = t
	}
	p.c = Claims{
		Subject:         w.Sub,
		UserID:          w.UserID,
		Email:           w.Email,
		Roles:           w.Roles,
		GovernorAgentID: w.GovernorAgentID,
		AgentID:         w.AgentID,
		CustomerID:      w.CustomerID,
		TrialMode:       w.TrialMode,
		TrialExpiresAt:  trialEnd,
		Issuer:          w.Iss,
		Audience:        w.Aud,
		IssuedAt:        w.Iat.t,
		ExpiresAt:       w.Exp.t,
		NotBefore:       w.Nbf.t,
	}
	if p.c.Subject == "" {
		p.c.Subject = w.UserID
	}
	if p.c.UserID == "" {
		p.c.UserID = w.Sub
	}
	// The later contract defines a Governor as an admin holding a
	// governor_agent_id; the seed states it directly.
	p.c.IsGovernor = w.IsGovernor || (w.GovernorAgentID != "" && p.c.HasRole("admin"))
	return nil
}
