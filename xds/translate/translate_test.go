package translate_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/waooaw/policygateway/xds"
	"github.com/waooaw/policygateway/xds/model"
	"github.com/waooaw/policygateway/xds/source"
	"github.com/waooaw/policygateway/xds/translate"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the current translator")

// Some inputs are read with the internal-URL mapping on, as gatewayd does
// with GATEWAY_USE_INTERNAL_URLS=true.
var internal = map[string]map[string]string{
	"seed_internal": {"cp": "http://127.0.0.1:8015", "pp": "http://127.0.0.1:8006", "plant": "http://127.0.0.1:8000", "sandbox": "http://127.0.0.1:8099"},
}

func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	want := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		for _, variant := range []string{name, name + "_internal"} {
			urls, ok := internal[variant]
			if variant != name && !ok {
				continue
			}
			want[variant+".json"] = true
			t.Run(variant, func(t *testing.T) {
				got := render(t, in, urls)
				golden := filepath.Join("testdata", "out", variant+".json")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				exp, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./xds/translate -update)", err)
				}
				if diff := cmp.Diff(string(exp), string(got)); diff != "" {
					t.Errorf("translation of %s differs from %s (-want +got):\n%s", in, golden, diff)
				}
			})
		}
	}
	// Stale goldens are deleted on -update and fail the test otherwise.
	outs, _ := filepath.Glob("testdata/out/*.json")
	for _, o := range outs {
		if !want[filepath.Base(o)] {
			if *update {
				os.Remove(o)
			} else {
				t.Errorf("stale golden file %s has no input", o)
			}
		}
	}
}

func render(t *testing.T, in string, internalURLs map[string]string) []byte {
	t.Helper()
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	rows, active, err := source.ParseFile(data)
	if err != nil {
		t.Fatal(err)
	}
	opts := model.Options{InternalURLs: map[string]*url.URL{}}
	for k, v := range internalURLs {
		u, _ := url.Parse(v)
		opts.InternalURLs[k] = u
	}
	m, rejected := model.Build(rows, active, opts)
	res, dropped, err := translate.Translate(m, translate.Options{})
	if err != nil {
		t.Fatalf("translate: %v", err)
	}
	if _, err := xds.NewSnapshot(res); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var reasons []string
	for _, r := range append(rejected, dropped...) {
		reasons = append(reasons, r.Error())
	}
	doc := map[string]any{"rejections": reasons}
	for key, msgs := range map[string][]proto.Message{
		"listeners": toMsgs(res.Listeners), "routes": toMsgs(res.Routes), "clusters": toMsgs(res.Clusters),
	} {
		var list []json.RawMessage
		for _, m := range msgs {
			b, err := protojson.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, b)
		}
		doc[key] = list
	}
	// protojson output is deliberately unstable in whitespace; re-encode.
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func toMsgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}
