package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/util"
)

func benchInput() *Input {
	return request("cp_execute_agent", "trial_customer", map[string]string{"id": "abc123"})
}

// The hot path: every Check after the first for the same caller and route.
func BenchmarkDecideCached(b *testing.B) {
	e := newTestEngine(b, EngineConfig{})
	ctx := context.Background()
	in := benchInput()
	if _, err := e.Decide(ctx, in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecideCachedParallel(b *testing.B) {
	e := newTestEngine(b, EngineConfig{})
	ctx := context.Background()
	inputs := make([]*Input, 64)
	for i := range inputs {
		inputs[i] = request("cp_get_agent", "paid_customer", map[string]string{"id": fmt.Sprint(i)})
		if _, err := e.Decide(ctx, inputs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := e.Decide(ctx, inputs[i%len(inputs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// A full evaluation per call: the first Check of a caller on a route, or
// every Check with the cache disabled.
func BenchmarkDecideUncached(b *testing.B) {
	e := newTestEngine(b, EngineConfig{CacheSize: -1})
	ctx := context.Background()
	var inputs []*Input
	for _, tc := range decisionCases() {
		inputs = append(inputs, tc.in)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := e.Decide(ctx, inputs[i%len(inputs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCacheKey(b *testing.B) {
	in := benchInput()
	var buf [keyBufSize]byte
	b.ReportAllocs()
	for b.Loop() {
		_ = appendKey(buf[:0], in)
	}
}

// The two ways to hand the input to OPA, measured on their own and inside a
// full evaluation, to justify building the AST by hand.
func BenchmarkInputConversion(b *testing.B) {
	in := benchInput()
	b.Run("astValue", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = in.astValue()
		}
	})
	b.Run("json_roundtrip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, _ := json.Marshal(in)
			var generic any
			if err := util.UnmarshalJSON(raw, &generic); err != nil {
				b.Fatal(err)
			}
			if _, err := ast.InterfaceToValue(generic); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEvalInputStyles(b *testing.B) {
	e := newTestEngine(b, EngineConfig{CacheSize: -1})
	q := e.current.Load().query
	ctx := context.Background()
	in := benchInput()
	b.Run("EvalParsedInput(astValue)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Eval(ctx, rego.EvalParsedInput(in.astValue())); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EvalInput(struct)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Eval(ctx, rego.EvalInput(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
