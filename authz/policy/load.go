package policy

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// dataFileName is the only data file name loaded, matching what `opa run`
// and `opa test` load from a directory, so the same directory behaves the
// same in the engine, in a remote OPA and under `opa test`.
const dataFileName = "data.json"

// policySet is one consistent read of a policy directory.
type policySet struct {
	modules map[string]*ast.Module
	data    map[string]any
	// digest identifies the content so that a reload triggered by an event
	// that changed nothing (touch, chmod, an editor's swap file) keeps the
	// warm cache.
	digest [sha256.Size]byte
}

// loadPolicySet reads every .rego file and data.json under fsys. A data.json
// in directory a/b is mounted at data.a.b, as OPA's loader does. Hidden
// entries are skipped, which also skips Kubernetes ConfigMap internals
// (..data, ..2024_01_01...) while still following the visible symlinks.
func loadPolicySet(fsys fs.FS, includeTests bool) (*policySet, error) {
	var names []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		name := d.Name()
		switch {
		case name == dataFileName:
		case strings.HasSuffix(name, "_test.rego"):
			if !includeTests {
				return nil
			}
		case strings.HasSuffix(name, ".rego"):
		default:
			return nil
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walking policy files: %w", err)
	}
	sort.Strings(names)

	set := &policySet{modules: make(map[string]*ast.Module), data: make(map[string]any)}
	h := sha256.New()
	var errs []error
	for _, name := range names {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", name, err))
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(src))
		h.Write(src)

		if path.Base(name) == dataFileName {
			if err := set.mergeData(name, src); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		mod, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, fmt.Errorf("parsing %s: %w", name, err))
			continue
		}
		set.modules[name] = mod
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(set.modules) == 0 {
		return nil, errors.New("no .rego files found")
	}
	h.Sum(set.digest[:0])
	return set, nil
}

func (s *policySet) mergeData(name string, src []byte) error {
	var doc map[string]any
	if err := util.UnmarshalJSON(src, &doc); err != nil {
		return fmt.Errorf("parsing %s: %w", name, err)
	}
	dst := s.data
	if dir := path.Dir(name); dir != "." {
		for seg := range strings.SplitSeq(dir, "/") {
			next, ok := dst[seg].(map[string]any)
			if !ok {
				if _, taken := dst[seg]; taken {
					return fmt.Errorf("%s: data path %s is already a value", name, dir)
				}
				next = make(map[string]any)
				dst[seg] = next
			}
			dst = next
		}
	}
	return mergeObjects(dst, doc, name)
}

// mergeObjects refuses to let one data file silently overwrite another's
// values; only objects merge.
func mergeObjects(dst, src map[string]any, name string) error {
	for k, v := range src {
		existing, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		em, eok := existing.(map[string]any)
		vm, vok := v.(map[string]any)
		if !eok || !vok {
			return fmt.Errorf("%s: key %q conflicts with data loaded earlier", name, k)
		}
		if err := mergeObjects(em, vm, name); err != nil {
			return err
		}
	}
	return nil
}
