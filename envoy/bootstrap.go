// Package envoy renders the Envoy bootstrap that points Envoy at gatewayd.
package envoy

import (
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"text/template"
)

//go:embed bootstrap.yaml.tmpl
var bootstrapTmpl string

var tmpl = template.Must(template.New("bootstrap").Parse(bootstrapTmpl))

// Bootstrap holds the addresses a bootstrap needs.
type Bootstrap struct {
	NodeID       string
	AdminAddress string
	AdminPort    int
	ListenPort   int    // for the comment only: the listener comes over LDS
	XDS          string // host:port of gatewayd's ADS server
	Authz        string // host:port of gatewayd's ext_authz server
	ExtProc      string // host:port of gatewayd's ext_proc server
}

// Default matches gatewayd's default ports on loopback.
func Default() Bootstrap {
	return Bootstrap{
		NodeID: "gateway-envoy", AdminAddress: "127.0.0.1", AdminPort: 9901, ListenPort: 8080,
		XDS: "127.0.0.1:18000", Authz: "127.0.0.1:9001", ExtProc: "127.0.0.1:9002",
	}
}

type grpcCluster struct {
	Name, Type, Host string
	Port             int
}

// Render writes the bootstrap YAML.
func (b Bootstrap) Render(w io.Writer) error {
	var clusters []grpcCluster
	for _, c := range []struct{ name, addr string }{
		{"xds_cluster", b.XDS}, {"gatewayd_authz", b.Authz}, {"gatewayd_extproc", b.ExtProc},
	} {
		host, port, err := net.SplitHostPort(c.addr)
		if err != nil {
			return fmt.Errorf("%s address %q: %w", c.name, c.addr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("%s address %q: bad port", c.name, c.addr)
		}
		typ := "STRICT_DNS"
		if _, err := netip.ParseAddr(host); err == nil {
			typ = "STATIC"
		}
		clusters = append(clusters, grpcCluster{Name: c.name, Type: typ, Host: host, Port: p})
	}
	return tmpl.Execute(w, struct {
		Bootstrap
		GRPCClusters []grpcCluster
	}{b, clusters})
}
