package xds_test

import (
	"encoding/json"
	"testing"

	"github.com/waooaw/policygateway/xds"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/translate"
)

func version(t *testing.T, rows []model.Row, active int) string {
	t.Helper()
	m, _ := model.Build(rows, active, model.Options{})
	res, _, err := translate.Translate(m, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := xds.NewSnapshot(res)
	if err != nil {
		t.Fatal(err)
	}
	return snap.GetVersion("type.googleapis.com/envoy.config.cluster.v3.Cluster")
}

func row(id int64, version int, method, path, target string) model.Row {
	return model.Row{ID: id, RouteVersion: version, SourcePath: path, HTTPMethod: method, TargetBackend: "cp",
		TargetServiceURL: target, MiddlewareStack: json.RawMessage(`["auth"]`), IsActive: true, RateLimitPerHour: 1000, TimeoutMS: 15000}
}

// Versions are content hashes: equal content, equal version, whatever the
// row order, and bad rows (which drop themselves) change nothing.
func TestSnapshotVersionIsContentHash(t *testing.T) {
	good := []model.Row{
		row(1, 1, "GET", "/api/agents", "https://cp.example.com/api/agents"),
		row(2, 1, "POST", "/api/agents/{id}/execute", "https://cp.example.com/api/agents/{id}/execute"),
	}
	base := version(t, good, 1)
	if got := version(t, []model.Row{good[1], good[0]}, 1); got != base {
		t.Errorf("row order changed the version: %s vs %s", got, base)
	}
	withBad := append(append([]model.Row{}, good...),
		row(3, 1, "FETCH", "/api/broken", "https://cp.example.com/api/broken"),
		row(4, 1, "GET", "/api/agents", "https://pp.example.com/api/agents"),
		row(5, 1, "GET", "/api/also/{id}", "https://cp.example.com/api/x/{other}"),
		row(6, 2, "GET", "/api/other-version", "https://cp.example.com/x"),
	)
	if got := version(t, withBad, 1); got != base {
		t.Errorf("bad rows changed the version: %s vs %s", got, base)
	}
	changed := append(append([]model.Row{}, good...), row(7, 1, "GET", "/api/new", "https://cp.example.com/api/new"))
	if got := version(t, changed, 1); got == base {
		t.Error("a new route did not change the version")
	}
}
