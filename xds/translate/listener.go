package translate

import (
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waooaw/policygateway/authz/problem"
)

// ExtAuthzMetadataNamespace is where Envoy stores the dynamic metadata the
// authz server returns; ext_proc gets it forwarded on the response path.
const ExtAuthzMetadataNamespace = "envoy.filters.http.ext_authz"

func buildListener(opts Options) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "gateway",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: RouteConfigName,
			ConfigSource: &corev3.ConfigSource{
				ResourceApiVersion:    corev3.ApiVersion_V3,
				ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			},
		}},
		HttpFilters: []*hcmv3.HttpFilter{
			// ext_proc first: it then sees the response of every request,
			// ext_authz's own denials included (local replies run through
			// every encoder filter).
			{Name: ExtProcFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(extProcFilter(opts))}},
			{Name: ExtAuthzFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(extAuthzFilter(opts))}},
			{Name: RouterFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})}},
		},
		// An edge proxy: trust the peer address, not client-sent XFF.
		UseRemoteAddress: wrapperspb.Bool(true),
		// Normalise before matching so /api/x/../admin cannot dodge a route.
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		// WebSocket is off by default and turned on per route.
		UpgradeConfigs: []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: "websocket", Enabled: wrapperspb.Bool(false)}},
		AccessLog:      []*accesslogv3.AccessLog{stdoutAccessLog()},
		// Envoy's own upstream failures get the gateway's problem bodies too.
		LocalReplyConfig: &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{
			upstreamFailure(problem.UpstreamTimeout, "The backend did not answer in time.", "UT"),
			upstreamFailure(problem.UpstreamUnavailable, "The backend could not be reached.", "UH", "UF", "UO", "URX", "UC", "UR", "NC"),
		}},
	}
	return &listenerv3.Listener{
		Name:    ListenerName,
		Address: socketAddress(opts.ListenAddress, opts.ListenPort),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
			}},
		}},
	}
}

func grpcService(cluster string, timeout time.Duration) *corev3.GrpcService {
	return &corev3.GrpcService{
		TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}},
		Timeout:         durationpb.New(timeout),
	}
}

func extAuthzFilter(opts Options) *extauthzv3.ExtAuthz {
	return &extauthzv3.ExtAuthz{
		Services:            &extauthzv3.ExtAuthz_GrpcService{GrpcService: grpcService(AuthzCluster, opts.AuthzTimeout)},
		TransportApiVersion: corev3.ApiVersion_V3,
		// Fail closed: if gatewayd cannot answer, nobody gets in.
		FailureModeAllow: false,
		StatusOnError:    &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		// The authz server always sets the sandbox header; only that header
		// may make Envoy pick a route again.
		ClearRouteCache:        true,
		ClearRouteCacheHeaders: []string{SandboxHeader},
		// A denial made no upstream request: keep it out of the route
		// cluster's upstream_rq_4xx so SREs see real upstream errors there.
		ChargeClusterResponseStats: wrapperspb.Bool(false),
	}
}

func extProcFilter(opts Options) *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		GrpcService: grpcService(ExtProcCluster, opts.ExtProcTimeout),
		// The response side completes the audit record; the authz decision
		// has already been made and recorded, so an ext_proc outage degrades
		// to "incomplete record", not an outage.
		FailureModeAllow: true,
		// Observability mode: Envoy streams the response headers to gatewayd
		// without waiting for an answer. It halves the added latency at low
		// load (measured with e2e/loadtest/envoy.sh) and nothing needs
		// mutating yet: the authz server already puts X-Correlation-ID on
		// every response. Masking bodies by role will need blocking mode.
		ObservabilityMode: true,
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseHeaderMode: extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:    extprocfilterv3.ProcessingMode_NONE,
			ResponseBodyMode:   extprocfilterv3.ProcessingMode_NONE,
		},
		MessageTimeout: durationpb.New(opts.ExtProcTimeout),
		MetadataOptions: &extprocfilterv3.MetadataOptions{
			ForwardingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{ExtAuthzMetadataNamespace}},
		},
		ResponseAttributes: []string{"request.method", "request.url_path", "request.time", "xds.route_name"},
	}
}

func stdoutAccessLog() *accesslogv3.AccessLog {
	format, _ := structpb.NewStruct(map[string]any{
		"start_time":     "%START_TIME%",
		"method":         "%REQ(:METHOD)%",
		"path":           "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
		"status":         "%RESPONSE_CODE%",
		"flags":          "%RESPONSE_FLAGS%",
		"details":        "%RESPONSE_CODE_DETAILS%",
		"route":          "%ROUTE_NAME%",
		"upstream":       "%UPSTREAM_CLUSTER%",
		"duration_ms":    "%DURATION%",
		"correlation_id": "%REQ(X-CORRELATION-ID)%",
	})
	return &accesslogv3.AccessLog{
		Name: "envoy.access_loggers.stdout",
		ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: mustAny(&streamv3.StdoutAccessLog{
			AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: &corev3.SubstitutionFormatString{
				Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: format},
			}},
		})},
	}
}

// upstreamFailure rewrites the body of Envoy's local replies that carry one
// of flags; ext_authz's denials (flag UAEX) keep the body the authz server wrote.
func upstreamFailure(code problem.Code, detail string, flags ...string) *hcmv3.ResponseMapper {
	status, typeURI, title := problem.Spec(code)
	body, _ := structpb.NewStruct(map[string]any{
		"type":           typeURI,
		"title":          title,
		"status":         float64(status),
		"detail":         detail,
		"error_code":     string(code),
		"correlation_id": "%REQ(X-CORRELATION-ID)%",
	})
	return &hcmv3.ResponseMapper{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
			ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: flags},
		}},
		StatusCode: wrapperspb.UInt32(uint32(status)),
		BodyFormatOverride: &corev3.SubstitutionFormatString{
			Format:      &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: body},
			ContentType: "application/problem+json",
		},
	}
}
