package authz

import (
	"context"
	"log/slog"
	"time"

	"github.com/waooaw/policygateway/authz/problem"
)

// AuditRecord is the decision half of a request's audit record; ext_proc
// completes it with the response status and duration.
type AuditRecord struct {
	Time          time.Time
	CorrelationID string
	CausationID   string
	UserID        string
	AgentID       string
	CustomerID    string
	RouteID       int64
	RouteVersion  int
	Permission    string
	Method        string
	Path          string
	Decision      string // allow | deny
	ErrorCode     problem.Code
	TrialMode     bool
	Sandbox       bool
	Degraded      bool
	Reason        string // X-Action-Reason of an admin force action
}

// AuditSink receives decision records. It must not block the request path.
type AuditSink interface {
	Decision(ctx context.Context, rec *AuditRecord)
}

// LogAudit writes records as structured log lines. It is the embedded
// default until the durable PostgreSQL sink (hash-chained audit_logs) lands.
type LogAudit struct{ Logger *slog.Logger }

func (l LogAudit) Decision(ctx context.Context, rec *AuditRecord) {
	l.Logger.LogAttrs(ctx, slog.LevelInfo, "audit decision",
		slog.String("component", "audit"),
		slog.String("correlation_id", rec.CorrelationID),
		slog.String("causation_id", rec.CausationID),
		slog.String("decision", rec.Decision),
		slog.String("error_code", string(rec.ErrorCode)),
		slog.String("user_id", rec.UserID),
		slog.String("agent_id", rec.AgentID),
		slog.Int64("route_id", rec.RouteID),
		slog.String("permission", rec.Permission),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.Bool("sandbox", rec.Sandbox),
		slog.Bool("degraded", rec.Degraded),
		slog.String("reason", rec.Reason),
	)
}

// auditRecord copies what the pipeline learned; code is "" on allow.
func (r *request) auditRecord(code problem.Code, now time.Time) *AuditRecord {
	rec := &AuditRecord{
		Time: now, CorrelationID: r.correlationID, CausationID: r.causationID,
		Method: r.method, Path: r.path, Decision: "allow", ErrorCode: code,
		Degraded: r.degraded, Reason: r.reason,
	}
	if code != "" {
		rec.Decision = "deny"
	}
	if r.route != nil {
		rec.RouteID, rec.RouteVersion = r.route.ID, r.route.Version
	}
	if c := r.claims; c != nil {
		rec.UserID, rec.AgentID, rec.CustomerID, rec.TrialMode = c.UserID, c.AgentID, c.CustomerID, c.TrialMode
	}
	if d := r.decision; d != nil {
		rec.Permission = d.Permission
		rec.Sandbox = code == "" && d.Sandbox && r.route != nil && r.route.HasSandbox
	}
	return rec
}
