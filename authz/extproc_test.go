package authz

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waooaw/policygateway/xds/translate"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func extProcClient(t *testing.T, log *slog.Logger) extprocv3.ExternalProcessorClient {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, NewExtProc(log))
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

// The stream starts with response headers (request headers are skipped);
// the record is logged under the authz decision's correlation id.
func TestExtProcCompletesTheAuditRecord(t *testing.T) {
	var logs syncBuffer
	client := extProcClient(t, slog.New(slog.NewJSONHandler(&logs, nil)))
	meta, _ := structpb.NewStruct(map[string]any{"correlation_id": "corr-7", "decision": "deny", "error_code": "RBAC_DENIED"})
	attrs, _ := structpb.NewStruct(map[string]any{"xds.route_name": "route-9", "request.method": "POST", "request.url_path": "/api/v1/agents"})
	stream, err := client.Process(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{
			Headers: []*corev3.HeaderValue{{Key: ":status", RawValue: []byte("403")}},
		}}},
		MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{translate.ExtAuthzMetadataNamespace: meta}},
		Attributes:      map[string]*structpb.Struct{"envoy.filters.http.ext_proc": attrs},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetResponseHeaders() == nil {
		t.Fatalf("answered %T, want response headers", resp.Response)
	}
	stream.CloseSend()
	for _, want := range []string{`"correlation_id":"corr-7"`, `"status":"403"`, `"error_code":"RBAC_DENIED"`, `"route":"route-9"`, `"path":"/api/v1/agents"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("audit log lacks %s: %s", want, logs.String())
		}
	}
}

// Every phase gets the matching answer, or Envoy would count a spurious message.
func TestExtProcAnswersEachPhase(t *testing.T) {
	client := extProcClient(t, quiet)
	tests := []struct {
		name string
		req  *extprocv3.ProcessingRequest
		ok   func(*extprocv3.ProcessingResponse) bool
	}{
		{"request headers", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestHeaders() != nil }},
		{"request body", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetRequestBody() != nil }},
		{"response body", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseBody() != nil }},
		{"response trailers", &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}},
			func(r *extprocv3.ProcessingResponse) bool { return r.GetResponseTrailers() != nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := client.Process(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(tc.req); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil || !tc.ok(resp) {
				t.Fatalf("got %v, %v", resp, err)
			}
			stream.CloseSend()
		})
	}
}
