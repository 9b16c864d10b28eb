package model

import (
	"fmt"
	"strings"
)

// SegmentKind orders path segments from most to least specific.
type SegmentKind int

const (
	Literal SegmentKind = iota // "agents"
	Var                        // "{id}" or "*": exactly one segment
	Glob                       // "**": zero or more trailing segments
)

// Segment is one "/"-separated piece of a URI template.
type Segment struct {
	Kind  SegmentKind
	Value string // the literal text, or the variable name ("" for * and **)
}

// Template is a parsed URI template in the subset Envoy's
// uri_template matcher accepts (whole-segment variables only).
type Template struct {
	Raw      string
	Segments []Segment
	Vars     []string
}

// Envoy's limits (uri_template_match.proto and uri_template_internal.cc).
const (
	maxTemplateLen = 256
	maxVars        = 5
	maxVarNameLen  = 16
)

// ParseTemplate validates a path template against the rules Envoy enforces,
// so that a row Envoy would reject never reaches a snapshot (Envoy must not NACK).
func ParseTemplate(raw string) (Template, error) {
	t := Template{Raw: raw}
	if raw == "" || raw[0] != '/' {
		return t, fmt.Errorf("must start with /")
	}
	if len(raw) > maxTemplateLen {
		return t, fmt.Errorf("longer than %d characters", maxTemplateLen)
	}
	if raw == "/" {
		return t, nil
	}
	parts := strings.Split(raw[1:], "/")
	seen := map[string]bool{}
	for i, p := range parts {
		if p == "" {
			if i == len(parts)-1 {
				return t, fmt.Errorf("trailing slash is not allowed")
			}
			return t, fmt.Errorf("empty segment (double slash)")
		}
		switch {
		case p == "**":
			if i != len(parts)-1 {
				return t, fmt.Errorf("** must be the last segment")
			}
			t.Segments = append(t.Segments, Segment{Kind: Glob})
		case p == "*":
			t.Segments = append(t.Segments, Segment{Kind: Var})
		case strings.HasPrefix(p, "{"):
			if !strings.HasSuffix(p, "}") {
				return t, fmt.Errorf("segment %q: a variable must fill the whole segment", p)
			}
			name := p[1 : len(p)-1]
			if err := checkVarName(name); err != nil {
				return t, fmt.Errorf("segment %q: %w", p, err)
			}
			if seen[name] {
				return t, fmt.Errorf("variable %q used twice", name)
			}
			seen[name] = true
			t.Vars = append(t.Vars, name)
			t.Segments = append(t.Segments, Segment{Kind: Var, Value: name})
		default:
			if err := checkLiteral(p); err != nil {
				return t, fmt.Errorf("segment %q: %w", p, err)
			}
			t.Segments = append(t.Segments, Segment{Kind: Literal, Value: p})
		}
	}
	if len(t.Vars) > maxVars {
		return t, fmt.Errorf("%d variables, at most %d allowed", len(t.Vars), maxVars)
	}
	return t, nil
}

func checkVarName(name string) error {
	if name == "" || len(name) > maxVarNameLen {
		return fmt.Errorf("variable name must be 1-%d characters", maxVarNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if letter || i > 0 && (c >= '0' && c <= '9' || c == '_') {
			continue
		}
		return fmt.Errorf("variable name %q must match [a-zA-Z][a-zA-Z0-9_]*", name)
	}
	return nil
}

// checkLiteral allows unreserved characters, percent signs and the
// sub-delimiters Envoy accepts in literals; braces, '*', '?' and '#' are out.
func checkLiteral(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~%!$&'()+,;:@=", c) >= 0:
		default:
			return fmt.Errorf("character %q is not allowed in a literal", c)
		}
	}
	return nil
}

// MatchKey is the template with variable names erased: two templates with the
// same key match exactly the same paths.
func (t Template) MatchKey() string {
	var b strings.Builder
	for _, s := range t.Segments {
		b.WriteByte('/')
		switch s.Kind {
		case Literal:
			b.WriteString(s.Value)
		case Var:
			b.WriteString("{}")
		case Glob:
			b.WriteString("**")
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// MoreSpecific reports whether t should be tried before u: at the first
// differing position a literal beats a variable beats a glob, and a longer
// template beats a shorter one it extends.
func (t Template) MoreSpecific(u Template) bool {
	for i := 0; i < len(t.Segments) && i < len(u.Segments); i++ {
		a, b := t.Segments[i], u.Segments[i]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
	}
	// One extends the other. The longer goes first, unless what extends it
	// is a glob: "/a/**" also matches "/a/", so "/a" must be tried first.
	switch {
	case len(t.Segments) > len(u.Segments):
		return t.Segments[len(u.Segments)].Kind != Glob
	case len(t.Segments) < len(u.Segments):
		return u.Segments[len(t.Segments)].Kind == Glob
	}
	return false
}

// Match reports whether path (no query) matches t the way Envoy's matcher
// does, returning the captured variables. The authz server uses it to hand
// path parameters to policy.
func (t Template) Match(path string) (map[string]string, bool) {
	if len(t.Segments) == 0 {
		return nil, path == "/"
	}
	rest := path
	var params map[string]string
	for _, s := range t.Segments {
		// Every segment, a glob included, follows a literal slash.
		if rest == "" || rest[0] != '/' {
			return nil, false
		}
		rest = rest[1:]
		if s.Kind == Glob {
			return params, true
		}
		seg := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j:]
		} else {
			rest = ""
		}
		if seg == "" {
			return nil, false
		}
		switch s.Kind {
		case Literal:
			if seg != s.Value {
				return nil, false
			}
		case Var:
			if s.Value != "" {
				if params == nil {
					params = make(map[string]string, len(t.Vars))
				}
				params[s.Value] = seg
			}
		}
	}
	return params, rest == ""
}
