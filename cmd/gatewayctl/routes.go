package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waooaw/policygateway/xds"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
)

func init() {
	commands["routes"] = command{
		summary: "routes validate|list: check every active row (all versions) or list what serves",
		run:     routesCmd,
	}
}

func routesCmd(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "validate" && args[0] != "list") {
		return errors.New("usage: gatewayctl routes validate|list [-database-url URL | -file routes.yaml]")
	}
	fs := flag.NewFlagSet("routes "+args[0], flag.ContinueOnError)
	dsn := fs.String("database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (default $DATABASE_URL)")
	file := fs.String("file", "", "a YAML route file instead of the database")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	src, closeSrc, err := openSource(ctx, *dsn, *file)
	if err != nil {
		return err
	}
	defer closeSrc()
	rows, active, err := src.Load(ctx)
	if err != nil {
		return err
	}
	if args[0] == "list" {
		m, rej := model.Build(rows, active, model.Options{})
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "ID\tVERSION\tMETHOD\tPATH\tUPSTREAM\tSANDBOX\n")
		for _, r := range m.Routes {
			sandbox := ""
			if r.Sandbox != nil {
				sandbox = r.Sandbox.ClusterName()
			}
			fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s%s\t%s\n", r.ID, r.Version, r.Method, r.Path.Raw, r.Upstream.ClusterName(), r.Upstream.PathTemplate, sandbox)
		}
		w.Flush()
		fmt.Printf("active version %d: %d routes served, %d rows rejected\n", active, len(m.Routes), len(rej))
		return nil
	}
	rejections := model.Validate(rows, model.Options{})
	for _, r := range rejections {
		marker := ""
		if r.Version == active {
			marker = " [ACTIVE VERSION]"
		}
		fmt.Printf("row %d (version %d)%s: %s: %s\n", r.RowID, r.Version, marker, r.Field, r.Reason)
	}
	fmt.Printf("%d active rows checked across all versions, %d rejected (active version is %d)\n", len(rows), len(rejections), active)
	if len(rejections) > 0 {
		return fmt.Errorf("%d invalid rows", len(rejections))
	}
	return nil
}

func openSource(ctx context.Context, dsn, file string) (xds.Source, func(), error) {
	log := discardLogger()
	if file != "" {
		return source.NewFile(file, log), func() {}, nil
	}
	if dsn == "" {
		return nil, nil, errors.New("set DATABASE_URL, -database-url or -file")
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	return source.NewPostgres(pool, dsn, log), pool.Close, nil
}
