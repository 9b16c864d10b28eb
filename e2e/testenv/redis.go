package testenv

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

var rds struct {
	once sync.Once
	addr string
	err  error
}

// Redis returns the URL of a Redis server: REDIS_URL if set, else
// redis://127.0.0.1:PORT/0 on a server started once for this test binary,
// with persistence off.
//
// All tests of a binary share the server and its database 0, and nothing is
// flushed between them, because a FLUSHALL would wipe the keys of tests
// running in parallel. Tests must therefore namespace their keys, for
// example with t.Name() and a random suffix, or configure the code under
// test with a unique key prefix.
func Redis(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	rds.once.Do(func() { rds.addr, rds.err = startRedis() })
	if rds.err != nil {
		fail(t, rds.err)
	}
	return "redis://" + rds.addr + "/0"
}

func startRedis() (addr string, err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", &notInstalledError{what: "redis-server"}
	}
	base, err := serverDir("redis")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(base)
		}
	}()

	p := &process{
		name:    "redis-server",
		path:    bin,
		dir:     base,
		logPath: filepath.Join(base, "redis.log"),
	}
	ready := func(ctx context.Context) error {
		c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	err = startOnFreePort(p, func(port int) {
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p.args = []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", base,
			"--daemonize", "no",
		}
	}, ready)
	if err != nil {
		return "", err
	}
	atExit(func() {
		p.stop()
		_ = os.RemoveAll(base)
	})
	return addr, nil
}
