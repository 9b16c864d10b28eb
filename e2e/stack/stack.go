// Package stack starts the whole gateway for end-to-end tests: the real
// Envoy binary, the real gatewayd and demobackend binaries (built from this
// repository), each on free loopback ports, and tears them down afterwards.
package stack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/waooaw/policygateway/authz/token"
	"github.com/waooaw/policygateway/envoy"
)

// Secret signs every test token.
const Secret = "e2e-secret-0123456789abcdef0123456789"

// Options choose how the stack runs.
type Options struct {
	DatabaseURL string            // routes from PostgreSQL; empty uses RoutesFile
	RoutesFile  string            // YAML routes when DatabaseURL is empty
	Env         map[string]string // extra gatewayd environment (OPA_FAIL_MODE, ...)
	// BackendTLS makes demo backends serve HTTPS: name -> {cert file, key
	// file} (PEM). A name other than cp, pp, plant and sandbox adds a backend.
	BackendTLS map[string][2]string
}

// Stack is a running gateway.
type Stack struct {
	URL      string         // Envoy listener, e.g. http://127.0.0.1:PORT
	AdminURL string         // Envoy admin
	OpsURL   string         // gatewayd ops
	Backends map[string]int // demo backend name -> port
	Client   *http.Client

	t      testing.TB
	procs  []*proc
	killed []*proc // by Kill; their logs are still shown on failure
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// repoRoot is two levels above this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func buildBinaries(t testing.TB) string {
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gateway-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/gatewayd", "./cmd/demobackend")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// EnvoyBinary is ENVOY_BIN (set by the Makefile), else bin/envoy, else PATH.
func EnvoyBinary(t testing.TB) string {
	if b := os.Getenv("ENVOY_BIN"); b != "" {
		return b
	}
	if b := filepath.Join(repoRoot(), "bin", "envoy"); fileExists(b) {
		return b
	}
	if b, err := exec.LookPath("envoy"); err == nil {
		return b
	}
	if testing.Short() {
		t.Skip("envoy not installed (run make deps)")
	}
	t.Fatal("envoy not installed: run make deps")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// Start runs the stack and waits until Envoy has its listener.
func Start(t testing.TB, opts Options) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (needs Envoy, PostgreSQL); skipped in -short")
	}
	envoyBin := EnvoyBinary(t)
	bins := buildBinaries(t)
	s := &Stack{t: t, Backends: map[string]int{}, Client: &http.Client{Timeout: 5 * time.Second}}
	t.Cleanup(s.stop)

	backends := []string{"cp", "pp", "plant", "sandbox"}
	for _, name := range slices.Sorted(maps.Keys(opts.BackendTLS)) {
		if !slices.Contains(backends, name) {
			backends = append(backends, name)
		}
	}
	ports := freePorts(t, 6+len(backends))
	var serve, tlsPairs []string
	for i, name := range backends {
		p := ports[6+i]
		s.Backends[name] = p
		serve = append(serve, fmt.Sprintf("%s=127.0.0.1:%d", name, p))
		if kc, ok := opts.BackendTLS[name]; ok {
			tlsPairs = append(tlsPairs, fmt.Sprintf("%s=%s:%s", name, kc[0], kc[1]))
		}
	}
	backendArgs := []string{"-serve", strings.Join(serve, ",")}
	if len(tlsPairs) > 0 {
		backendArgs = append(backendArgs, "-tls", strings.Join(tlsPairs, ","))
	}
	s.start("demobackend", filepath.Join(bins, "demobackend"), backendArgs, nil)

	xdsPort, authzPort, extProcPort, opsPort := ports[0], ports[1], ports[2], ports[3]
	listenPort, adminPort := ports[4], ports[5]
	var internal []string
	for name, p := range s.Backends {
		scheme := "http"
		if _, ok := opts.BackendTLS[name]; ok {
			scheme = "https"
		}
		internal = append(internal, fmt.Sprintf("%s=%s://127.0.0.1:%d", name, scheme, p))
	}
	env := map[string]string{
		"XDS_ADDR":                  fmt.Sprintf("127.0.0.1:%d", xdsPort),
		"AUTHZ_ADDR":                fmt.Sprintf("127.0.0.1:%d", authzPort),
		"EXTPROC_ADDR":              fmt.Sprintf("127.0.0.1:%d", extProcPort),
		"OPS_ADDR":                  fmt.Sprintf("127.0.0.1:%d", opsPort),
		"LISTEN_PORT":               strconv.Itoa(listenPort),
		"JWT_SECRET":                Secret,
		"GATEWAY_USE_INTERNAL_URLS": "true",
		"GATEWAY_INTERNAL_URLS":     strings.Join(internal, ","),
		"DATABASE_URL":              opts.DatabaseURL,
		"ROUTES_FILE":               opts.RoutesFile,
		"RESYNC_INTERVAL":           "5s",
		"LOG_LEVEL":                 "info",
	}
	for k, v := range opts.Env {
		env[k] = v
	}
	s.start("gatewayd", filepath.Join(bins, "gatewayd"), nil, env)
	s.OpsURL = fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	s.waitHTTP(s.OpsURL+"/readyz", 20*time.Second)

	b := envoy.Bootstrap{
		NodeID: "e2e", AdminAddress: "127.0.0.1", AdminPort: adminPort, ListenPort: listenPort,
		XDS:     fmt.Sprintf("127.0.0.1:%d", xdsPort),
		Authz:   fmt.Sprintf("127.0.0.1:%d", authzPort),
		ExtProc: fmt.Sprintf("127.0.0.1:%d", extProcPort),
	}
	var boot bytes.Buffer
	if err := b.Render(&boot); err != nil {
		t.Fatal(err)
	}
	bootPath := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(bootPath, boot.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start("envoy", envoyBin, []string{"-c", bootPath, "--disable-hot-restart", "--concurrency", "1",
		"--log-level", "warn", "--drain-time-s", "1"}, nil)
	s.AdminURL = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", listenPort)
	s.waitHTTP(s.AdminURL+"/ready", 30*time.Second)
	// The listener is up once the gateway's own catch-all answers (a plain
	// 404 would mean some other process holds the port).
	s.Eventually(30*time.Second, "Envoy listener answers", func() bool {
		resp, err := s.Client.Get(s.URL + "/__stack_probe")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNotFound && resp.Header.Get("Content-Type") == "application/problem+json"
	})
	return s
}

// freePorts holds every listener open until all n are picked, so the stack
// never gets the same port twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func (s *Stack) start(name, bin string, args []string, env map[string]string) {
	s.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Die with the test binary, even on a hard kill.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &proc{name: name, cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	w := &lockedWriter{p: p}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.procs = append(s.procs, p)
}

type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.log.Len() > 8<<20 { // keep memory bounded on long runs
		w.p.log.Reset()
	}
	return w.p.log.Write(b)
}

// Log returns what a process wrote so far.
func (s *Stack) Log(name string) string {
	for _, p := range append(s.procs, s.killed...) {
		if p.name == name {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.log.String()
		}
	}
	return ""
}

// Kill stops one process (e.g. "gatewayd") to test how the rest copes.
// Eventually no longer treats its exit as a failure.
func (s *Stack) Kill(name string) {
	s.t.Helper()
	for i, p := range s.procs {
		if p.name == name {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			s.killed = append(s.killed, p)
			s.procs = append(s.procs[:i:i], s.procs[i+1:]...)
			return
		}
	}
	s.t.Fatalf("no process %q", name)
}

func (s *Stack) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if s.t.Failed() {
		for _, p := range append(s.procs, s.killed...) {
			s.t.Logf("---- %s log (tail) ----\n%s", p.name, tail(s.Log(p.name), 60))
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Stack) waitHTTP(url string, timeout time.Duration) {
	s.t.Helper()
	s.Eventually(timeout, "GET "+url+" answers 200", func() bool {
		resp, err := s.Client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Eventually polls cond every 20ms until it holds or timeout passes, and
// fails the test (with every process still running) if it never does.
func (s *Stack) Eventually(timeout time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range s.procs {
			select {
			case <-p.done:
				s.t.Fatalf("%s exited while waiting for %s:\n%s", p.name, what, tail(s.Log(p.name), 40))
			default:
			}
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Response is a finished request through Envoy.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode body %q: %v", r.Body, err)
	}
}

// Do sends a request through Envoy.
func (s *Stack) Do(method, path string, header map[string]string) (*Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// MustDo is Do that fails the test on a transport error.
func (s *Stack) MustDo(t testing.TB, method, path string, header map[string]string) *Response {
	t.Helper()
	r, err := s.Do(method, path, header)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Stat reads one Envoy counter or gauge by exact name; -1 when absent.
func (s *Stack) Stat(t testing.TB, name string) int64 {
	t.Helper()
	resp, err := s.Client.Get(s.AdminURL + "/stats?filter=^" + name + "$")
	if err != nil {
		t.Fatalf("envoy stats: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok && k == name {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("stat %s=%q: %v", name, v, err)
			}
			return n
		}
	}
	return -1
}

// Token signs claims with Secret, filling iat and exp when absent.
func Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	tok, err := token.SignHS256([]byte(Secret), c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Bearer is the Authorization header for claims.
func Bearer(t testing.TB, claims map[string]any) map[string]string {
	return map[string]string{"Authorization": "Bearer " + Token(t, claims)}
}
