package translate

import (
	"net/netip"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waooaw/policygateway/xds/model"
)

// buildCluster makes one cluster per upstream scheme+host+port. Endpoints are
// inline (STATIC for IP literals, STRICT_DNS otherwise), so the snapshot needs
// no EDS and stays trivially consistent.
func buildCluster(u model.Upstream, opts Options) *clusterv3.Cluster {
	name := u.ClusterName()
	c := &clusterv3.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(2e9),
		LbPolicy:       clusterv3.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
						Address: socketAddress(u.Host, u.Port),
					}},
				}},
			}},
		},
		HealthChecks: []*corev3.HealthCheck{{
			Timeout:            durationpb.New(opts.HealthCheckInterval / 2),
			Interval:           durationpb.New(opts.HealthCheckInterval),
			UnhealthyThreshold: wrapperspb.UInt32(3),
			HealthyThreshold:   wrapperspb.UInt32(1),
			HealthChecker: &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{
				Host: u.Authority(),
				Path: "/health",
			}},
		}},
	}
	_, ipErr := netip.ParseAddr(u.Host)
	isIP := ipErr == nil
	if isIP {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	} else {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS}
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
	}
	if u.Scheme == "https" {
		c.TransportSocket = upstreamTLS(u.Host, isIP, opts)
	}
	return c
}

func socketAddress(host string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

// upstreamTLS verifies the upstream against the trusted CAs and its name.
// An IP literal is matched as an IP SAN and sends no SNI (RFC 6066 forbids
// addresses there); a host name is sent as SNI and matched as a DNS SAN.
func upstreamTLS(host string, isIP bool, opts Options) *corev3.TransportSocket {
	san := &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
	}
	sni := host
	if isIP {
		san.SanType, sni = tlsv3.SubjectAltNameMatcher_IP_ADDRESS, ""
	}
	return &corev3.TransportSocket{
		Name: "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
			Sni: sni,
			CommonTlsContext: &tlsv3.CommonTlsContext{
				AlpnProtocols: []string{"http/1.1"},
				// Envoy's client default tops out at TLS 1.2.
				TlsParams: &tlsv3.TlsParameters{TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3},
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
					// Without trusted_ca Envoy would not verify the upstream at all.
					TrustedCa:                 &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: opts.TrustedCAFile}},
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{san},
				}},
			},
		})},
	}
}
