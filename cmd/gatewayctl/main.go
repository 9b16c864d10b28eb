// Command gatewayctl is the platform team's tool for the policy gateway:
// database migrations, routes, budgets, audit, dev tokens and policy tests.
//
// Each subcommand lives in its own file and registers itself in the
// commands table from an init function, so adding one never touches this
// file.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gatewayctl: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage(os.Stderr)
		return errors.New("no command given")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(os.Stdout)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		return fmt.Errorf("unknown command %q (see gatewayctl help)", name)
	}
	if err := cmd.run(ctx, rest); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gatewayctl <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, name := range slices.Sorted(maps.Keys(commands)) {
		fmt.Fprintf(tw, "  %s\t%s\n", name, commands[name].summary)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run gatewayctl <command> -h for a command's flags.")
}
