package main

import (
	"context"
	"flag"
	"os"

	"github.com/waooaw/policygateway/envoy"
)

func init() {
	commands["bootstrap"] = command{
		summary: "print an Envoy bootstrap pointing at gatewayd (ADS, ext_authz, ext_proc)",
		run:     bootstrapCmd,
	}
}

func bootstrapCmd(_ context.Context, args []string) error {
	b := envoy.Default()
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.StringVar(&b.NodeID, "node-id", b.NodeID, "Envoy node id")
	fs.StringVar(&b.AdminAddress, "admin-address", b.AdminAddress, "Envoy admin listen address")
	fs.IntVar(&b.AdminPort, "admin-port", b.AdminPort, "Envoy admin port")
	fs.IntVar(&b.ListenPort, "listen-port", b.ListenPort, "listener port gatewayd configures (comment only)")
	fs.StringVar(&b.XDS, "xds", b.XDS, "gatewayd ADS host:port")
	fs.StringVar(&b.Authz, "authz", b.Authz, "gatewayd ext_authz host:port")
	fs.StringVar(&b.ExtProc, "extproc", b.ExtProc, "gatewayd ext_proc host:port")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return b.Render(os.Stdout)
}
