// Command demobackend stands in for the CP, PP, Plant and sandbox services:
// GET /health answers ok, every other request is echoed back as JSON so a
// test (or a curious human) can see exactly what the gateway forwarded.
package main

import (
	"context"
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
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *serve); err != nil {
		slog.Error("demobackend failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, spec string) error {
	pairs := strings.Split(spec, ",")
	sort.Strings(pairs)
	errc := make(chan error, len(pairs))
	var servers []*http.Server
	for _, p := range pairs {
		name, addr, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || name == "" || addr == "" {
			return fmt.Errorf("bad -serve entry %q, want name=host:port", p)
		}
		srv := &http.Server{Addr: addr, Handler: handler(name), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() {
			slog.Info("demo backend listening", "backend", name, "addr", addr)
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s on %s: %w", name, addr, err)
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
