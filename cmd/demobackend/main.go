// Command demobackend stands in for the CP, PP, Plant and sandbox services:
// GET /health answers ok, every other request is echoed back as JSON so a
// test (or a curious human) can see exactly what the gateway forwarded.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Echo is the body every non-health request gets.
type Echo struct {
	Backend string            `json:"backend"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query,omitempty"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
	// Omitted over plain HTTP; SNI is the server name the client asked for.
	TLS bool   `json:"tls,omitempty"`
	SNI string `json:"sni,omitempty"`
}

func handler(name string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","backend":%q}`+"\n", name)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e := Echo{Backend: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Headers: map[string]string{}}
		for k, v := range r.Header {
			e.Headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		if r.TLS != nil {
			e.TLS, e.SNI = true, r.TLS.ServerName
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(e)
	})
	return mux
}

func main() {
	serve := flag.String("serve", "cp=127.0.0.1:8015,pp=127.0.0.1:8006,plant=127.0.0.1:8000,sandbox=127.0.0.1:8099",
		"comma-separated name=address pairs, one server each")
	tlsSpec := flag.String("tls", "", "comma-separated name=certfile:keyfile pairs: these -serve names serve HTTPS only (PEM files, paths without ':')")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *serve, *tlsSpec); err != nil {
		slog.Error("demobackend failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, spec, tlsSpec string) error {
	certs, err := loadCerts(tlsSpec)
	if err != nil {
		return err
	}
	pairs := strings.Split(spec, ",")
	sort.Strings(pairs)
	names := make([]string, 0, len(pairs))
	servers := make([]*http.Server, 0, len(pairs))
	for _, p := range pairs {
		name, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || name == "" || addr == "" {
			return fmt.Errorf("bad -serve entry %q, want name=host:port", p)
		}
		srv := &http.Server{Addr: addr, Handler: handler(name), ReadHeaderTimeout: 5 * time.Second}
		if cert, ok := certs[name]; ok {
			srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			delete(certs, name)
		}
		names = append(names, name)
		servers = append(servers, srv)
	}
	// A misspelt name would otherwise leave that backend on plain HTTP.
	for name := range certs {
		return fmt.Errorf("-tls names %q, which -serve does not", name)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() {
			secure := srv.TLSConfig != nil
			slog.Info("demo backend listening", "backend", names[i], "addr", srv.Addr, "tls", secure)
			var err error
			if secure {
				err = srv.ListenAndServeTLS("", "") // the certificate is already in TLSConfig
			} else {
				err = srv.ListenAndServe()
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s on %s: %w", names[i], srv.Addr, err)
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(shutdown)
	}
	return nil
}

// loadCerts parses "name=cert:key,..." and loads every pair before any server
// starts, so a bad file fails the start instead of one backend later.
func loadCerts(spec string) (map[string]tls.Certificate, error) {
	certs := map[string]tls.Certificate{}
	if strings.TrimSpace(spec) == "" {
		return certs, nil
	}
	for _, p := range strings.Split(spec, ",") {
		name, files, _ := strings.Cut(strings.TrimSpace(p), "=")
		certFile, keyFile, _ := strings.Cut(files, ":")
		if name == "" || certFile == "" || keyFile == "" {
			return nil, fmt.Errorf("bad -tls entry %q, want name=certfile:keyfile", p)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls %s: %w", name, err)
		}
		certs[name] = cert
	}
	return certs, nil
}
