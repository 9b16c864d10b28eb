package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// RunRegoTests runs every test_ rule in the .rego files under fsys (with the
// same data.json the engine loads), as `opa test` would. err is non-nil when
// the tests could not run or when any test failed or errored; it then names
// each failing test, with the test's print output, each wrapping
// ErrRegoTestFailed.
func RunRegoTests(ctx context.Context, fsys fs.FS) (passed, failed int, err error) {
	set, err := loadPolicySet(fsys, true)
	if err != nil {
		return 0, 0, fmt.Errorf("loading policies: %w", err)
	}
	results, err := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(inmem.NewFromObject(set.data)).
		SetModules(set.modules).
		CapturePrintOutput(true).
		RunTests(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("compiling policy tests: %w", err)
	}
	var errs []error
	for res := range results {
		switch {
		case res.Skip:
		case res.Pass():
			passed++
		default:
			failed++
			errs = append(errs, testFailure(res))
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return passed, failed, errors.Join(errs...)
}

func testFailure(res *tester.Result) error {
	name := res.Package + "." + res.Name
	if res.Location != nil {
		name = fmt.Sprintf("%s (%s:%d)", name, res.Location.File, res.Location.Row)
	}
	var detail []string
	if res.Error != nil {
		detail = append(detail, res.Error.Error())
	}
	if out := strings.TrimSpace(string(res.Output)); out != "" {
		detail = append(detail, out)
	}
	if len(detail) == 0 {
		return fmt.Errorf("%w: %s", ErrRegoTestFailed, name)
	}
	return fmt.Errorf("%w: %s: %s", ErrRegoTestFailed, name, strings.Join(detail, "; "))
}
