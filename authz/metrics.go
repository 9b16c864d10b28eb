package authz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waooaw/policygateway/authz/problem"
)

// Metrics are the authz server's Prometheus series.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	allowed   prometheus.Counter
}

// NewMetrics registers on reg (nil: unregistered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_authz_decisions_total",
			Help: "ext_authz decisions by result and deny code.",
		}, []string{"result", "code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_authz_check_duration_seconds",
			Help:    "Time spent in the Check pipeline, excluding gRPC transport.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 16),
		}),
	}
	m.allowed = m.decisions.WithLabelValues("allow", "")
	if reg != nil {
		reg.MustRegister(m.decisions, m.latency)
	}
	return m
}

func (m *Metrics) observe(code problem.Code, d time.Duration) {
	if code == "" {
		m.allowed.Inc()
	} else {
		m.decisions.WithLabelValues("deny", string(code)).Inc()
	}
	m.latency.Observe(d.Seconds())
}
