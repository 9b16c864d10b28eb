package authz

import (
	"context"
	"net"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waooaw/policygateway/xds/translate"
)

func extProcClient(t *testing.T) extprocv3.ExternalProcessorClient {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, NewExtProc(quiet))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///buf", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return extprocv3.NewExternalProcessorClient(conn)
}

// The stream starts with response headers (request headers are skipped).
func TestExtProcSetsCorrelationID(t *testing.T) {
	meta := func(corr string) *corev3.Metadata {
		if corr == "" {
			return nil
		}
		s, _ := structpb.NewStruct(map[string]any{"correlation_id": corr, "decision": "deny"})
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{translate.ExtAuthzMetadataNamespace: s}}
	}
	tests := []struct {
		name       string
		authzCorr  string
		respHeader string // x-correlation-id already on the response
		wantSet    string // "" = must not set; "*" = any generated id
	}{
		{name: "authz denial: the decision's id is added", authzCorr: "corr-7", wantSet: "corr-7"},
		{name: "catch-all 404 without authz: an id is generated", wantSet: "*"},
		{name: "response already carries one: left alone", authzCorr: "corr-7", respHeader: "corr-7", wantSet: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := extProcClient(t).Process(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			hs := []*corev3.HeaderValue{{Key: ":status", RawValue: []byte("403")}}
			if tc.respHeader != "" {
				hs = append(hs, &corev3.HeaderValue{Key: HeaderCorrelationID, RawValue: []byte(tc.respHeader)})
			}
			err = stream.Send(&extprocv3.ProcessingRequest{
				Request:         &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}}},
				MetadataContext: meta(tc.authzCorr),
			})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			rh := resp.GetResponseHeaders()
			if rh == nil {
				t.Fatalf("answered %T, want response headers", resp.Response)
			}
			var got string
			for _, h := range rh.GetResponse().GetHeaderMutation().GetSetHeaders() {
				if h.Header.Key == HeaderCorrelationID {
					got = string(h.Header.RawValue)
				}
			}
			switch {
			case tc.wantSet == "" && got != "":
				t.Errorf("set %q on a response that had one", got)
			case tc.wantSet == "*" && !wellFormedID(got):
				t.Errorf("generated id %q", got)
			case tc.wantSet != "" && tc.wantSet != "*" && got != tc.wantSet:
				t.Errorf("set %q, want %q", got, tc.wantSet)
			}
			stream.CloseSend()
		})
	}
}
