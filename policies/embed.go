// Package policies carries the gateway's Rego policies and their data inside
// the binary, so that a gateway started without OPA_SERVICE_URL or a policy
// directory still enforces the reviewed defaults rather than nothing.
//
// The *_test.rego files are embedded too: `gatewayctl policy test` and the Go
// test suite run them against exactly what ships. The policy engine skips
// them when it builds the runtime policy set.
package policies

import "embed"

//go:embed *.rego data.json
var FS embed.FS
