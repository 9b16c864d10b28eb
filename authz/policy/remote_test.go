package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const opaModule = "github.com/open-policy-agent/opa"

// opaBinary builds the real OPA server from the exact module version this
// package links, with OPA's own go.mod (our module does not carry OPA's CLI
// dependencies), and caches it by version across test runs.
func opaBinary(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", opaModule).Output()
	if err != nil {
		t.Fatalf("locating %s: %v", opaModule, err)
	}
	dir, version, ok := strings.Cut(strings.TrimSpace(string(out)), "\t")
	if !ok || version == "" {
		t.Fatalf("unexpected go list output %q", out)
	}
	bin := filepath.Join(os.TempDir(), "policygateway-opa-"+version, "opa")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	// Build to a private name and rename, so concurrent test runs never
	// execute a half-written binary.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	t.Logf("building OPA %s (once per version) ...", version)
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building OPA: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type opaServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startOPA(t *testing.T, policyDir string) *opaServer {
	t.Helper()
	addr := freeAddr(t)
	var logs bytes.Buffer
	cmd := exec.Command(opaBinary(t), "run", "--server", "--addr", addr,
		"--skip-version-check", "--log-level", "error", policyDir)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &opaServer{url: "http://" + addr, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("OPA exited during startup:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("OPA not healthy after 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *opaServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

func TestRemoteAgainstRealOPA(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real OPA server")
	}
	dir := t.TempDir()
	copyPolicies(t, dir)
	srv := startOPA(t, dir)
	ctx := context.Background()

	engine := newTestEngine(t, EngineConfig{CacheSize: -1})
	// Generous for the parity check: the first queries make OPA compile.
	remote := NewRemote(RemoteConfig{URL: srv.url + "/", Timeout: 5 * time.Second})

	for _, tc := range decisionCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := remote.Decide(ctx, tc.in)
			if err != nil {
				t.Fatalf("remote Decide: %v", err)
			}
			if diff := cmp.Diff(&tc.want, got); diff != "" {
				t.Errorf("remote decision (-want +got):\n%s", diff)
			}
			local, err := engine.Decide(ctx, tc.in)
			if err != nil {
				t.Fatalf("engine Decide: %v", err)
			}
			if diff := cmp.Diff(local, got); diff != "" {
				t.Errorf("remote and engine disagree (-engine +remote):\n%s", diff)
			}
		})
	}

	t.Run("seed query shapes", func(t *testing.T) {
		for path, input := range map[string]string{
			"/v1/data/trial/sandbox_route": `{"input": {"agent": {"trial_mode": true}, "action": "execute"}}`,
			"/v1/data/rbac/allow":          `{"input": {"user": {"roles": ["customer"]}, "permission": "agent:execute"}}`,
		} {
			resp, err := http.Post(srv.url+path, "application/json", strings.NewReader(input))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got := strings.TrimSpace(string(body)); got != `{"result":true}` {
				t.Errorf("POST %s = %s; want {\"result\":true}", path, got)
			}
		}
	})

	t.Run("stopped server is unavailable quickly", func(t *testing.T) {
		fast := NewRemote(RemoteConfig{URL: srv.url})
		srv.stop()
		start := time.Now()
		_, err := fast.Decide(ctx, request("cp_get_agent", "paid_customer", map[string]string{"id": "abc123"}))
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v; want ErrUnavailable", err)
		}
		if elapsed > DefaultRemoteTimeout+250*time.Millisecond {
			t.Errorf("took %v; the timeout is %v", elapsed, DefaultRemoteTimeout)
		}
	})
}

func TestRemoteSlowServerIsUnavailableWithinTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()

	for _, timeout := range []time.Duration{100 * time.Millisecond, 0} {
		r := NewRemote(RemoteConfig{URL: srv.URL, Timeout: timeout})
		bound := timeout
		if bound == 0 {
			bound = DefaultRemoteTimeout
		}
		start := time.Now()
		_, err := r.Decide(context.Background(), request("plant_list_agents", "viewer", nil))
		elapsed := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout %v: err = %v; want ErrUnavailable wrapping DeadlineExceeded", timeout, err)
		}
		if elapsed < bound || elapsed > bound+250*time.Millisecond {
			t.Errorf("timeout %v: took %v", timeout, elapsed)
		}
	}
}

func TestRemoteBadAnswersAreUnavailable(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"server error", http.StatusInternalServerError, `{"code": "internal_error"}`},
		{"policy not loaded", http.StatusOK, `{}`},
		{"null result", http.StatusOK, `{"result": null}`},
		{"not json", http.StatusOK, `<html>`},
		{"wrong shape", http.StatusOK, `{"result": true}`},
		{"oversized", http.StatusOK, `{"result": {"allow": true, "reason": "` + strings.Repeat("x", maxResponseBytes) + `"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := NewRemote(RemoteConfig{URL: srv.URL}).Decide(context.Background(), request("plant_list_agents", "viewer", nil))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v; want ErrUnavailable", err)
			}
		})
	}
}

func TestRemoteRequestShapeNormalizationAndCache(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/data/gateway/decision" {
			http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var body struct {
			Input *Input `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Input == nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		// A drifting remote policy: a deny without a stable code.
		fmt.Fprintf(w, `{"decision_id": "x", "result": {"allow": false, "code": "NOPE", "permission": %q}}`, body.Input.Route.PathTemplate)
	}))
	defer srv.Close()

	r := NewRemote(RemoteConfig{URL: srv.URL, CacheTTL: 100 * time.Millisecond})
	in := request("plant_list_agents", "viewer", nil)
	for range 2 {
		d, err := r.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		want := &Decision{Code: CodePolicyDenied, Reason: "denied by policy", Permission: "/api/v1/agents"}
		if diff := cmp.Diff(want, d); diff != "" {
			t.Fatalf("decision (-want +got):\n%s", diff)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("server calls = %d; want 1 (second answered from cache)", n)
	}
	time.Sleep(150 * time.Millisecond)
	if _, err := r.Decide(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("server calls = %d after the TTL; want 2", n)
	}
}
