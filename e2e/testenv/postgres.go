package testenv

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waooaw/policygateway/migrations"
)

// cluster is the PostgreSQL server started for this test binary when
// DATABASE_URL is unset.
type cluster struct {
	mu   sync.Mutex // serialises stop/start of proc
	port int
	proc *process
}

var pg struct {
	once sync.Once
	c    *cluster
	err  error
}

var dbSeq atomic.Int64

// Postgres returns the URL of a new, empty database that exists for the
// duration of t and is dropped afterwards. The server is DATABASE_URL's (its
// role needs CREATEDB) or else this binary's own cluster, started on first
// use.
func Postgres(t testing.TB) string {
	t.Helper()
	admin, err := adminURL()
	if err != nil {
		fail(t, err)
	}
	name := newDBName(t)
	create := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " TEMPLATE template0"
	if err := adminExec(admin, create); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		// FORCE because a test that forgot to close its pool must not
		// turn into a failure to clean up after it.
		drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
		if err := adminExec(admin, drop); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// MigratedPostgres is Postgres with every migration applied.
func MigratedPostgres(t testing.TB) string {
	t.Helper()
	dsn := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, dsn); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// StopPostgres shuts down this binary's cluster, for tests of how code
// behaves while the database is gone. The cluster is started again when t
// ends if the test didn't do so itself. It skips the test when DATABASE_URL
// is set, because that server isn't ours to stop.
//
// Stopping affects every test in the binary: call it only from tests that
// don't use t.Parallel (Go runs those only after all sequential tests at
// the same level have finished).
func StopPostgres(t testing.TB) {
	t.Helper()
	c := ownCluster(t)
	c.mu.Lock()
	c.proc.stop()
	c.mu.Unlock()
	t.Cleanup(func() {
		if err := c.ensureRunning(); err != nil {
			t.Errorf("testenv: restart after test: %v", err)
		}
	})
}

// StartPostgres starts this binary's cluster again, on the same port, after
// StopPostgres. It does nothing if the cluster is running.
func StartPostgres(t testing.TB) {
	t.Helper()
	c := ownCluster(t)
	if err := c.ensureRunning(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// RestartPostgres stops and starts this binary's cluster on the same port,
// dropping every connection, for reconnect tests. Databases and their data
// survive. The same restrictions as for StopPostgres apply.
func RestartPostgres(t testing.TB) {
	t.Helper()
	StopPostgres(t)
	StartPostgres(t)
}

func ownCluster(t testing.TB) *cluster {
	t.Helper()
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("testenv: DATABASE_URL is set; its server cannot be stopped or restarted by tests")
	}
	c, err := localCluster()
	if err != nil {
		fail(t, err)
	}
	return c
}

func (c *cluster) ensureRunning() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc.running() {
		return nil
	}
	return c.proc.start(c.ready)
}

func adminURL() (string, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	c, err := localCluster()
	if err != nil {
		return "", err
	}
	return c.adminURL(), nil
}

func (c *cluster) adminURL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *cluster) ready(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.adminURL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func adminExec(dsn, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to admin database: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// newDBName makes a database name unique across tests, parallel test
// binaries and runs sharing one DATABASE_URL server, and recognisable when
// one is left behind.
func newDBName(t testing.TB) string {
	slug := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '_'
		}
	}, t.Name())
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), dbSeq.Add(1), slug)
	const maxIdentifier = 63
	if len(name) > maxIdentifier {
		name = name[:maxIdentifier]
	}
	return name
}

// withDatabase points a server URL, in either of libpq's two syntaxes, at
// the named database.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse database URL: %w", err)
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// In keyword/value form the last occurrence of a keyword wins.
	return dsn + " dbname=" + name, nil
}

func localCluster() (*cluster, error) {
	pg.once.Do(func() { pg.c, pg.err = startCluster() })
	return pg.c, pg.err
}

func startCluster() (_ *cluster, err error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}

	base, err := serverDir("pg")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(base)
		}
	}()
	if cred != nil {
		if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("postgres: hand the data directory to the postgres user: %w", err)
		}
	}

	data := filepath.Join(base, "data")
	// TZ=UTC makes initdb write timezone = 'UTC', so tests see the same
	// clock on every machine.
	env := []string{"LC_ALL=C", "TZ=UTC"}
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.Dir = base
	initdb.Env = env
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("postgres: initdb: %w\n%s", err, out)
	}

	c := &cluster{}
	c.proc = &process{
		name:    "postgres",
		path:    filepath.Join(bin, "postgres"),
		dir:     base,
		env:     env,
		logPath: filepath.Join(base, "postgres.log"),
		cred:    cred,
	}
	err = startOnFreePort(c.proc, func(port int) {
		c.port = port
		c.proc.args = []string{
			"-D", data,
			"-c", "listen_addresses=127.0.0.1",
			"-c", "port=" + strconv.Itoa(port),
			"-c", "unix_socket_directories=" + base,
			// Durability is pointless for a throwaway cluster and costs
			// most of the time CREATE DATABASE and migrations take.
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			// Parallel tests each hold a pool, and e2e tests add gatewayd's.
			"-c", "max_connections=300",
		}
	}, c.ready)
	if err != nil {
		return nil, err
	}
	atExit(func() {
		c.mu.Lock()
		c.proc.stop()
		c.mu.Unlock()
		_ = os.RemoveAll(base)
	})
	return c, nil
}

// postgresBinDir finds the directory holding initdb and postgres: the newest
// Debian-style /usr/lib/postgresql/N/bin, else pg_config's, else PATH's.
func postgresBinDir() (string, error) {
	complete := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}

	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(major(b), major(a)) })
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, dir := range dirs {
		if complete(dir) {
			return dir, nil
		}
	}
	return "", &notInstalledError{what: "PostgreSQL server binaries (initdb, postgres)"}
}

// postgresCredential returns who to run the server as: PostgreSQL refuses
// to run as root, so under root it is the postgres account that Debian's
// package creates; otherwise the current user, which needs no switch.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, &notInstalledError{what: "user postgres (PostgreSQL refuses to run as root)"}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres: uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres: gid of user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
