package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/waooaw/policygateway/authz/token"
)

func init() {
	commands["token"] = command{
		summary: "print a development HS256 token signed with JWT_SECRET (seed claims as flags)",
		run:     tokenCmd,
	}
}

func tokenCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	secret := fs.String("secret", os.Getenv("JWT_SECRET"), "HS256 secret (default $JWT_SECRET)")
	sub := fs.String("sub", "admin-123", "sub: the user id")
	email := fs.String("email", "admin@waooaw.com", "email")
	roles := fs.String("roles", "admin", "comma-separated roles")
	governor := fs.Bool("is-governor", false, "is_governor")
	agent := fs.String("agent-id", "", "agent_id")
	customer := fs.String("customer-id", "", "customer_id")
	trial := fs.Bool("trial-mode", false, "trial_mode")
	trialExpires := fs.String("trial-expires-at", "", "trial_expires_at, RFC 3339 (default: 14 days from now when -trial-mode)")
	issuer := fs.String("iss", "", "iss (optional)")
	exp := fs.Duration("exp", 24*time.Hour, "lifetime: exp = now + this")
	// The claim names themselves work too: -is_governor, -agent_id, ...
	fs.BoolVar(governor, "is_governor", false, "same as -is-governor")
	fs.StringVar(agent, "agent_id", "", "same as -agent-id")
	fs.StringVar(customer, "customer_id", "", "same as -customer-id")
	fs.BoolVar(trial, "trial_mode", false, "same as -trial-mode")
	fs.StringVar(trialExpires, "trial_expires_at", "", "same as -trial-expires-at")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		return errors.New("no secret: set JWT_SECRET or pass -secret")
	}
	now := time.Now()
	claims := map[string]any{
		"sub": *sub, "email": *email, "roles": splitList(*roles), "is_governor": *governor,
		"iat": now.Unix(), "exp": now.Add(*exp).Unix(),
	}
	if *agent != "" {
		claims["agent_id"] = *agent
	}
	if *customer != "" {
		claims["customer_id"] = *customer
	}
	if *issuer != "" {
		claims["iss"] = *issuer
	}
	if *trial {
		claims["trial_mode"] = true
		exp := *trialExpires
		if exp == "" {
			exp = now.Add(14 * 24 * time.Hour).UTC().Format(time.RFC3339)
		}
		if _, err := time.Parse(time.RFC3339, exp); err != nil {
			return fmt.Errorf("-trial-expires-at %q: %w", exp, err)
		}
		claims["trial_expires_at"] = exp
	}
	tok, err := token.SignHS256([]byte(*secret), claims)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
