package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// captureStdout runs fn with os.Stdout redirected, returning what it printed.
func captureStdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	runErr := fn()
	os.Stdout = old
	w.Close()
	out, _ := io.ReadAll(r)
	return string(out), runErr
}

func TestRoutesValidate(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr bool
		wantOut []string
	}{
		{name: "the shipped example is valid", file: "../../deploy/routes.example.yaml",
			wantOut: []string{"13 active rows checked across all versions, 0 rejected"}},
		{name: "bad rows are listed with their reason, green versions included", wantErr: true, file: writeFile(t, `active_version: 1
routes:
  - {id: 1, route_version: 1, source_path: /a, http_method: GET, target_backend: cp, target_service_url: "http://x/a"}
  - {id: 2, route_version: 1, source_path: /b, http_method: FETCH, target_backend: cp, target_service_url: "http://x/b"}
  - {id: 3, route_version: 2, source_path: "/c//d", http_method: GET, target_backend: cp, target_service_url: "http://x/c"}
`), wantOut: []string{
			`row 2 (version 1) [ACTIVE VERSION]: http_method: "FETCH" is not one of`,
			`row 3 (version 2): source_path: "/c//d": empty segment`,
			"3 active rows checked across all versions, 2 rejected",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := captureStdout(t, func() error {
				return routesCmd(context.Background(), []string{"validate", "-file", tc.file})
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v\n%s", err, tc.wantErr, out)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
