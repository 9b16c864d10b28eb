package authz

import (
	"errors"
	"io"
	"log/slog"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waooaw/policygateway/xds/translate"
)

var _ extprocv3.ExternalProcessorServer = (*ExtProc)(nil)

// ExtProc sees every response Envoy sends, ext_authz's own denials and the
// catch-all 404 included, and logs the response half of the audit record
// (status, duration) under the decision's correlation id. Envoy runs the
// filter in observability mode, so answers are acknowledgements only; error
// masking by role and cost reconciliation will need blocking mode.
type ExtProc struct {
	log *slog.Logger
}

func NewExtProc(log *slog.Logger) *ExtProc {
	return &ExtProc{log: log.With("component", "ext_proc")}
}

// Process answers each message with the response of the same phase. The
// stream may start with response headers: request headers are not sent.
func (p *ExtProc) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &extprocv3.ProcessingResponse{}
		switch v := req.Request.(type) {
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: p.responseHeaders(req, v.ResponseHeaders)}
		case *extprocv3.ProcessingRequest_RequestHeaders:
			resp.Response = &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}
		case *extprocv3.ProcessingRequest_RequestBody:
			resp.Response = &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}
		case *extprocv3.ProcessingRequest_ResponseBody:
			resp.Response = &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}
		case *extprocv3.ProcessingRequest_RequestTrailers:
			resp.Response = &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			resp.Response = &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}
		default:
			return status.Errorf(codes.InvalidArgument, "unexpected ext_proc message %T", v)
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (p *ExtProc) responseHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) *extprocv3.HeadersResponse {
	authzMeta := req.GetMetadataContext().GetFilterMetadata()[translate.ExtAuthzMetadataNamespace]
	status, correlationID := "", stringField(authzMeta, "correlation_id")
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.GetKey() {
		case ":status":
			status = headerValue(hv)
		case HeaderCorrelationID:
			if correlationID == "" {
				correlationID = headerValue(hv)
			}
		}
	}
	attrs := req.GetAttributes()["envoy.filters.http.ext_proc"].GetFields()
	var duration time.Duration
	if t := attrs["request.time"].GetStringValue(); t != "" {
		if start, err := time.Parse(time.RFC3339Nano, t); err == nil {
			duration = time.Since(start)
		}
	}
	p.log.Info("audit response",
		"correlation_id", correlationID,
		"decision", stringField(authzMeta, "decision"),
		"error_code", stringField(authzMeta, "error_code"),
		"status", status,
		"route", attrs["xds.route_name"].GetStringValue(),
		"method", attrs["request.method"].GetStringValue(),
		"path", attrs["request.url_path"].GetStringValue(),
		"duration_ms", float64(duration.Microseconds())/1000)
	return &extprocv3.HeadersResponse{}
}

func stringField(s *structpb.Struct, key string) string {
	return s.GetFields()[key].GetStringValue()
}

// headerValue reads a header from ext_proc, which may use raw_value.
func headerValue(h *corev3.HeaderValue) string {
	if v := h.GetValue(); v != "" {
		return v
	}
	return string(h.GetRawValue())
}
