package policy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// leafPaths lists every settable leaf of Input by field index path, so the
// tests below notice a field added to Input without touching this file.
func leafPaths(t reflect.Type, prefix []int) [][]int {
	var out [][]int
	for i := range t.NumField() {
		p := append(append([]int(nil), prefix...), i)
		if f := t.Field(i); f.Type.Kind() == reflect.Struct {
			out = append(out, leafPaths(f.Type, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

func leafName(path []int) string {
	t := reflect.TypeFor[Input]()
	name := ""
	for _, i := range path {
		f := t.Field(i)
		name += "." + f.Name
		t = f.Type
	}
	return name
}

// setLeaf gives the leaf a non-zero value derived from n, so that distinct
// leaves (and distinct n) get distinct values.
func setLeaf(in *Input, path []int, n int) {
	v := reflect.ValueOf(in).Elem().FieldByIndex(path)
	s := fmt.Sprintf("v%d", n)
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int:
		v.SetInt(int64(n + 1))
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{s, s + "b"}))
	case reflect.Map:
		v.Set(reflect.ValueOf(map[string]string{s: s + "x"}))
	default:
		panic(fmt.Sprintf("setLeaf: unhandled kind %s at %s; teach appendKey and astValue about it", v.Kind(), leafName(path)))
	}
}

func key(in *Input) string { return string(appendKey(nil, in)) }

func TestCacheKeyCoversEveryField(t *testing.T) {
	seen := map[string]string{key(&Input{}): "zero input"}
	for _, p := range leafPaths(reflect.TypeFor[Input](), nil) {
		var in Input
		setLeaf(&in, p, 0)
		k := key(&in)
		if prev, dup := seen[k]; dup {
			t.Errorf("setting %s gives the same cache key as %s", leafName(p), prev)
		}
		seen[k] = leafName(p)
	}
}

func TestCacheKeyIsUnambiguous(t *testing.T) {
	pairs := []struct {
		name string
		a, b Input
	}{
		{"string boundary", Input{User: User{ID: "ab", Email: "c"}}, Input{User: User{ID: "a", Email: "bc"}}},
		{"slice boundary", Input{User: User{Roles: []string{"ab"}}}, Input{User: User{Roles: []string{"a", "b"}}}},
		{"nil vs empty roles", Input{User: User{Roles: nil}}, Input{User: User{Roles: []string{}}}},
		{"nil vs empty params", Input{Request: Request{Params: nil}}, Input{Request: Request{Params: map[string]string{}}}},
		{"param key vs value", Input{Request: Request{Params: map[string]string{"a": "b"}}}, Input{Request: Request{Params: map[string]string{"b": "a"}}}},
		{"negative int", Input{Route: Route{RateLimitPerHour: -1}}, Input{Route: Route{RateLimitPerHour: 1}}},
	}
	for _, p := range pairs {
		if key(&p.a) == key(&p.b) {
			t.Errorf("%s: distinct inputs share a cache key", p.name)
		}
	}
}

func TestCacheKeyIgnoresMapOrder(t *testing.T) {
	for _, n := range []int{3, maxSortedParams + 4} {
		params := map[string]string{}
		for i := range n {
			params[fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
		}
		want := key(&Input{Request: Request{Params: params}})
		for range 20 {
			clone := map[string]string{}
			for k, v := range params {
				clone[k] = v
			}
			if got := key(&Input{Request: Request{Params: clone}}); got != want {
				t.Fatalf("%d params: key depends on map iteration order", n)
			}
		}
	}
}

// astValue must be exactly what a remote OPA builds from the JSON body, or
// the engine and the remote would disagree on the same input.
func TestASTValueMatchesJSON(t *testing.T) {
	var full Input
	for i, p := range leafPaths(reflect.TypeFor[Input](), nil) {
		setLeaf(&full, p, i)
	}
	inputs := map[string]*Input{
		"zero":  {},
		"full":  &full,
		"seed":  request("cp_execute_agent", "trial_customer", map[string]string{"id": "abc123"}),
		"empty": {User: User{Roles: []string{}}, Route: Route{MiddlewareStack: []string{}}, Request: Request{Params: map[string]string{}}},
	}
	for name, in := range inputs {
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := util.UnmarshalJSON(raw, &generic); err != nil {
			t.Fatal(err)
		}
		want, err := ast.InterfaceToValue(generic)
		if err != nil {
			t.Fatal(err)
		}
		if got := in.astValue(); got.Compare(want) != 0 {
			t.Errorf("%s: astValue\n  %v\nJSON\n  %v", name, got, want)
		}
	}
}
