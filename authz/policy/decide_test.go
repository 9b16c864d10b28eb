package policy

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/waooaw/policygateway/policies"
)

func newTestEngine(t testing.TB, cfg EngineConfig) *Engine {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	e, err := NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestRegoPolicies is how `make test` runs policies/*_test.rego: the exact
// files embedded in the binary, through OPA's test runner.
func TestRegoPolicies(t *testing.T) {
	passed, failed, err := RunRegoTests(context.Background(), policies.FS)
	t.Logf("rego tests: %d passed, %d failed", passed, failed)
	if err != nil {
		for _, e := range unwrapJoined(err) {
			t.Error(e)
		}
	}
	if passed == 0 {
		t.Error("no rego tests ran")
	}
}

func unwrapJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestRunRegoTestsReportsFailures(t *testing.T) {
	fsys := mapFS(map[string]string{
		"p.rego":      "package p\n\nx := 1\n",
		"p_test.rego": "package p_test\n\nimport data.p\n\ntest_ok if p.x == 1\n\ntest_broken if {\n\tprint(\"x was\", p.x)\n\tp.x == 2\n}\n",
	})
	passed, failed, err := RunRegoTests(context.Background(), fsys)
	if passed != 1 || failed != 1 {
		t.Fatalf("passed, failed = %d, %d; want 1, 1", passed, failed)
	}
	if !errors.Is(err, ErrRegoTestFailed) {
		t.Fatalf("err = %v; want ErrRegoTestFailed", err)
	}
	for _, want := range []string{"data.p_test.test_broken", "x was 1"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDecideEmbedded(t *testing.T) {
	e := newTestEngine(t, EngineConfig{CacheSize: -1})
	for _, tc := range decisionCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.Decide(context.Background(), tc.in)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

// Every seed route must produce a decision with a stable code for every
// kind of caller: the Check server switches on Code without a default.
func TestEverySeedRouteAndCallerHasAStableDecision(t *testing.T) {
	e := newTestEngine(t, EngineConfig{})
	for route := range seedRoutes {
		for user := range seedUsers {
			d, err := e.Decide(context.Background(), request(route, user, map[string]string{"id": "abc123"}))
			if err != nil {
				t.Fatalf("%s as %s: %v", route, user, err)
			}
			switch {
			case d.Allow && (d.Code != "" || d.Reason != ""):
				t.Errorf("%s as %s: allowed with code %q reason %q", route, user, d.Code, d.Reason)
			case !d.Allow && d.Reason == "":
				t.Errorf("%s as %s: denied without a reason", route, user)
			case !d.Allow && d.Code != CodeDomainNotAllowed && d.Code != CodeRBACDenied &&
				d.Code != CodeTrialExpired && d.Code != CodePolicyDenied:
				t.Errorf("%s as %s: code %q", route, user, d.Code)
			}
		}
	}
}

func TestDecideNilInput(t *testing.T) {
	e := newTestEngine(t, EngineConfig{})
	if _, err := e.Decide(context.Background(), nil); !errors.Is(err, ErrNilInput) {
		t.Fatalf("err = %v; want ErrNilInput", err)
	}
}

func TestDecideCancelledContextIsUnavailable(t *testing.T) {
	e := newTestEngine(t, EngineConfig{CacheSize: -1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Decide(ctx, request("plant_list_agents", "viewer", nil))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v; want ErrUnavailable", err)
	}
}

// A caller overriding the verdict (the Governor rule does) must not change
// what the next caller gets from the cache.
func TestDecisionsAreNotSharedWithCallers(t *testing.T) {
	e := newTestEngine(t, EngineConfig{})
	in := request("plant_create_agent", "governor_admin", nil)
	first, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	first.Allow, first.Code = false, "GOVERNOR_REQUIRED"
	second, err := e.Decide(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Allow || second.Code != "" {
		t.Fatalf("cached decision was modified through a returned one: %+v", second)
	}
}

func TestNormalizeHoldsTheContract(t *testing.T) {
	tests := []struct {
		in, want Decision
	}{
		{Decision{Allow: false}, Decision{Code: CodePolicyDenied, Reason: "denied by policy"}},
		{Decision{Code: "SOMETHING_ELSE", Reason: "r", Sandbox: true}, Decision{Code: CodePolicyDenied, Reason: "r"}},
		{Decision{Allow: true, Code: CodeRBACDenied, Reason: "r", Obligations: map[string]any{}}, Decision{Allow: true}},
		{Decision{Code: CodeTrialExpired, Reason: "r"}, Decision{Code: CodeTrialExpired, Reason: "r"}},
	}
	for _, tc := range tests {
		got := tc.in
		got.normalize()
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("normalize(%+v) (-want +got):\n%s", tc.in, diff)
		}
	}
}
