// Package authz is gatewayd's answer to Envoy's questions: the ext_authz
// Check pipeline (identity, policy, Governor, request obligations) and the
// ext_proc response side. Go does what must be fast or stateful (tokens,
// caching, headers); every rule a platform team may change lives in Rego.
package authz

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waooaw/policygateway/authz/policy"
	"github.com/waooaw/policygateway/authz/problem"
	"github.com/waooaw/policygateway/authz/token"
	"github.com/waooaw/policygateway/xds/translate"
)

var _ authv3.AuthorizationServer = (*Server)(nil)

// TokenVerifier is what the pipeline needs of authz/token.
type TokenVerifier interface {
	Verify(raw string) (*token.Claims, error)
}

// Config wires a Server.
type Config struct {
	Tokens TokenVerifier
	Policy policy.Evaluator
	// FailOpen (OPA_FAIL_MODE=open) lets requests through when the policy
	// service cannot answer, marked X-Policy-Enforcement: degraded. Token
	// checks and the Governor rule still apply.
	FailOpen bool
	// PolicyRetryAfter is the retry_after advertised when policy is down.
	PolicyRetryAfter time.Duration
	Audit            AuditSink
	Logger           *slog.Logger
	Metrics          *Metrics
	Now              func() time.Time
}

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	cfg    Config
	log    *slog.Logger
	routes routeCache
}

// NewServer fills defaults.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PolicyRetryAfter == 0 {
		cfg.PolicyRetryAfter = 30 * time.Second
	}
	if cfg.Audit == nil {
		cfg.Audit = LogAudit{Logger: cfg.Logger}
	}
	cfg.Tokens = newVerifiedTokens(cfg.Tokens, cfg.Now)
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "authz")}
}

// request is the state of one Check as it moves through the pipeline.
type request struct {
	correlationID string
	causationID   string
	headers       map[string]string
	method        string
	path          string // without query
	route         *routeInfo
	params        map[string]string
	claims        *token.Claims
	strip         token.Strip
	decision      *policy.Decision
	degraded      bool
	reason        string
}

// Check never returns a gRPC error for a decision: Envoy treats that as an
// authz failure (status_on_error), not a denial.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	http := req.GetAttributes().GetRequest().GetHttp()
	r := &request{headers: http.GetHeaders(), method: http.GetMethod()}
	if r.headers == nil {
		r.headers = map[string]string{}
	}
	r.path, _, _ = strings.Cut(http.GetPath(), "?")
	r.correlationID = r.headers[HeaderCorrelationID]
	if !wellFormedID(r.correlationID) {
		r.correlationID = newID()
	}
	r.causationID = r.headers[HeaderCausationID]
	if !wellFormedID(r.causationID) {
		r.causationID = r.correlationID
	}

	resp, code := s.decide(ctx, r, req.GetAttributes().GetContextExtensions(), http.GetPath())
	s.cfg.Metrics.observe(code, time.Since(start))
	s.cfg.Audit.Decision(ctx, r.auditRecord(code, s.cfg.Now()))
	return resp, nil
}

// decide runs the pipeline; it returns the response and the deny code ("" on allow).
func (s *Server) decide(ctx context.Context, r *request, ext map[string]string, fullPath string) (*authv3.CheckResponse, problem.Code) {
	if ext[translate.CtxNotFound] == "true" {
		return s.deny(r, problem.RouteNotFound, "No route serves this method and path."), problem.RouteNotFound
	}
	route, err := s.routes.get(ext)
	if err != nil {
		// Envoy matched a route that carries no (or broken) context: a
		// translator bug, so deny rather than guess.
		s.log.Error("route context unusable; denying", "err", err, "correlation_id", r.correlationID)
		return s.deny(r, problem.PolicyDenied, "The gateway could not identify this route."), problem.PolicyDenied
	}
	r.route = route
	r.params, _ = route.Template.Match(r.path)

	raw, strip, err := token.FromHeaders(r.headers, route.Websocket, fullPath)
	if err == nil {
		r.claims, err = s.cfg.Tokens.Verify(raw)
	}
	if err != nil {
		code, detail := tokenProblem(err)
		s.log.Debug("token rejected", "err", err, "correlation_id", r.correlationID, "route_id", route.ID)
		return s.deny(r, code, detail), code
	}
	r.strip = strip

	r.decision, err = s.cfg.Policy.Decide(ctx, r.policyInput(s.cfg.Now()))
	if err != nil {
		if !s.cfg.FailOpen {
			s.log.Error("policy unavailable; failing closed", "err", err, "correlation_id", r.correlationID)
			resp := s.deny(r, problem.PolicyUnavailable, "The policy service could not be reached, so the request is denied.")
			return resp, problem.PolicyUnavailable
		}
		s.log.Warn("policy unavailable; fail-open mode lets the request through", "err", err,
			"correlation_id", r.correlationID, "route_id", route.ID)
		r.degraded = true
		r.decision = &policy.Decision{Allow: true}
	}
	if !r.decision.Allow {
		code := decisionCode(r.decision.Code)
		detail := r.decision.Reason
		if detail == "" {
			detail = "The request is not allowed by policy."
		}
		return s.deny(r, code, detail), code
	}
	// Governor (L0-01) is enforced in Go, after RBAC, so that no policy edit
	// and no policy outage can weaken it.
	if route.RequiresGovernor && !r.claims.IsGovernor && !r.claims.HasRole("governor") {
		return s.deny(r, problem.GovernorRequired, "This action requires the Governor role."), problem.GovernorRequired
	}
	if route.RequiresDeviceToken && !printable(r.headers[HeaderDeviceToken], maxDeviceTokenLen) {
		return s.deny(r, problem.DeviceTokenRequired, "This route requires an X-Device-Token header."), problem.DeviceTokenRequired
	}
	if route.RequiresReason {
		reason := r.headers[HeaderActionReason]
		if !printable(reason, maxReasonLen) {
			return s.deny(r, problem.ReasonRequired, "This action requires an X-Action-Reason header (1-1024 printable characters)."), problem.ReasonRequired
		}
		r.reason = strings.TrimSpace(reason)
	}
	return s.allow(r), ""
}

func tokenProblem(err error) (problem.Code, string) {
	switch {
	case errors.Is(err, token.ErrMissing):
		return problem.AuthTokenMissing, "A bearer token is required."
	case errors.Is(err, token.ErrExpired):
		return problem.AuthTokenExpired, "The token has expired."
	default:
		return problem.AuthTokenInvalid, "The token is malformed or its signature, issuer, audience or validity period is wrong."
	}
}

// decisionCode maps the policy's code onto the fixed deny set.
func decisionCode(c string) problem.Code {
	switch problem.Code(c) {
	case problem.RBACDenied, problem.PolicyDenied, problem.TrialExpired, problem.DomainNotAllowed,
		problem.GovernorRequired, problem.BudgetExceeded, problem.RateLimited:
		return problem.Code(c)
	}
	return problem.PolicyDenied
}

func (r *request) policyInput(now time.Time) *policy.Input {
	c := r.claims
	in := &policy.Input{
		User: policy.User{
			ID:           c.UserID,
			Email:        c.Email,
			Roles:        c.Roles,
			IsGovernor:   c.IsGovernor,
			AgentID:      c.AgentID,
			CustomerID:   c.CustomerID,
			TrialMode:    c.TrialMode,
			TrialExpired: c.TrialMode && !c.TrialExpiresAt.IsZero() && !now.Before(c.TrialExpiresAt),
			Issuer:       c.Issuer,
		},
		Route: policy.Route{
			ID:                   int(r.route.ID),
			Version:              r.route.Version,
			Method:               r.route.Method,
			PathTemplate:         r.route.Template.Raw,
			TargetBackend:        r.route.Backend,
			MiddlewareStack:      r.route.MiddlewareStack,
			RequiresOPAPolicy:    r.route.OPAPolicy,
			RequiresGovernorRole: r.route.RequiresGovernor,
			HasSandbox:           r.route.HasSandbox,
			Permission:           r.route.Permission,
			RateLimitPerHour:     r.route.RateLimitPerHour,
		},
		Request: policy.Request{Method: r.method, Path: r.path, Params: r.params},
	}
	if in.User.Roles == nil {
		in.User.Roles = []string{}
	}
	if in.Request.Params == nil {
		in.Request.Params = map[string]string{}
	}
	return in
}

func overwrite(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: key, Value: value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

func (s *Server) allow(r *request) *authv3.CheckResponse {
	c := r.claims
	sandbox := r.decision.Sandbox && r.route.HasSandbox
	sandboxValue := "off"
	if sandbox {
		sandboxValue = "trial"
	}
	set := [...][2]string{
		{HeaderUserID, c.UserID},
		{HeaderEmail, c.Email},
		{HeaderRoles, strings.Join(c.Roles, ",")},
		{HeaderGovernor, boolString(c.IsGovernor)},
		{HeaderAgentID, c.AgentID},
		{HeaderCustomerID, c.CustomerID},
		{HeaderTrial, boolString(c.TrialMode)},
		{HeaderPermission, r.decision.Permission},
		{HeaderReason, r.reason},
		{HeaderSandbox, sandboxValue},
		{HeaderCorrelationID, r.correlationID},
		{HeaderCausationID, r.causationID},
	}
	ok := &authv3.OkHttpResponse{Headers: make([]*corev3.HeaderValueOption, 0, len(set)+2)}
	// One allocation for all header protos instead of two per header: this
	// is the hot path of every allowed request.
	opts := make([]corev3.HeaderValueOption, len(set))
	values := make([]corev3.HeaderValue, len(set))
	// Identity is set by overwriting; an empty value cannot be set (Envoy
	// drops empty values), so that header is removed instead. Any other
	// client-sent header under the prefix is removed too.
	for i, kv := range set {
		if kv[1] == "" {
			ok.HeadersToRemove = append(ok.HeadersToRemove, kv[0])
			continue
		}
		values[i].Key, values[i].Value = kv[0], kv[1]
		opts[i].Header = &values[i]
		opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		ok.Headers = append(ok.Headers, &opts[i])
	}
	for k := range r.headers {
		if strings.HasPrefix(k, IdentityPrefix) && !ownedHeader(k) {
			ok.HeadersToRemove = append(ok.HeadersToRemove, k)
		}
	}
	if r.degraded {
		ok.Headers = append(ok.Headers, overwrite(HeaderPolicyEnforcement, "degraded"))
		ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, overwrite(HeaderPolicyEnforcement, "degraded"))
	} else {
		// The marker sits outside the identity prefix, so a client copy
		// would otherwise reach the backend as if policy had been skipped.
		ok.HeadersToRemove = append(ok.HeadersToRemove, HeaderPolicyEnforcement)
	}
	ok.ResponseHeadersToAdd = append(ok.ResponseHeadersToAdd, overwrite(HeaderCorrelationID, r.correlationID))
	// A token taken from a WebSocket side channel must not travel upstream.
	if r.strip.Query {
		ok.QueryParametersToRemove = []string{"access_token"}
	}
	if r.strip.RemoveWebSocketProtocol {
		ok.HeadersToRemove = append(ok.HeadersToRemove, "sec-websocket-protocol")
	} else if r.strip.WebSocketProtocol != "" {
		ok.Headers = append(ok.Headers, overwrite("sec-websocket-protocol", r.strip.WebSocketProtocol))
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse:    &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: r.metadata("allow", "", sandbox),
	}
}

func (s *Server) deny(r *request, code problem.Code, detail string) *authv3.CheckResponse {
	p := problem.New(code, detail, r.correlationID)
	if code == problem.PolicyUnavailable {
		p.RetryAfter = int(s.cfg.PolicyRetryAfter.Seconds())
		p.Error = p.Title
		p.Details = "policy service unreachable"
	}
	headers := []*corev3.HeaderValueOption{
		overwrite("content-type", problem.ContentType),
		overwrite(HeaderCorrelationID, r.correlationID),
		overwrite("cache-control", "no-store"),
	}
	if ra := p.RetryAfterHeader(); ra != "" {
		headers = append(headers, overwrite("retry-after", ra))
	}
	grpcCode := codes.PermissionDenied
	if p.Status == 401 {
		grpcCode = codes.Unauthenticated
		headers = append(headers, overwrite("www-authenticate", `Bearer realm="waooaw", error="invalid_token"`))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode), Message: string(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(p.Status)},
			Headers: headers,
			Body:    string(p.JSON()),
		}},
		DynamicMetadata: r.metadata("deny", code, false),
	}
}

// metadata is handed to ext_proc (via Envoy's dynamic metadata) so the
// response side can finish the audit record and mask errors by role.
func (r *request) metadata(decision string, code problem.Code, sandbox bool) *structpb.Struct {
	f := map[string]*structpb.Value{
		"correlation_id": structpb.NewStringValue(r.correlationID),
		"causation_id":   structpb.NewStringValue(r.causationID),
		"decision":       structpb.NewStringValue(decision),
		"sandbox":        structpb.NewBoolValue(sandbox),
	}
	if code != "" {
		f["error_code"] = structpb.NewStringValue(string(code))
	}
	if r.route != nil {
		f["route_id"] = structpb.NewNumberValue(float64(r.route.ID))
	}
	if r.claims != nil {
		f["user_id"] = structpb.NewStringValue(r.claims.UserID)
		f["roles"] = structpb.NewStringValue(strings.Join(r.claims.Roles, ","))
	}
	if r.degraded {
		f["policy_enforcement"] = structpb.NewStringValue("degraded")
	}
	return &structpb.Struct{Fields: f}
}

// ownedHeader reports whether allow always sets or removes k itself.
func ownedHeader(k string) bool {
	switch k {
	case HeaderUserID, HeaderEmail, HeaderRoles, HeaderGovernor, HeaderAgentID, HeaderCustomerID,
		HeaderTrial, HeaderPermission, HeaderReason, HeaderSandbox:
		return true
	}
	return false
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
