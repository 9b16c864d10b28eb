package translate_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/waooaw/policygateway/xds"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
	"github.com/waooaw/policygateway/xds/translate"
)

// benchRows builds n distinct valid rows shaped like a large deployment:
// 50 backends on their own hosts, literal and {id} paths, rewrites, several
// methods, and a sandbox twin on every tenth row.
func benchRows(n int) []model.Row {
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE"}
	stacks := []json.RawMessage{
		json.RawMessage(`["auth","audit"]`),
		json.RawMessage(`["auth","rbac","policy","audit"]`),
		json.RawMessage(`["auth","policy","budget","audit"]`),
	}
	rows := make([]model.Row, 0, n)
	for i := range n {
		backend := fmt.Sprintf("svc%02d", i%50)
		scheme, port := "https", ""
		if i%50 >= 40 {
			scheme, port = "http", ":8080"
		}
		host := scheme + "://" + backend + ".internal.example.com" + port
		r := model.Row{
			ID: int64(i + 1), RouteVersion: 1, HTTPMethod: methods[i%len(methods)],
			TargetBackend: backend, MiddlewareStack: stacks[i%len(stacks)],
			RateLimitPerHour: 1000, IsActive: true, TimeoutMS: 15000,
		}
		switch i % 4 {
		case 0: // literal, same path upstream
			r.SourcePath = fmt.Sprintf("/api/%s/items%d", backend, i)
			r.TargetServiceURL = host + r.SourcePath
		case 1: // variable, rewritten upstream
			r.SourcePath = fmt.Sprintf("/api/%s/items%d/{id}", backend, i)
			r.TargetServiceURL = fmt.Sprintf("%s/v2/items%d/{id}", host, i)
			r.RequiresOPAPolicy = "rbac/allow"
		case 2: // two variables
			r.SourcePath = fmt.Sprintf("/api/%s/agents%d/{id}/tasks/{task}", backend, i)
			r.TargetServiceURL = host + r.SourcePath
			r.Permission = "task:create"
		case 3: // literal, no upstream path
			r.SourcePath = fmt.Sprintf("/api/%s/reports%d/export", backend, i)
			r.TargetServiceURL = host
			r.RequiresGovernorRole = true
		}
		if i%10 == 0 {
			r.TrialModeSandboxURL = "https://sandbox.example.com" + r.SourcePath
			if i%20 == 0 {
				r.TrialModeSandboxURL = "http://10.0.0.9:8099" + r.SourcePath
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// checkRows makes sure the benchmark measures what it claims: every row
// serves, none is rejected along the way.
func checkRows(b *testing.B, rows []model.Row) {
	b.Helper()
	m, rej := model.Build(rows, 1, model.Options{})
	if len(rej) != 0 || len(m.Routes) != len(rows) {
		b.Fatalf("%d of %d rows serve; rejections: %v", len(m.Routes), len(rows), rej)
	}
	_, dropped, err := translate.Translate(m, translate.Options{})
	if err != nil || len(dropped) != 0 {
		b.Fatalf("translate: %v, dropped %v", err, dropped)
	}
}

// The whole publish path of one sync, minus the database read: DESIGN §8
// wants 10,000 routes in well under a second.
func BenchmarkTranslate10k(b *testing.B) {
	rows := benchRows(10000)
	checkRows(b, rows)
	b.ReportAllocs()
	for b.Loop() {
		m, _ := model.Build(rows, 1, model.Options{})
		res, _, err := translate.Translate(m, translate.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := xds.NewSnapshot(res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuild10k(b *testing.B) {
	rows := benchRows(10000)
	checkRows(b, rows)
	b.ReportAllocs()
	for b.Loop() {
		if m, _ := model.Build(rows, 1, model.Options{}); len(m.Routes) != len(rows) {
			b.Fatalf("%d routes", len(m.Routes))
		}
	}
}

func BenchmarkTranslateSeed(b *testing.B) {
	data, err := os.ReadFile("testdata/in/seed.yaml")
	if err != nil {
		b.Fatal(err)
	}
	rows, active, err := source.ParseFile(data)
	if err != nil {
		b.Fatal(err)
	}
	if len(rows) != 13 {
		b.Fatalf("seed has %d rows, want 13", len(rows))
	}
	checkRows(b, rows)
	b.ReportAllocs()
	for b.Loop() {
		m, _ := model.Build(rows, active, model.Options{})
		res, _, err := translate.Translate(m, translate.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := xds.NewSnapshot(res); err != nil {
			b.Fatal(err)
		}
	}
}
