// Package translate turns a validated model into Envoy resources. It is pure:
// the same model and options always give the same protos, which is what lets
// snapshot versions be content hashes that every gatewayd replica agrees on.
package translate

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/waooaw/policygateway/xds/model"
)

// Names shared with the Envoy bootstrap and the authz server.
const (
	ListenerName    = "gateway_http"
	RouteConfigName = "gateway_routes"
	VirtualHostName = "gateway"

	// Static clusters defined in the bootstrap (envoy/bootstrap.yaml).
	AuthzCluster   = "gatewayd_authz"
	ExtProcCluster = "gatewayd_extproc"

	ExtAuthzFilterName = "envoy.filters.http.ext_authz"
	ExtProcFilterName  = "envoy.filters.http.ext_proc"
	RouterFilterName   = "envoy.filters.http.router"

	// SandboxHeader is set by the authz server on every allowed request:
	// "trial" selects the sandbox route once ext_authz clears the route cache.
	SandboxHeader = "x-waooaw-sandbox"
	SandboxValue  = "trial"
)

// Options are deployment settings, not route data.
type Options struct {
	ListenAddress       string        // default 0.0.0.0
	ListenPort          uint32        // default 8080
	AuthzTimeout        time.Duration // default 250ms
	ExtProcTimeout      time.Duration // default 500ms
	HealthCheckInterval time.Duration // default 5s
	TrustedCAFile       string        // default /etc/ssl/certs/ca-certificates.crt
}

func (o Options) withDefaults() Options {
	if o.ListenAddress == "" {
		o.ListenAddress = "0.0.0.0"
	}
	if o.ListenPort == 0 {
		o.ListenPort = 8080
	}
	if o.AuthzTimeout == 0 {
		o.AuthzTimeout = 250 * time.Millisecond
	}
	if o.ExtProcTimeout == 0 {
		o.ExtProcTimeout = 500 * time.Millisecond
	}
	if o.HealthCheckInterval == 0 {
		o.HealthCheckInterval = 5 * time.Second
	}
	if o.TrustedCAFile == "" {
		o.TrustedCAFile = "/etc/ssl/certs/ca-certificates.crt"
	}
	return o
}

// Resources is one complete, self-consistent set of xDS resources.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
}

// Translate builds the resources for m. Routes that Envoy's validation would
// refuse are dropped and returned as rejections. An error means a system
// fault (a cluster or listener fails validation): the caller must then keep
// serving its last good snapshot.
func Translate(m *model.Model, opts Options) (*Resources, []model.Rejection, error) {
	opts = opts.withDefaults()
	res := &Resources{}
	for _, u := range m.Clusters {
		c := buildCluster(u, opts)
		if err := c.ValidateAll(); err != nil {
			return nil, nil, fmt.Errorf("cluster %s: %w", c.Name, err)
		}
		res.Clusters = append(res.Clusters, c)
	}
	rc, rejected := buildRouteConfig(m)
	if err := rc.ValidateAll(); err != nil {
		return nil, nil, fmt.Errorf("route configuration: %w", err)
	}
	res.Routes = []*routev3.RouteConfiguration{rc}
	l := buildListener(opts)
	if err := l.ValidateAll(); err != nil {
		return nil, nil, fmt.Errorf("listener: %w", err)
	}
	res.Listeners = []*listenerv3.Listener{l}
	return res, rejected, nil
}

// mustAny packs m deterministically (anypb.New is not: map order would vary
// and so would the snapshot's content hash).
func mustAny(m proto.Message) *anypb.Any {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		// Only an invalid message can fail here: a programming error.
		panic(fmt.Sprintf("marshal %T: %v", m, err))
	}
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName()), Value: b}
}
