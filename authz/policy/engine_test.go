package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/waooaw/policygateway/policies"
)

func mapFS(files map[string]string) fs.FS {
	m := fstest.MapFS{}
	for name, src := range files {
		m[name] = &fstest.MapFile{Data: []byte(src)}
	}
	return m
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// copyPolicies writes the shipped runtime policies (no tests) into dir.
func copyPolicies(t testing.TB, dir string) {
	t.Helper()
	entries, err := fs.ReadDir(policies.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "_test.rego") {
			continue
		}
		src, err := fs.ReadFile(policies.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, e.Name()), src)
	}
}

// writeFile replaces atomically, as editors and ConfigMap updates do, so the
// watcher never reads half a file.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func editData(t testing.TB, dir string, edit func(map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, "data.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, out)
}

// counterValue reads a counter without prometheus/testutil, whose extra
// dependencies this module does not carry.
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEmbeddedRuntimeExcludesTests(t *testing.T) {
	set, err := loadPolicySet(policies.FS, false)
	if err != nil {
		t.Fatal(err)
	}
	for name := range set.modules {
		if strings.HasSuffix(name, "_test.rego") {
			t.Errorf("runtime policy set contains %s", name)
		}
	}
	for _, want := range []string{"gateway.rego", "rbac.rego", "trial.rego", "budget.rego"} {
		if set.modules[want] == nil {
			t.Errorf("runtime policy set lacks %s", want)
		}
	}
}

func TestReloadOnChangeAndKeepOldPolicyOnError(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir)
	reg := prometheus.NewRegistry()
	e := newTestEngine(t, EngineConfig{Dir: dir, Registerer: reg})
	ctx := context.Background()

	in := request("pp_list_customers", "viewer", nil)
	allowed := func() bool {
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatalf("Decide: %v", err)
		}
		return d.Allow
	}
	if allowed() {
		t.Fatal("viewer may list customers before the grant")
	}

	editData(t, dir, func(doc map[string]any) {
		perms := doc["rbac"].(map[string]any)["config"].(map[string]any)["role_permissions"].(map[string]any)
		perms["viewer"] = append(perms["viewer"].([]any), "customer:view")
	})
	eventually(t, "the data change to take effect", allowed)
	if got := counterValue(t, e.metrics.reloads); got != 1 {
		t.Errorf("reloads = %v; want 1", got)
	}
	if err := e.LastError(); err != nil {
		t.Errorf("LastError after a good reload = %v", err)
	}

	writeFile(t, filepath.Join(dir, "broken.rego"), []byte("package broken\n\nx := {\n"))
	eventually(t, "the broken policy to be rejected", func() bool { return e.LastError() != nil })
	if !allowed() {
		t.Error("a rejected reload changed the serving policy")
	}
	if got := counterValue(t, e.metrics.reloadErrors); got < 1 {
		t.Errorf("reload errors = %v; want >= 1", got)
	}
	if !contains(e.LastError().Error(), "broken.rego") {
		t.Errorf("LastError does not name the file: %v", e.LastError())
	}
	assertGathered(t, reg, "gateway_policy_reload_errors_total", "gateway_policy_reloads_total",
		"gateway_policy_cache_hits_total", "gateway_policy_cache_misses_total")

	// Removing the broken file restores the serving content, which clears
	// the error without a recompile or a cache flush.
	if err := os.Remove(filepath.Join(dir, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the error to clear", func() bool { return e.LastError() == nil })
	if got := counterValue(t, e.metrics.reloads); got != 1 {
		t.Errorf("reloads = %v after restoring identical content; want still 1", got)
	}
}

func assertGathered(t *testing.T, reg *prometheus.Registry, names ...string) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
}

// A policy set that compiles but no longer defines the decision would turn
// every request into an error; it is rejected like a syntax error.
func TestReloadRejectsPolicyWithoutDecision(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir)
	e := newTestEngine(t, EngineConfig{Dir: dir})
	e.Close() // drive reloads by hand

	writeFile(t, filepath.Join(dir, "gateway.rego"), []byte("package gateway\n\nnot_a_decision := true\n"))
	err := e.Reload(context.Background())
	if err == nil || !contains(err.Error(), "no decision") {
		t.Fatalf("Reload = %v; want a no-decision error", err)
	}
	if !errors.Is(e.LastError(), err) {
		t.Errorf("LastError = %v; want %v", e.LastError(), err)
	}
	d, err := e.Decide(context.Background(), request("plant_list_agents", "viewer", nil))
	if err != nil || !d.Allow {
		t.Fatalf("old policy stopped serving: %+v, %v", d, err)
	}
}

func TestNewEngineFailsOnBadPolicy(t *testing.T) {
	dir := t.TempDir()
	copyPolicies(t, dir)
	writeFile(t, filepath.Join(dir, "rbac.rego"), []byte("package rbac\n\nallow if {\n"))
	if _, err := NewEngine(context.Background(), EngineConfig{Dir: dir}); err == nil {
		t.Fatal("NewEngine accepted a policy that does not parse")
	}
}

func TestDataInSubdirectoryIsMounted(t *testing.T) {
	set, err := loadPolicySet(mapFS(map[string]string{
		"p.rego":            "package p\n",
		"data.json":         `{"a": {"x": 1}}`,
		"a/b/data.json":     `{"y": 2}`,
		".hidden/data.json": `{"z": 3}`,
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(set.data)
	if want := `{"a":{"b":{"y":2},"x":1}}`; string(got) != want {
		t.Errorf("data = %s; want %s", got, want)
	}
	_, err = loadPolicySet(mapFS(map[string]string{
		"p.rego":      "package p\n",
		"data.json":   `{"a": 1}`,
		"a/data.json": `{"y": 2}`,
	}), false)
	if err == nil {
		t.Error("conflicting data files were merged")
	}
}

func TestCacheAvoidsReevaluation(t *testing.T) {
	e := newTestEngine(t, EngineConfig{})
	ctx := context.Background()
	in := request("cp_execute_agent", "trial_customer", map[string]string{"id": "abc123"})
	for range 3 {
		if _, err := e.Decide(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// An equal input built separately must hit as well: the key is the
	// content, not the pointer.
	if _, err := e.Decide(ctx, request("cp_execute_agent", "trial_customer", map[string]string{"id": "abc123"})); err != nil {
		t.Fatal(err)
	}
	if n := e.evaluations.Load(); n != 1 {
		t.Errorf("evaluations = %d; want 1", n)
	}
	if h, m := counterValue(t, e.metrics.cacheHits), counterValue(t, e.metrics.cacheMisses); h != 3 || m != 1 {
		t.Errorf("hits, misses = %v, %v; want 3, 1", h, m)
	}
	other := request("cp_execute_agent", "trial_customer", map[string]string{"id": "abc124"})
	if _, err := e.Decide(ctx, other); err != nil {
		t.Fatal(err)
	}
	if n := e.evaluations.Load(); n != 2 {
		t.Errorf("evaluations = %d after a different input; want 2", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	e := newTestEngine(t, EngineConfig{CacheSize: -1})
	in := request("plant_list_agents", "viewer", nil)
	for range 2 {
		if _, err := e.Decide(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.evaluations.Load(); n != 2 {
		t.Errorf("evaluations = %d; want 2 with the cache disabled", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	const size = 32
	e := newTestEngine(t, EngineConfig{CacheSize: size})
	for i := range 500 {
		in := request("cp_get_agent", "paid_customer", map[string]string{"id": fmt.Sprint(i)})
		if _, err := e.Decide(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.current.Load().cache.len(); n > size {
		t.Errorf("cache holds %d entries; bound is %d", n, size)
	}
}

func TestMetricsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	newTestEngine(t, EngineConfig{Registerer: reg})
	newTestEngine(t, EngineConfig{Registerer: reg})
	r := NewRemote(RemoteConfig{URL: "http://127.0.0.1:1", Registerer: reg})
	if r.metrics == nil {
		t.Fatal("remote has no metrics")
	}
	assertGathered(t, reg, "gateway_policy_reloads_total")
}
