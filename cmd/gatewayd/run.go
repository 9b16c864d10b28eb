package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/waooaw/policygateway/authz"
	"github.com/waooaw/policygateway/authz/policy"
	"github.com/waooaw/policygateway/authz/token"
	"github.com/waooaw/policygateway/xds"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
	"github.com/waooaw/policygateway/xds/translate"
)

func run(ctx context.Context, cfg *config, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Bind every port first, so a clash fails the start, not a later request.
	listen := func(name, addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s listener on %s: %w", name, addr, err)
		}
		return l, nil
	}
	xdsL, err := listen("xds", cfg.xdsAddr)
	if err != nil {
		return err
	}
	authzL, err := listen("ext_authz", cfg.authzAddr)
	if err != nil {
		return err
	}
	extProcL, err := listen("ext_proc", cfg.extProcAddr)
	if err != nil {
		return err
	}
	opsL, err := listen("ops", cfg.opsAddr)
	if err != nil {
		return err
	}

	// Control plane.
	var src xds.Source
	if cfg.databaseURL != "" {
		pool, err := pgxpool.New(ctx, cfg.databaseURL)
		if err != nil {
			return fmt.Errorf("DATABASE_URL: %w", err)
		}
		defer pool.Close()
		src = source.NewPostgres(pool, cfg.databaseURL, log)
		log.Info("routes from PostgreSQL")
	} else {
		src = source.NewFile(cfg.routesFile, log)
		log.Info("routes from file (no DATABASE_URL)", "path", cfg.routesFile)
	}
	modelOpts := model.Options{}
	if cfg.useInternalURLs {
		modelOpts.InternalURLs = cfg.internalURLs
	}
	xdsMetrics := xds.NewMetrics(reg)
	snapshots := xds.NewCache(log)
	ctrl := xds.NewController(xds.ControllerConfig{
		Source: src, Cache: snapshots, Model: modelOpts, Logger: log, Metrics: xdsMetrics, Resync: cfg.resync,
		Translate: translate.Options{ListenPort: uint32(cfg.listenPort), TrustedCAFile: cfg.upstreamCAFile},
	})
	xdsServer := xds.NewGRPCServer(ctx, snapshots, log, xdsMetrics)

	// Decision pipeline.
	verifier, err := token.NewVerifier(ctx, token.Config{
		HS256Secret: []byte(cfg.jwtSecret), IssuerSecrets: cfg.issuerSecrets,
		JWKSFile: cfg.jwksFile, JWKSURL: cfg.jwksURL, Issuer: cfg.jwtIssuer, Audience: cfg.jwtAudience, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	var evaluator policy.Evaluator
	if cfg.opaServiceURL != "" {
		evaluator = policy.NewRemote(policy.RemoteConfig{URL: cfg.opaServiceURL, Timeout: cfg.opaTimeout, Registerer: reg})
		log.Info("policy decisions from remote OPA", "url", cfg.opaServiceURL, "fail_open", cfg.opaFailOpen)
	} else {
		engine, err := policy.NewEngine(ctx, policy.EngineConfig{Dir: cfg.policyDir, Logger: log, Registerer: reg})
		if err != nil {
			return fmt.Errorf("policy engine: %w", err)
		}
		evaluator = engine
		log.Info("policy decisions from embedded OPA", "dir", cfg.policyDir, "fail_open", cfg.opaFailOpen)
	}
	if cfg.auditServiceURL != "" {
		log.Warn("AUDIT_SERVICE_URL is set but the external audit sink is not implemented yet; decisions are logged")
	}
	checker := authz.NewServer(authz.Config{
		Tokens: verifier, Policy: evaluator, FailOpen: cfg.opaFailOpen, Logger: log, Metrics: authz.NewMetrics(reg),
	})
	grpcOpts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(1 << 20), // a CheckRequest carries headers only
	}
	authzServer := grpc.NewServer(grpcOpts...)
	authv3.RegisterAuthorizationServer(authzServer, checker)
	if cfg.grpcReflection {
		// Only here: the xDS and ext_proc ports have no use for it, and the
		// fewer services a port lists the less it tells a stranger.
		reflection.Register(authzServer)
	}
	extProcServer := grpc.NewServer(grpcOpts...)
	extprocv3.RegisterExternalProcessorServer(extProcServer, authz.NewExtProc(log))

	ops := &http.Server{Handler: opsMux(reg, ctrl), ReadHeaderTimeout: 5 * time.Second}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ctrl.Run(ctx) })
	g.Go(func() error { return serveGRPC(ctx, xdsServer, xdsL) })
	g.Go(func() error { return serveGRPC(ctx, authzServer, authzL) })
	g.Go(func() error { return serveGRPC(ctx, extProcServer, extProcL) })
	g.Go(func() error {
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = ops.Shutdown(shut)
		}()
		if err := ops.Serve(opsL); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("ops server: %w", err)
		}
		return nil
	})
	log.Info("gatewayd started", "xds", xdsL.Addr().String(), "ext_authz", authzL.Addr().String(),
		"ext_proc", extProcL.Addr().String(), "ops", opsL.Addr().String(), "envoy_listener_port", cfg.listenPort)
	return g.Wait()
}

// serveGRPC stops gracefully (bounded) when ctx ends.
func serveGRPC(ctx context.Context, s *grpc.Server, l net.Listener) error {
	go func() {
		<-ctx.Done()
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.Stop()
		}
	}()
	if err := s.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc on %s: %w", l.Addr(), err)
	}
	return nil
}

func opsMux(reg *prometheus.Registry, ctrl *xds.Controller) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles are on the ops port only, next to /metrics: not for clients.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	// Ready once Envoy has something to fetch; a later failed sync keeps the
	// last good snapshot, so it does not make gatewayd unready.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-ctrl.Ready():
			st := ctrl.Status()
			fmt.Fprintf(w, "ready snapshot=%s rejected_rows=%d\n", st.Version, len(st.Rejections))
			if st.LastError != nil {
				// Still ready: the last good snapshot serves. Say why it is stale.
				fmt.Fprintf(w, "last_sync_error=%q\n", st.LastError.Error())
			}
		default:
			http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
		}
	})
	return mux
}
