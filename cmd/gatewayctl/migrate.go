package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/waooaw/policygateway/migrations"
)

func init() {
	commands["migrate"] = command{
		summary: "apply pending database migrations (up) or list them (status)",
		run:     runMigrate,
	}
}

func runMigrate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gatewayctl migrate up|status [-database-url URL]")
		fs.PrintDefaults()
	}
	// The environment is read after parsing rather than used as the flag's
	// default, which -h would print, password and all.
	dbURL := fs.String("database-url", "", "PostgreSQL URL (default $DATABASE_URL)")

	// Parse twice so the flag may come before or after the action, as
	// people type it both ways.
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	action := fs.Arg(0)
	if fs.NArg() > 0 {
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return flagError(err)
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("unexpected arguments %q", fs.Args())
		}
	}

	var do func(ctx context.Context, dsn string) error
	switch action {
	case "up":
		do = migrations.Up
	case "status":
		do = func(ctx context.Context, dsn string) error { return migrations.Status(ctx, dsn, os.Stdout) }
	case "":
		fs.Usage()
		return errors.New("missing action: up or status")
	default:
		return fmt.Errorf("unknown action %q: want up or status", action)
	}
	if *dbURL == "" {
		*dbURL = os.Getenv("DATABASE_URL")
	}
	if *dbURL == "" {
		return errors.New("no database: set DATABASE_URL or pass -database-url")
	}
	return do(ctx, *dbURL)
}

// flagError turns -h into a clean exit; the flag package has already
// printed the usage for it and for any other flag error.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
