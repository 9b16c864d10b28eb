package xds

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	gcplog "github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// sharedNode gives every Envoy the same snapshot, whatever its node id.
type sharedNode struct{}

func (sharedNode) ID(*corev3.Node) string { return NodeGroup }

// NewCache returns an ADS snapshot cache keyed by NodeGroup.
func NewCache(log *slog.Logger) cachev3.SnapshotCache {
	return cachev3.NewSnapshotCache(true, sharedNode{}, slogAdapter(log.With("component", "xds-cache")))
}

// NewGRPCServer serves ADS (and the per-type services) from cache. NACKs are
// logged and counted: a NACK means a translator bug, never a bad row.
func NewGRPCServer(ctx context.Context, cache cachev3.SnapshotCache, log *slog.Logger, m *Metrics) *grpc.Server {
	log = log.With("component", "xds-server")
	cb := serverv3.CallbackFuncs{
		StreamOpenFunc: func(_ context.Context, id int64, typeURL string) error {
			m.streams.Inc()
			log.Debug("xds stream opened", "stream", id, "type", typeURL)
			return nil
		},
		StreamClosedFunc: func(id int64, node *corev3.Node) {
			m.streams.Dec()
			log.Debug("xds stream closed", "stream", id, "node", node.GetId())
		},
		StreamRequestFunc: func(id int64, req *discoveryv3.DiscoveryRequest) error {
			if req.GetErrorDetail() != nil {
				m.nacks.Inc()
				log.Error("envoy rejected configuration (NACK)", "node", req.GetNode().GetId(), "type", req.GetTypeUrl(),
					"version", req.GetVersionInfo(), "nonce", req.GetResponseNonce(), "error", req.GetErrorDetail().GetMessage())
			}
			return nil
		},
	}
	srv := serverv3.NewServer(ctx, cache, cb, sotw.WithOrderedADS())
	gs := grpc.NewServer(
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 5 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
	)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, srv)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, srv)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, srv)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, srv)
	return gs
}

// slogAdapter routes go-control-plane's printf logging into slog. Its
// per-request chatter goes to debug.
func slogAdapter(l *slog.Logger) gcplog.Logger {
	return gcplog.LoggerFuncs{
		DebugFunc: func(f string, a ...any) { l.Debug(fmt.Sprintf(f, a...)) },
		InfoFunc:  func(f string, a ...any) { l.Debug(fmt.Sprintf(f, a...)) },
		WarnFunc:  func(f string, a ...any) { l.Warn(fmt.Sprintf(f, a...)) },
		ErrorFunc: func(f string, a ...any) { l.Error(fmt.Sprintf(f, a...)) },
	}
}
