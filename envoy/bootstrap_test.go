package envoy

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite envoy/bootstrap.yaml")

// The checked-in default must be what Render produces, so the two never drift.
func TestDefaultIsCheckedIn(t *testing.T) {
	var buf bytes.Buffer
	if err := Default().Render(&buf); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("bootstrap.yaml", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("bootstrap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("envoy/bootstrap.yaml is stale: regenerate with `go test ./envoy -update`")
	}
}

func TestRenderRejectsBadAddress(t *testing.T) {
	b := Default()
	b.Authz = "no-port"
	if err := b.Render(&bytes.Buffer{}); err == nil {
		t.Fatal("want an error for an address without a port")
	}
}

// Envoy itself validates the bootstrap (skipped only when Envoy is absent in -short).
func TestEnvoyValidates(t *testing.T) {
	bin, err := exec.LookPath("envoy")
	if b := os.Getenv("ENVOY_BIN"); b != "" {
		bin, err = b, nil
	}
	if err != nil {
		if testing.Short() {
			t.Skip("envoy not installed (make deps)")
		}
		t.Fatal("envoy not installed: run make deps")
	}
	for _, b := range []Bootstrap{Default(), {NodeID: "n", AdminAddress: "127.0.0.1", AdminPort: 19901, XDS: "gatewayd:18000", Authz: "gatewayd:9001", ExtProc: "gatewayd:9002"}} {
		path := filepath.Join(t.TempDir(), "bootstrap.yaml")
		var buf bytes.Buffer
		if err := b.Render(&buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--mode", "validate", "-c", path, "--log-level", "error").CombinedOutput()
		if err != nil {
			t.Fatalf("envoy --mode validate: %v\n%s", err, out)
		}
	}
}
