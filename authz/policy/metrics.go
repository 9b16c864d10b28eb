package policy

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are always created so the code paths never branch on them; they
// are only registered when a Registerer is given.
type metrics struct {
	reloads      prometheus.Counter
	reloadErrors prometheus.Counter
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
}

// newMetrics labels cache counters with the evaluator so that an embedded
// engine and a remote client can share one registry.
func newMetrics(reg prometheus.Registerer, evaluator string) (*metrics, error) {
	labels := prometheus.Labels{"evaluator": evaluator}
	m := &metrics{
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_policy_reloads_total",
			Help: "Policy reloads that compiled and replaced the active policy.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gateway_policy_reload_errors_total",
			Help: "Policy reloads rejected (the previous policy kept serving).",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "gateway_policy_cache_hits_total",
			Help:        "Policy decisions answered from the decision cache.",
			ConstLabels: labels,
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "gateway_policy_cache_misses_total",
			Help:        "Policy decisions that required an evaluation.",
			ConstLabels: labels,
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if evaluator == evaluatorEngine {
		m.reloads, err = register(reg, m.reloads, err)
		m.reloadErrors, err = register(reg, m.reloadErrors, err)
	}
	m.cacheHits, err = register(reg, m.cacheHits, err)
	m.cacheMisses, err = register(reg, m.cacheMisses, err)
	return m, err
}

// register adopts an already registered identical counter, so that building
// a second evaluator on the same registry (a restart of a component in
// tests or in process) keeps counting instead of failing.
func register(reg prometheus.Registerer, c prometheus.Counter, prev error) (prometheus.Counter, error) {
	if prev != nil {
		return c, prev
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(prometheus.Counter); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("registering policy metrics: %w", err)
}

const (
	evaluatorEngine = "embedded"
	evaluatorRemote = "remote"
)
