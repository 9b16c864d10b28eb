// Package testenv gives integration and end-to-end tests real PostgreSQL and
// Redis servers without any setup outside `go test`.
//
// When DATABASE_URL or REDIS_URL is set, that server is used (CI with service
// containers, a developer's own instance). Otherwise the package starts one
// private server of each kind per test binary, on loopback ports picked at
// random, with data in a temporary directory, and stops them when the binary
// ends. Every test still gets its own empty PostgreSQL database, so tests may
// run in parallel and never see each other's rows.
//
// Use it from TestMain so the servers are stopped and their directories
// removed:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// The servers run as direct children of the test binary with a parent-death
// signal, so even a binary killed by -timeout or Ctrl-C doesn't leave them
// running.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// depsHint ends every "not installed" message, so a developer who hits it
// knows the one command that fixes it.
const depsHint = "run `make deps` to install the PostgreSQL and Redis servers"

var teardown struct {
	mu  sync.Mutex
	fns []func()
}

// atExit registers fn to run when Main finishes, in reverse order of
// registration.
func atExit(fn func()) {
	teardown.mu.Lock()
	defer teardown.mu.Unlock()
	teardown.fns = append(teardown.fns, fn)
}

// Main runs the tests, stops every server this package started and exits
// with the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	teardown.mu.Lock()
	fns := slices.Clone(teardown.fns)
	teardown.fns = nil
	teardown.mu.Unlock()
	for _, fn := range slices.Backward(fns) {
		fn()
	}
	os.Exit(code)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Some
// other process may take it before the caller binds it; the servers started
// here retry with a new port when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serverDir creates the directory for one server's data and log. The name
// carries this binary's pid, so that a later run can remove the directories
// of a binary that was killed (by -timeout, say) before Main could.
func serverDir(kind string) (string, error) {
	prefix := "testenv-" + kind + "-"
	stale, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range stale {
		pidText, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(dir), prefix), "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			_ = os.RemoveAll(dir)
		}
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", prefix, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("%s: %w", kind, err)
	}
	return dir, nil
}

// notInstalledError marks a missing server binary, which a -short run
// treats as a reason to skip rather than to fail.
type notInstalledError struct{ what string }

func (e *notInstalledError) Error() string {
	return fmt.Sprintf("%s not found; %s", e.what, depsHint)
}

// fail ends the test for a server that could not be provided.
func fail(t testing.TB, err error) {
	t.Helper()
	if _, ok := errors.AsType[*notInstalledError](err); ok && testing.Short() {
		t.Skipf("testenv: %v", err)
	}
	t.Fatalf("testenv: %v", err)
}

// process is one long-running server that is a child of the test binary.
type process struct {
	name    string // for messages: "postgres", "redis-server"
	path    string
	args    []string
	dir     string
	env     []string
	logPath string
	cred    *syscall.Credential

	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // Wait's result, valid after done is closed
}

// start launches the process and waits until ready succeeds, the process
// exits, or a deadline passes; the last two come back with the tail of the
// server's log, which is where the reason is.
func (p *process) start(ready func(context.Context) error) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", p.name, err)
	}
	defer logf.Close()

	cmd := exec.Command(p.path, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: p.cred,
		// The kernel applies this after the credential change, so it
		// survives the switch to the postgres user.
		Pdeathsig: syscall.SIGKILL,
		// Ctrl-C in the terminal goes to the foreground process group; the
		// servers must not shut down before the tests that use them.
		Setpgid: true,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rerr := ready(ctx)
		cancel()
		if rerr == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited during startup (%v); log %s ends:\n%s", p.name, p.err, p.logPath, p.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return fmt.Errorf("%s not ready after 60s (%v); log %s ends:\n%s", p.name, rerr, p.logPath, p.logTail())
		}
	}
}

// stop asks the server to shut down with SIGINT, which both PostgreSQL (fast
// shutdown) and Redis honour, and kills it if it takes too long.
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startOnFreePort starts p on a port from freePort, moving to another port
// when something else bound the first one between picking and starting.
func startOnFreePort(p *process, usePort func(port int), ready func(context.Context) error) error {
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return err
		}
		usePort(port)
		err = p.start(ready)
		if err == nil || !strings.Contains(err.Error(), "Address already in use") {
			return err
		}
	}
	return err
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *process) logTail() string { return fileTail(p.logPath) }

// fileTail returns the last few lines of a log file: enough for the
// FATAL line and its context, short enough to read in a test failure.
func fileTail(path string) string {
	const maxBytes, maxLines = 4096, 20
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
