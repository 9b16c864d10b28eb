package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/waooaw/policygateway/authz/policy"
	"github.com/waooaw/policygateway/policies"
)

func init() {
	commands["policy"] = command{
		summary: "policy test [-dir DIR]: run the Rego tests (embedded policies by default)",
		run:     policyCmd,
	}
}

func policyCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "test" {
		return errors.New("usage: gatewayctl policy test [-dir DIR]")
	}
	flags := flag.NewFlagSet("policy test", flag.ContinueOnError)
	dir := flags.String("dir", "", "policy directory (default: the policies embedded in this binary)")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	var fsys fs.FS = policies.FS
	if *dir != "" {
		fsys = os.DirFS(*dir)
	}
	passed, failed, err := policy.RunRegoTests(ctx, fsys)
	fmt.Printf("rego tests: %d passed, %d failed\n", passed, failed)
	return err
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
