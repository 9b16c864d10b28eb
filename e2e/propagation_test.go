package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waooaw/policygateway/e2e/stack"
	"github.com/waooaw/policygateway/e2e/testenv"
)

// BenchmarkPropagation measures how long a committed route row takes to serve
// in Envoy: COMMIT returns, then NOTIFY, gatewayd's debounce, translation,
// the ADS push and Envoy's RDS update all happen before the first 200. Run
// with a fixed count (make bench uses -benchtime 25x): b.Loop runs this
// function once, so there is one stack however many iterations.
func BenchmarkPropagation(b *testing.B) {
	if testing.Short() {
		b.Skip("end-to-end benchmark (needs Envoy, PostgreSQL); skipped in -short")
	}
	ctx := context.Background()
	dsn := testenv.MigratedPostgres(b)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	seed, err := os.ReadFile("../migrations/testdata/seed_appendix.sql")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(seed)); err != nil {
		b.Fatal(err)
	}
	s := stack.Start(b, stack.Options{DatabaseURL: dsn})
	auth := "Bearer " + stack.Token(b, governor)
	backends := []string{"cp", "pp", "plant"}
	run := time.Now().UnixNano()

	var latencies []time.Duration
	i := 0
	for b.Loop() {
		backend := backends[i%len(backends)]
		path := fmt.Sprintf("/api/propagation/r%d-%d", run, i)
		i++
		tx, err := pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO gateway_routes (route_version, source_path, http_method, target_backend, target_service_url, middleware_stack)
			VALUES (1, $1, 'GET', $2, $3, '["auth","audit"]')`, path, backend, "https://"+backend+".demo.waooaw.com"+path); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		latencies = append(latencies, waitServed(b, s, path, backend, auth, committed))
	}

	if len(latencies) == 0 {
		return
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	median := latencies[len(latencies)/2]
	// Nearest rank: with 25 samples p99 is the slowest one, which is the
	// honest answer for so few.
	p99 := latencies[(len(latencies)*99+99)/100-1]
	b.ReportMetric(ms(median), "median-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.Logf("route propagation over %d commits: median %.1f ms, p99 %.1f ms, min %.1f ms, max %.1f ms",
		len(latencies), ms(median), ms(p99), ms(latencies[0]), ms(latencies[len(latencies)-1]))
}

// waitServed polls path through Envoy until backend answers it and returns
// the time since committed. It bypasses stack.Do so that each probe costs one
// request and no allocations beyond the client's own.
func waitServed(b *testing.B, s *stack.Stack, path, backend, auth string, committed time.Time) time.Duration {
	b.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	deadline := committed.Add(10 * time.Second)
	for {
		resp, err := s.Client.Do(req)
		if err == nil {
			var e echo
			ok := resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&e) == nil && e.Backend == backend
			resp.Body.Close()
			if ok {
				return time.Since(committed)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not served by %s within 10s of COMMIT", path, backend)
		}
		time.Sleep(time.Millisecond)
	}
}
