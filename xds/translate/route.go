package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	uritmplmatchv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	uritmplrewritev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/rewrite/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/waooaw/policygateway/xds/model"
)

// Keys of the per-route ext_authz context_extensions: the authz server acts on
// exactly the route Envoy matched and never looks the route up again.
const (
	CtxRouteID             = "route_id"
	CtxRouteVersion        = "route_version"
	CtxMethod              = "method"
	CtxPathTemplate        = "path_template"
	CtxTargetBackend       = "target_backend"
	CtxMiddlewareStack     = "middleware_stack" // JSON array
	CtxRequiresGovernor    = "requires_governor_role"
	CtxRequiresOPAPolicy   = "requires_opa_policy"
	CtxRateLimitPerHour    = "rate_limit_per_hour"
	CtxRequiresDeviceToken = "requires_mobile_device_token"
	CtxPermission          = "permission"
	CtxRequiresReason      = "requires_reason"
	CtxWebsocket           = "websocket"
	CtxHasSandbox          = "has_sandbox"
	// CtxRouteKey is a hash of all the others: the authz server caches its
	// parsed view of a route under it.
	CtxRouteKey = "route_key"
	// CtxNotFound marks the catch-all route: the authz server answers 404
	// ROUTE_NOT_FOUND with the request's correlation id, and audits it.
	CtxNotFound = "not_found"
)

const notFoundBody = `{"type":"https://waooaw.com/errors/not-found","title":"Not Found","status":404,` +
	`"detail":"No route serves this method and path.","error_code":"ROUTE_NOT_FOUND",` +
	`"constitutional_principle":"L0-04: Deny-by-Default"}`

// buildRouteConfig drops (with a rejection) any route Envoy's own validation
// refuses, so one bad row can never make Envoy NACK the whole table.
func buildRouteConfig(m *model.Model) (*routev3.RouteConfiguration, []model.Rejection) {
	var routes []*routev3.Route
	var rejected []model.Rejection
	for _, r := range m.Routes {
		var built []*routev3.Route
		// The sandbox twin goes first: it only matches once the authz server
		// has set the sandbox header, and the route cache has been cleared.
		if r.Sandbox != nil {
			built = append(built, buildRoute(r, *r.Sandbox, true))
		}
		built = append(built, buildRoute(r, r.Upstream, false))
		if err := validateAll(built); err != nil {
			rejected = append(rejected, model.Rejection{RowID: r.ID, Version: r.Version, Field: "envoy",
				Reason: fmt.Sprintf("Envoy would reject the route: %v", err)})
			continue
		}
		routes = append(routes, built...)
	}
	routes = append(routes, notFoundRoute())
	return &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    VirtualHostName,
			Domains: []string{"*"},
			Routes:  routes,
		}},
		// The sandbox header is a routing signal between the authz server and
		// Envoy; a backend must never see it.
		RequestHeadersToRemove: []string{SandboxHeader},
	}, rejected
}

func validateAll(routes []*routev3.Route) error {
	for _, r := range routes {
		if err := r.ValidateAll(); err != nil {
			return err
		}
	}
	return nil
}

func routeName(r model.Route, sandbox bool) string {
	name := "route-" + strconv.FormatInt(r.ID, 10)
	if sandbox {
		name += "-sandbox"
	}
	return name
}

func buildRoute(r model.Route, up model.Upstream, sandbox bool) *routev3.Route {
	headers := []*routev3.HeaderMatcher{exactHeader(":method", r.Method)}
	if sandbox {
		headers = append(headers, exactHeader(SandboxHeader, SandboxValue))
	}
	action := &routev3.RouteAction{
		ClusterSpecifier:     &routev3.RouteAction_Cluster{Cluster: up.ClusterName()},
		HostRewriteSpecifier: &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: up.Authority()},
		Timeout:              durationpb.New(r.Timeout),
	}
	if r.NeedsRewrite(up) {
		action.PathRewritePolicy = &corev3.TypedExtensionConfig{
			Name:        "envoy.path.rewrite.uri_template.uri_template_rewriter",
			TypedConfig: mustAny(&uritmplrewritev3.UriTemplateRewriteConfig{PathTemplateRewrite: up.PathTemplate}),
		}
	}
	if r.Websocket {
		action.UpgradeConfigs = []*routev3.RouteAction_UpgradeConfig{{UpgradeType: "websocket", Enabled: wrapperspb.Bool(true)}}
		action.IdleTimeout = durationpb.New(0) // upgraded streams live until a side closes
	}
	return &routev3.Route{
		Name: routeName(r, sandbox),
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_PathMatchPolicy{PathMatchPolicy: &corev3.TypedExtensionConfig{
				Name:        "envoy.path.match.uri_template.uri_template_matcher",
				TypedConfig: mustAny(&uritmplmatchv3.UriTemplateMatchConfig{PathTemplate: r.Path.Raw}),
			}},
			Headers: headers,
		},
		Action: &routev3.Route_Route{Route: action},
		TypedPerFilterConfig: map[string]*anypb.Any{
			ExtAuthzFilterName: mustAny(&extauthzv3.ExtAuthzPerRoute{
				Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{
					ContextExtensions: contextExtensions(r),
				}},
			}),
		},
	}
}

// contextExtensions must be identical on a route and its sandbox twin: the
// authz server may see either, depending on the client's headers.
func contextExtensions(r model.Route) map[string]string {
	stack, _ := json.Marshal(r.MiddlewareStack)
	ext := map[string]string{
		CtxRouteID:             strconv.FormatInt(r.ID, 10),
		CtxRouteVersion:        strconv.Itoa(r.Version),
		CtxMethod:              r.Method,
		CtxPathTemplate:        r.Path.Raw,
		CtxTargetBackend:       r.Backend,
		CtxMiddlewareStack:     string(stack),
		CtxRequiresGovernor:    strconv.FormatBool(r.RequiresGovernor),
		CtxRequiresOPAPolicy:   r.OPAPolicy,
		CtxRateLimitPerHour:    strconv.Itoa(r.RateLimitPerHour),
		CtxRequiresDeviceToken: strconv.FormatBool(r.RequiresDeviceToken),
		CtxPermission:          r.Permission,
		CtxRequiresReason:      strconv.FormatBool(r.RequiresReason),
		CtxWebsocket:           strconv.FormatBool(r.Websocket),
		CtxHasSandbox:          strconv.FormatBool(r.Sandbox != nil),
	}
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\x00" + ext[k] + "\x00"))
	}
	ext[CtxRouteKey] = hex.EncodeToString(h.Sum(nil)[:12])
	return ext
}

// notFoundRoute catches every path no row serves: deny by default. The
// authz server answers it (so the 404 carries the caller's correlation id and
// is audited); the direct response is only what Envoy would send if it ever
// let such a request through.
func notFoundRoute() *routev3.Route {
	return &routev3.Route{
		Name:  "not-found",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
			Status: 404,
			Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: notFoundBody}},
		}},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/problem+json"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
		TypedPerFilterConfig: map[string]*anypb.Any{
			ExtAuthzFilterName: mustAny(&extauthzv3.ExtAuthzPerRoute{
				Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{CheckSettings: &extauthzv3.CheckSettings{
					ContextExtensions: map[string]string{CtxNotFound: "true", CtxRouteKey: "not-found"},
				}},
			}),
		},
	}
}

func exactHeader(name, value string) *routev3.HeaderMatcher {
	return &routev3.HeaderMatcher{
		Name: name,
		HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value},
		}},
	}
}
