package xds

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the control plane's Prometheus series.
type Metrics struct {
	syncs           *prometheus.CounterVec
	syncSeconds     prometheus.Histogram
	routes          prometheus.Gauge
	activeVersion   prometheus.Gauge
	rejectedRows    prometheus.Gauge
	rejectionsTotal *prometheus.CounterVec
	lastPublish     prometheus.Gauge
	nacks           prometheus.Counter
	streams         prometheus.Gauge
}

// NewMetrics registers the series on reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_xds_syncs_total",
			Help: "Route table syncs by result: published, unchanged or error (last good snapshot kept).",
		}, []string{"result"}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gateway_xds_sync_duration_seconds",
			Help:    "Time to load, validate, translate and publish the route table.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_xds_routes",
			Help: "Routes served in the current snapshot.",
		}),
		activeVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_xds_active_route_version",
			Help: "The blue/green route_version being served.",
		}),
		rejectedRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_xds_rejected_rows",
			Help: "Active rows of the active version that are rejected and not served.",
		}),
		rejectionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_xds_row_rejections_total",
			Help: "Distinct row rejections seen, by the field at fault.",
		}, []string{"field"}),
		lastPublish: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_xds_last_publish_timestamp_seconds",
			Help: "When the last new snapshot was published.",
		}),
		nacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_xds_nacks_total",
			Help: "Discovery requests in which Envoy rejected a pushed config. Should stay 0.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gateway_xds_streams",
			Help: "Open xDS streams (connected Envoys).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.syncSeconds, m.routes, m.activeVersion, m.rejectedRows, m.rejectionsTotal, m.lastPublish, m.nacks, m.streams)
	}
	return m
}
