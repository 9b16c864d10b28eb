package model_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/waooaw/policygateway/xds/model"
)

func lit(s string) model.Segment   { return model.Segment{Kind: model.Literal, Value: s} }
func named(s string) model.Segment { return model.Segment{Kind: model.Var, Value: s} }

var (
	star = model.Segment{Kind: model.Var}
	glob = model.Segment{Kind: model.Glob}
)

// mustParse is for templates a test relies on being valid.
func mustParse(t testing.TB, raw string) model.Template {
	t.Helper()
	tmpl, err := model.ParseTemplate(raw)
	if err != nil {
		t.Fatalf("ParseTemplate(%q): %v", raw, err)
	}
	return tmpl
}

// Every rejection here is a template Envoy's uri_template matcher refuses (or
// one we refuse more strictly, said so in the case): if ParseTemplate let it
// through, Envoy would NACK the whole route table.
func TestParseTemplate(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		wantErr  string // stable part of the message; "" means valid
		wantSegs []model.Segment
		wantVars []string
	}{
		{name: "root", raw: "/"},
		{name: "literals", raw: "/api/agents", wantSegs: []model.Segment{lit("api"), lit("agents")}},
		{name: "seed execute route", raw: "/api/agents/{id}/execute",
			wantSegs: []model.Segment{lit("api"), lit("agents"), named("id"), lit("execute")}, wantVars: []string{"id"}},
		{name: "anonymous one-segment wildcard", raw: "/api/*/x", wantSegs: []model.Segment{lit("api"), star, lit("x")}},
		{name: "trailing glob", raw: "/api/**", wantSegs: []model.Segment{lit("api"), glob}},
		{name: "glob alone", raw: "/**", wantSegs: []model.Segment{glob}},
		{name: "exactly 256 characters", raw: "/" + strings.Repeat("a", 255), wantSegs: []model.Segment{lit(strings.Repeat("a", 255))}},
		{name: "five variables is Envoy's maximum", raw: "/{a}/{b}/{c}/{d}/{e}",
			wantSegs: []model.Segment{named("a"), named("b"), named("c"), named("d"), named("e")}, wantVars: []string{"a", "b", "c", "d", "e"}},
		{name: "16-character variable name", raw: "/x/{abcdefghijklmnop}",
			wantSegs: []model.Segment{lit("x"), named("abcdefghijklmnop")}, wantVars: []string{"abcdefghijklmnop"}},
		{name: "variable name with digits, underscore and capitals", raw: "/{Agent_Id2}",
			wantSegs: []model.Segment{named("Agent_Id2")}, wantVars: []string{"Agent_Id2"}},
		{name: "every literal character Envoy allows", raw: "/a-b.c_d~e%20!$&'()+,;:@=",
			wantSegs: []model.Segment{lit("a-b.c_d~e%20!$&'()+,;:@=")}},

		{name: "empty", raw: "", wantErr: "must start with /"},
		{name: "no leading slash", raw: "api/agents", wantErr: "must start with /"},
		{name: "257 characters", raw: "/" + strings.Repeat("a", 256), wantErr: "longer than 256"},
		{name: "double slash", raw: "/api//agents", wantErr: "double slash"},
		{name: "only slashes", raw: "//", wantErr: "double slash"},
		// Envoy would accept a trailing slash as an empty literal; we refuse it
		// because "/a/" next to "/a" is nearly always a typo.
		{name: "trailing slash", raw: "/api/agents/", wantErr: "trailing slash"},
		{name: "glob before a literal", raw: "/api/**/x", wantErr: "** must be the last"},
		{name: "glob before a glob", raw: "/**/**", wantErr: "** must be the last"},
		{name: "empty variable name", raw: "/api/{}", wantErr: "variable name must be 1-16"},
		{name: "variable name starting with a digit", raw: "/api/{1id}", wantErr: "must match [a-zA-Z][a-zA-Z0-9_]*"},
		{name: "variable name starting with underscore", raw: "/api/{_id}", wantErr: "must match [a-zA-Z][a-zA-Z0-9_]*"},
		{name: "variable name with a dash", raw: "/api/{agent-id}", wantErr: "must match [a-zA-Z][a-zA-Z0-9_]*"},
		// Envoy knows {name=pattern}; we support whole-segment variables only.
		{name: "variable with a match pattern", raw: "/api/{id=*}", wantErr: "must match [a-zA-Z][a-zA-Z0-9_]*"},
		{name: "17-character variable name", raw: "/x/{abcdefghijklmnopq}", wantErr: "variable name must be 1-16"},
		{name: "six variables", raw: "/{a}/{b}/{c}/{d}/{e}/{f}", wantErr: "6 variables, at most 5"},
		{name: "repeated variable", raw: "/{id}/x/{id}", wantErr: `variable "id" used twice`},
		{name: "unclosed variable", raw: "/api/{id", wantErr: "whole segment"},
		{name: "variable followed by text", raw: "/api/{id}.json", wantErr: "whole segment"},
		{name: "variable after text", raw: "/api/v{id}", wantErr: `character '{' is not allowed`},
		{name: "open brace in literal", raw: "/api/a{b", wantErr: `character '{' is not allowed`},
		{name: "close brace in literal", raw: "/api/a}b", wantErr: `character '}' is not allowed`},
		{name: "question mark", raw: "/api/agents?x=1", wantErr: `character '?' is not allowed`},
		{name: "hash", raw: "/api/agents#top", wantErr: `character '#' is not allowed`},
		{name: "space", raw: "/api/my agents", wantErr: `character ' ' is not allowed`},
		{name: "star inside a literal", raw: "/api/a*b", wantErr: `character '*' is not allowed`},
		{name: "triple star", raw: "/api/***", wantErr: `character '*' is not allowed`},
		{name: "non-ASCII", raw: "/api/caf\u00e9", wantErr: "is not allowed in a literal"},
		{name: "control character", raw: "/api/a\nb", wantErr: "is not allowed in a literal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := model.ParseTemplate(tc.raw)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseTemplate(%q) = %+v, want an error containing %q", tc.raw, got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseTemplate(%q) error = %q, want it to contain %q", tc.raw, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", tc.raw, err)
			}
			if got.Raw != tc.raw {
				t.Errorf("Raw = %q, want %q", got.Raw, tc.raw)
			}
			if diff := cmp.Diff(tc.wantSegs, got.Segments); diff != "" {
				t.Errorf("Segments (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantVars, got.Vars); diff != "" {
				t.Errorf("Vars (-want +got):\n%s", diff)
			}
		})
	}
}

// MatchKey is what conflict detection compares, so templates that match the
// same paths must share it and templates that don't must not.
func TestMatchKey(t *testing.T) {
	tests := []struct {
		raw  string
		want string
	}{
		{"/", "/"},
		{"/api/agents", "/api/agents"},
		{"/api/agents/{id}", "/api/agents/{}"},
		{"/api/agents/{other}", "/api/agents/{}"},
		{"/api/agents/*", "/api/agents/{}"},
		{"/api/{a}/x/{b}", "/api/{}/x/{}"},
		{"/api/**", "/api/**"},
		{"/**", "/**"},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			if got := mustParse(t, tc.raw).MatchKey(); got != tc.want {
				t.Errorf("MatchKey(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		})
	}

	distinct := [][2]string{
		{"/api/{id}", "/api/id"},     // a variable is not the literal of its name
		{"/api/{id}", "/api/**"},     // one segment is not any number of them
		{"/api/{id}", "/api/{id}/x"}, // a prefix is not the same path
		{"/", "/**"},
	}
	for _, p := range distinct {
		if a, b := mustParse(t, p[0]).MatchKey(), mustParse(t, p[1]).MatchKey(); a == b {
			t.Errorf("%q and %q share MatchKey %q but match different paths", p[0], p[1], a)
		}
	}
}

// Envoy tries routes in order and the first match wins, so MoreSpecific
// decides which of two overlapping routes a request reaches.
func TestMoreSpecific(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool // a goes before b; b before a is then checked to be false
	}{
		{"literal beats variable", "/api/agents/create", "/api/agents/{id}", true},
		{"literal beats anonymous variable", "/api/agents/create", "/api/agents/*", true},
		{"variable beats glob", "/api/agents/{id}", "/api/agents/**", true},
		{"anonymous variable beats glob", "/api/agents/*", "/api/agents/**", true},
		{"literal beats glob", "/api/agents/create", "/api/**", true},
		{"first difference decides, not length", "/api/agents/{id}", "/api/{x}/create/now", true},
		{"longer beats the shorter prefix it extends", "/api/agents/{id}/execute", "/api/agents/{id}", true},
		{"longer beats shorter literal prefix", "/api/agents/list", "/api/agents", true},
		{"same shape is a tie", "/api/agents/{id}", "/api/agents/{other}", false},
		{"different literals are a tie", "/api/agents", "/api/tasks", false},
		// Envoy compiles "/**" to the regex "/[...]*", which also matches "/":
		// putting "/**" first would make a route for "/" unreachable.
		{"root beats root glob", "/", "/**", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := mustParse(t, tc.a), mustParse(t, tc.b)
			if got := a.MoreSpecific(b); got != tc.want {
				t.Errorf("%q.MoreSpecific(%q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			// Asymmetry is what makes the sort well defined.
			if b.MoreSpecific(a) {
				t.Errorf("%q.MoreSpecific(%q) = true, want false", tc.b, tc.a)
			}
		})
	}
}

// The authz server hands Match's captures to policy, so they must be the
// values Envoy's uri_template matcher would bind for the same path.
func TestMatch(t *testing.T) {
	tests := []struct {
		name       string
		tmpl, path string
		wantOK     bool
		wantParams map[string]string
	}{
		{"seed execute route", "/api/agents/{id}/execute", "/api/agents/abc-123/execute", true, map[string]string{"id": "abc-123"}},
		{"two variables", "/api/{a}/x/{b}", "/api/1/x/2", true, map[string]string{"a": "1", "b": "2"}},
		{"anonymous variable captures nothing", "/api/*/x", "/api/anything/x", true, nil},
		{"literal only", "/api/agents", "/api/agents", true, nil},
		{"root", "/", "/", true, nil},

		{"empty variable segment", "/api/agents/{id}/execute", "/api/agents//execute", false, nil},
		{"empty last segment", "/api/agents/{id}", "/api/agents/", false, nil},
		{"trailing slash after literal", "/api/agents", "/api/agents/", false, nil},
		{"trailing slash after variable", "/api/agents/{id}", "/api/agents/1/", false, nil},
		{"extra segment", "/api/agents/{id}", "/api/agents/1/execute", false, nil},
		{"missing segment", "/api/agents/{id}", "/api/agents", false, nil},
		{"different literal", "/api/agents", "/api/agent", false, nil},
		{"root does not match a segment", "/", "/api", false, nil},
		{"no leading slash", "/api/agents", "api/agents", false, nil},
		{"empty path", "/api/agents", "", false, nil},
		{"double slash before variable", "/api/{id}", "//api/1", false, nil},

		{"glob takes one segment", "/api/**", "/api/a", true, nil},
		{"glob takes several segments", "/api/**", "/api/a/b/c", true, nil},
		{"glob after a variable still captures it", "/api/{id}/**", "/api/7/files/x", true, map[string]string{"id": "7"}},
		{"root glob matches root", "/**", "/", true, nil},
		{"root glob matches anything", "/**", "/a/b", true, nil},
		{"glob needs its prefix", "/api/**", "/apis/a", false, nil},
		// Envoy compiles "/api/**" to "/api/[...]*": the slash before the
		// glob is literal, so "/api/" matches and "/api" does not.
		{"glob matches zero segments after the slash", "/api/**", "/api/", true, nil},
		{"glob needs the slash before it", "/api/**", "/api", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params, ok := mustParse(t, tc.tmpl).Match(tc.path)
			if ok != tc.wantOK {
				t.Fatalf("%q.Match(%q) ok = %v, want %v", tc.tmpl, tc.path, ok, tc.wantOK)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tc.wantParams, params, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%q.Match(%q) params (-want +got):\n%s", tc.tmpl, tc.path, diff)
			}
		})
	}
}

// envoyAccepts follows Envoy's parsePathPatternSyntax
// (source/extensions/path/uri_template_lib/uri_template_internal.cc) for
// everything ParseTemplate can accept. It is written independently of
// template.go so that the fuzzer compares two readings of Envoy's rules; it
// refuses {name=pattern}, which only makes it stricter than Envoy.
func envoyAccepts(raw string) bool {
	if len(raw) > 256 || !envoyPrintable.MatchString(raw) {
		return false
	}
	rest := raw[1:]
	vars := map[string]bool{}
	afterTextGlob := false
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "**"):
			if afterTextGlob {
				return false
			}
			afterTextGlob = true
			rest = rest[2:]
		case rest[0] == '*':
			if afterTextGlob {
				return false
			}
			rest = rest[1:]
		case rest[0] == '{':
			name, after, ok := strings.Cut(rest[1:], "}")
			if !ok || !envoyVarName.MatchString(name) || len(name) > 16 || vars[name] || len(vars) >= 5 || afterTextGlob {
				return false
			}
			vars[name] = true
			rest = after
		default:
			end := strings.IndexByte(rest, '/')
			if end < 0 {
				end = len(rest)
			}
			if !envoyLiteral.MatchString(rest[:end]) {
				return false
			}
			rest = rest[end:]
		}
		switch {
		case rest == "" || rest == "/":
			return true
		case rest[0] == '/':
			rest = rest[1:]
		default: // a suffix such as ".json" must end the pattern
			if !envoyLiteral.MatchString(rest) {
				return false
			}
			return true
		}
	}
	return true
}

var (
	envoyPrintable = regexp.MustCompile(`^/[\x21-\x7e]*$`)
	envoyLiteral   = regexp.MustCompile(`^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$`)
	envoyVarName   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
)

// unparse rebuilds the template text from its segments.
func unparse(segs []model.Segment) string {
	if len(segs) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		switch {
		case s.Kind == model.Literal:
			b.WriteString(s.Value)
		case s.Kind == model.Var && s.Value != "":
			b.WriteString("{" + s.Value + "}")
		case s.Kind == model.Var:
			b.WriteString("*")
		default:
			b.WriteString("**")
		}
	}
	return b.String()
}

func templateSeeds(f *testing.F) {
	for _, s := range []string{
		"/", "/**", "/api/agents", "/api/agents/{id}/execute", "/api/*/x", "/api/**", "/{a}/{b}/{c}/{d}/{e}",
		"/{a}/{b}/{c}/{d}/{e}/{f}", "/api//x", "/api/", "api", "/api/{id}.json", "/{id=*}", "/a-b.c_d~e%20!$&'()+,;:@=",
		"/api/**/x", "/{x}/{x}", "/api/{", "/api/}", "/\x00", "/caf\u00e9",
	} {
		f.Add(s)
	}
}

func FuzzParseTemplate(f *testing.F) {
	templateSeeds(f)
	f.Fuzz(func(t *testing.T, raw string) {
		tmpl, err := model.ParseTemplate(raw)
		if err != nil {
			return
		}
		// A template we accept but Envoy refuses would NACK the route table.
		if !envoyAccepts(raw) {
			t.Fatalf("ParseTemplate accepts %q, which Envoy's parser refuses", raw)
		}
		if got := unparse(tmpl.Segments); got != raw {
			t.Fatalf("segments of %q read back as %q", raw, got)
		}
		key := tmpl.MatchKey()
		if again := mustParse(t, raw).MatchKey(); again != key {
			t.Fatalf("MatchKey(%q) is %q, then %q", raw, key, again)
		}
		// Renaming or anonymising variables must not change which paths
		// match, so it must not change the key either.
		renamed := make([]model.Segment, len(tmpl.Segments))
		anon := make([]model.Segment, len(tmpl.Segments))
		copy(renamed, tmpl.Segments)
		copy(anon, tmpl.Segments)
		for i, s := range tmpl.Segments {
			if s.Kind == model.Var {
				renamed[i].Value = "v" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
				anon[i].Value = ""
			}
		}
		for _, other := range []string{unparse(renamed), unparse(anon)} {
			o, err := model.ParseTemplate(other)
			if err != nil {
				continue // renaming can push past the length limit
			}
			if o.MatchKey() != key {
				t.Fatalf("%q and %q match the same paths but have keys %q and %q", raw, other, key, o.MatchKey())
			}
		}

		parts := make([]string, len(tmpl.Segments))
		for i, s := range tmpl.Segments {
			parts[i] = s.Value
			if s.Kind != model.Literal {
				parts[i] = "x"
			}
		}
		path := "/" + strings.Join(parts, "/")
		params, ok := tmpl.Match(path)
		if !ok {
			t.Fatalf("%q does not match %q, built from it", raw, path)
		}
		if len(params) != len(tmpl.Vars) {
			t.Fatalf("%q.Match(%q) = %v, want one capture per variable %v", raw, path, params, tmpl.Vars)
		}
		for _, v := range tmpl.Vars {
			if params[v] != "x" {
				t.Fatalf("%q.Match(%q)[%s] = %q, want x", raw, path, v, params[v])
			}
		}
	})
}

// matchOracle compiles t the way Envoy does: segments joined by "/", a
// variable is one non-empty segment, "**" is anything (slashes included).
func matchOracle(t model.Template) *regexp.Regexp {
	parts := make([]string, len(t.Segments))
	for i, s := range t.Segments {
		switch {
		case s.Kind == model.Literal:
			parts[i] = regexp.QuoteMeta(s.Value)
		case s.Kind == model.Var && s.Value != "":
			parts[i] = "(?P<" + s.Value + ">[^/]+)"
		case s.Kind == model.Var:
			parts[i] = "[^/]+"
		default:
			parts[i] = ".*"
		}
	}
	return regexp.MustCompile(`(?s)\A/` + strings.Join(parts, "/") + `\z`)
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"/api/agents/{id}/execute", "/api/agents/abc-123/execute"},
		{"/api/agents/{id}/execute", "/api/agents//execute"},
		{"/api/{a}/x/{b}", "/api/1/x/2"},
		{"/api/{id}", "/api/1/"},
		{"/api/**", "/api/a/b"},
		{"/{id}/**", "/x//y/"},
		{"/", "/"},
		{"/", ""},
		{"/*", "/\xff"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, path string) {
		tmpl, err := model.ParseTemplate(raw)
		if err != nil {
			return
		}
		params, ok := tmpl.Match(path)
		re := matchOracle(tmpl)
		m := re.FindStringSubmatch(path)
		if ok != (m != nil) {
			t.Fatalf("%q.Match(%q) = %v, Envoy's reading says %v", raw, path, ok, m != nil)
		}
		if !ok {
			return
		}
		if len(params) != len(tmpl.Vars) {
			t.Fatalf("%q.Match(%q) = %v, want one capture per variable %v", raw, path, params, tmpl.Vars)
		}
		for i, name := range re.SubexpNames() {
			if name != "" && params[name] != m[i] {
				t.Fatalf("%q.Match(%q)[%s] = %q, want %q", raw, path, name, params[name], m[i])
			}
		}
	})
}
