package main

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	base := map[string]string{"JWT_SECRET": "s"}
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
		check   func(t *testing.T, c *config)
	}{
		{name: "defaults", env: base, check: func(t *testing.T, c *config) {
			if c.opaFailOpen || c.listenPort != 8080 || c.useInternalURLs || c.routesFile != "deploy/routes.example.yaml" || c.xdsAddr != ":18000" {
				t.Errorf("%+v", c)
			}
			if c.internalURLs["sandbox"].String() != "http://127.0.0.1:8099" {
				t.Errorf("internal sandbox URL %v", c.internalURLs["sandbox"])
			}
		}},
		{name: "seed variables", env: map[string]string{"JWT_SECRET": "s", "OPA_FAIL_MODE": "open", "OPA_SERVICE_URL": "http://opa:8181",
			"GATEWAY_USE_INTERNAL_URLS": "true", "DATABASE_URL": "postgres://x"}, check: func(t *testing.T, c *config) {
			if !c.opaFailOpen || c.opaServiceURL != "http://opa:8181" || !c.useInternalURLs || c.databaseURL != "postgres://x" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "flags beat the environment", env: map[string]string{"JWT_SECRET": "s", "LISTEN_PORT": "9000"}, args: []string{"-listen-port", "8443"},
			check: func(t *testing.T, c *config) {
				if c.listenPort != 8443 {
					t.Errorf("listen port %d", c.listenPort)
				}
			}},
		{name: "upstream CA file", env: map[string]string{"JWT_SECRET": "s", "UPSTREAM_CA_FILE": "/env/ca.pem"}, args: []string{"-upstream-ca-file", "/flag/ca.pem"},
			check: func(t *testing.T, c *config) {
				if c.upstreamCAFile != "/flag/ca.pem" {
					t.Errorf("upstream CA file %q", c.upstreamCAFile)
				}
			}},
		{name: "issuer secrets", env: map[string]string{"JWT_ISSUER_SECRETS": "cp.waooaw.com=a,pp.waooaw.com=b"}, check: func(t *testing.T, c *config) {
			if string(c.issuerSecrets["pp.waooaw.com"]) != "b" || len(c.issuerSecrets) != 2 {
				t.Errorf("%v", c.issuerSecrets)
			}
		}},
		{name: "no key at all fails closed", env: map[string]string{}, wantErr: "no token key configured"},
		{name: "bad fail mode", env: map[string]string{"JWT_SECRET": "s", "OPA_FAIL_MODE": "maybe"}, wantErr: "OPA_FAIL_MODE"},
		{name: "bad internal URL", env: map[string]string{"JWT_SECRET": "s", "GATEWAY_INTERNAL_URLS": "cp=ftp://x"}, wantErr: "GATEWAY_INTERNAL_URLS"},
		{name: "bad bool", env: map[string]string{"JWT_SECRET": "s", "GATEWAY_USE_INTERNAL_URLS": "yes please"}, wantErr: "GATEWAY_USE_INTERNAL_URLS"},
		{name: "unbounded OPA timeout", env: map[string]string{"JWT_SECRET": "s", "OPA_TIMEOUT": "1m"}, wantErr: "opa-timeout"},
		{name: "bad port", env: base, args: []string{"-listen-port", "70000"}, wantErr: "listen-port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
