// Command gatewayd is the policy gateway's one process: the xDS control
// plane that configures Envoy from gateway_routes, the ext_authz server that
// decides every request, the ext_proc server that sees every response, and
// an ops endpoint for metrics and health.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	xdsAddr, authzAddr, extProcAddr, opsAddr string
	listenPort                               int

	databaseURL string
	routesFile  string
	resync      time.Duration

	useInternalURLs bool
	internalURLs    map[string]*url.URL
	upstreamCAFile  string

	jwtSecret     string
	issuerSecrets map[string][]byte
	jwksFile      string
	jwksURL       string
	jwtIssuer     string
	jwtAudience   string

	opaFailOpen   bool
	opaServiceURL string
	opaTimeout    time.Duration
	policyDir     string

	auditServiceURL string
	logLevel        slog.Level

	grpcReflection bool
}

// Flags default to the seed's environment variable names where it has one.
func parseConfig(args []string, getenv func(string) string) (*config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("gatewayd", flag.ContinueOnError)
	c := &config{}
	fs.StringVar(&c.xdsAddr, "xds-addr", env("XDS_ADDR", ":18000"), "ADS gRPC listen address (XDS_ADDR)")
	fs.StringVar(&c.authzAddr, "authz-addr", env("AUTHZ_ADDR", ":9001"), "ext_authz gRPC listen address (AUTHZ_ADDR)")
	fs.StringVar(&c.extProcAddr, "extproc-addr", env("EXTPROC_ADDR", ":9002"), "ext_proc gRPC listen address (EXTPROC_ADDR)")
	fs.StringVar(&c.opsAddr, "ops-addr", env("OPS_ADDR", ":9090"), "ops HTTP address for /metrics, /healthz, /readyz (OPS_ADDR)")
	listenPort := fs.String("listen-port", env("LISTEN_PORT", "8080"), "port of the Envoy listener gatewayd configures (LISTEN_PORT)")
	fs.StringVar(&c.databaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL URL; unset serves routes from -routes-file (DATABASE_URL)")
	fs.StringVar(&c.routesFile, "routes-file", env("ROUTES_FILE", "deploy/routes.example.yaml"), "YAML route file used without a database (ROUTES_FILE)")
	resync := fs.String("resync", env("RESYNC_INTERVAL", "30s"), "periodic full reload, covering lost notifications (RESYNC_INTERVAL)")
	useInternal := fs.String("use-internal-urls", env("GATEWAY_USE_INTERNAL_URLS", "false"), "map each target_backend to -internal-urls (GATEWAY_USE_INTERNAL_URLS)")
	internal := fs.String("internal-urls", env("GATEWAY_INTERNAL_URLS", "cp=http://127.0.0.1:8015,pp=http://127.0.0.1:8006,plant=http://127.0.0.1:8000,sandbox=http://127.0.0.1:8099"),
		"backend=base-URL pairs used when internal URLs are on (GATEWAY_INTERNAL_URLS)")
	fs.StringVar(&c.upstreamCAFile, "upstream-ca-file", env("UPSTREAM_CA_FILE", ""),
		"PEM bundle Envoy verifies https upstreams against; unset uses the system bundle (UPSTREAM_CA_FILE)")
	fs.StringVar(&c.jwtSecret, "jwt-secret", env("JWT_SECRET", ""), "HS256 secret (JWT_SECRET)")
	issuerSecrets := fs.String("jwt-issuer-secrets", env("JWT_ISSUER_SECRETS", ""), "per-issuer HS256 secrets, iss=secret,... (JWT_ISSUER_SECRETS)")
	fs.StringVar(&c.jwksFile, "jwks-file", env("JWKS_FILE", ""), "JWKS file for RS256/ES256/EdDSA (JWKS_FILE)")
	fs.StringVar(&c.jwksURL, "jwks-url", env("JWKS_URL", ""), "JWKS URL for RS256/ES256/EdDSA (JWKS_URL)")
	fs.StringVar(&c.jwtIssuer, "jwt-issuer", env("JWT_ISSUER", ""), "required iss, if set (JWT_ISSUER)")
	fs.StringVar(&c.jwtAudience, "jwt-audience", env("JWT_AUDIENCE", ""), "required aud, if set (JWT_AUDIENCE)")
	failMode := fs.String("opa-fail-mode", env("OPA_FAIL_MODE", "closed"), "closed: deny with 503 when policy is unavailable; open: allow, marked degraded (OPA_FAIL_MODE)")
	fs.StringVar(&c.opaServiceURL, "opa-service-url", env("OPA_SERVICE_URL", ""), "remote OPA base URL; unset evaluates the embedded policies (OPA_SERVICE_URL)")
	opaTimeout := fs.String("opa-timeout", env("OPA_TIMEOUT", "250ms"), "remote OPA request timeout (OPA_TIMEOUT)")
	fs.StringVar(&c.policyDir, "policy-dir", env("POLICY_DIR", ""), "directory of .rego/.json policies, reloaded on change; unset uses the embedded ones (POLICY_DIR)")
	fs.StringVar(&c.auditServiceURL, "audit-service-url", env("AUDIT_SERVICE_URL", ""), "optional extra audit sink (AUDIT_SERVICE_URL) - not implemented yet")
	logLevel := fs.String("log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (LOG_LEVEL)")
	// A bool flag, unlike the string-typed switches above, so that a bare
	// -grpc-reflection works; the environment only supplies its default.
	reflectionDefault, err := strconv.ParseBool(env("GRPC_REFLECTION", "false"))
	if err != nil {
		return nil, fmt.Errorf("GRPC_REFLECTION %q: want true or false", getenv("GRPC_REFLECTION"))
	}
	fs.BoolVar(&c.grpcReflection, "grpc-reflection", reflectionDefault, "serve gRPC reflection on the ext_authz port, for load tools such as ghz and grpcurl (GRPC_REFLECTION)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	if c.listenPort, err = strconv.Atoi(*listenPort); err != nil || c.listenPort <= 0 || c.listenPort > 65535 {
		return nil, fmt.Errorf("-listen-port %q: want 1-65535", *listenPort)
	}
	if c.resync, err = time.ParseDuration(*resync); err != nil || c.resync <= 0 {
		return nil, fmt.Errorf("-resync %q: want a positive duration", *resync)
	}
	if c.opaTimeout, err = time.ParseDuration(*opaTimeout); err != nil || c.opaTimeout <= 0 || c.opaTimeout > 10*time.Second {
		return nil, fmt.Errorf("-opa-timeout %q: want a duration in (0, 10s]", *opaTimeout)
	}
	if c.useInternalURLs, err = strconv.ParseBool(*useInternal); err != nil {
		return nil, fmt.Errorf("GATEWAY_USE_INTERNAL_URLS %q: want true or false", *useInternal)
	}
	switch strings.ToLower(*failMode) {
	case "closed":
	case "open":
		c.opaFailOpen = true
	default:
		return nil, fmt.Errorf("OPA_FAIL_MODE %q: want closed or open", *failMode)
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: %w", *logLevel, err)
	}
	c.internalURLs = map[string]*url.URL{}
	for name, raw := range pairs(*internal) {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("GATEWAY_INTERNAL_URLS: %s=%q is not an http(s) base URL", name, raw)
		}
		c.internalURLs[name] = u
	}
	c.issuerSecrets = map[string][]byte{}
	for iss, secret := range pairs(*issuerSecrets) {
		c.issuerSecrets[iss] = []byte(secret)
	}
	if c.jwtSecret == "" && len(c.issuerSecrets) == 0 && c.jwksFile == "" && c.jwksURL == "" {
		return nil, fmt.Errorf("no token key configured: set JWT_SECRET, JWT_ISSUER_SECRETS, JWKS_FILE or JWKS_URL (every request would be denied)")
	}
	return c, nil
}

// pairs parses "k=v,k2=v2".
func pairs(s string) map[string]string {
	out := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewayd:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("gatewayd stopped", "err", err)
		os.Exit(1)
	}
}
