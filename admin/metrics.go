// Package admin is the operator's side door: a listener (loopback by
// default) with /healthz, /readyz and Prometheus /metrics.
package admin

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the proxy's Prometheus collectors. It implements
// proxy.Observer; the health checker and the certificate feed it too.
type Metrics struct {
	Registry *prometheus.Registry

	handshakes        prometheus.Counter
	handshakeFailures *prometheus.CounterVec
	sessions          *prometheus.CounterVec
	bytes             *prometheus.CounterVec
	duration          prometheus.Histogram
	refused           prometheus.Counter
	backendUp         *prometheus.GaugeVec
	backendChanged    *prometheus.GaugeVec
	transitions       *prometheus.CounterVec
	checkDuration     *prometheus.HistogramVec
	authRefusals      *prometheus.CounterVec
	clientLimited     *prometheus.CounterVec
	acmeOrders        *prometheus.CounterVec
	poolRefused       prometheus.Counter
}

// Gauges read at scrape time.
type Gauges struct {
	OpenSessions      func() float64
	ParkedDirections  func() float64
	CertificateExpiry func() float64 // unix seconds
	// MaxConnections is the effective MAX_CONNECTIONS (set, or from the
	// open-file limit).
	MaxConnections func() float64
	// PoolRuntimes counts the pool's runtimes by state (free, busy,
	// grace, down); nil without BACKEND_POOL.
	PoolRuntimes func() map[string]int
	// DrainingSessions counts the sessions still open in the process an
	// upgrade in place took over from.
	DrainingSessions func() float64
}

const ns = "cloudxr_wss_proxy"

// NewMetrics registers every collector on a fresh registry (with the Go and
// process collectors, as client_golang's default registry has); Watch adds
// the gauges read from the parts that exist after it.
func NewMetrics(version string) *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.handshakes = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "tls_handshakes_total",
		Help: "TLS handshakes completed."})
	m.handshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tls_handshake_failures_total",
		Help: "TLS handshakes that failed, by class (client rejected our certificate, protocol mismatch, not TLS, timeout, ...)."}, []string{"class"})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "sessions_total",
		Help: "Sessions (connections past the TLS handshake) ended, by outcome."}, []string{"outcome"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "bytes_total",
		Help: "Bytes relayed, by direction, counted when a session ends."}, []string{"direction"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "session_duration_seconds",
		Help:    "How long sessions lasted.",
		Buckets: []float64{0.01, 0.1, 1, 10, 60, 300, 900, 1800, 3600, 7200, 14400}})
	m.refused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "connections_refused_total",
		Help: "Connections refused because MAX_CONNECTIONS was reached."})
	m.backendUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "backend_up",
		Help: "1 when the health checks consider the CloudXR runtime up; one series per checked backend."}, []string{"backend"})
	m.backendChanged = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "backend_last_change_timestamp_seconds",
		Help: "When a checked backend last changed state (unix time): with backend_up, how long it has been up or down."}, []string{"backend"})
	m.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "backend_transitions_total",
		Help: "Backend state changes, by backend and the state entered."}, []string{"backend", "to"})
	m.checkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "health_check_duration_seconds",
		Help: "Duration of backend health checks (a connect and, with HEALTH_CHECK_MODE=http, a plain HTTP request).", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9)}, []string{"result"})
	m.authRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "auth_refusals_total",
		Help: "Credentials refused (401), by why: missing, expired, wrong audience, bad signature, ..."}, []string{"why"})
	m.clientLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "client_limited_total",
		Help: "Connections or requests refused by a per-client limit, by limit."}, []string{"limit"})
	m.acmeOrders = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "acme_orders_total",
		Help: "Certificate orders to the ACME CA (CERT_MODE=acme), by result: obtained, renewed, failed."}, []string{"result"})
	m.poolRefused = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "pool_claims_refused_total",
		Help: "Sessions refused a runtime by the pool (BACKEND_POOL): every runtime in use, kept for a user's reconnect, or down, or the claims unreachable (503)."})
	for _, c := range []prometheus.Collector{m.handshakes, m.handshakeFailures, m.sessions, m.bytes, m.duration,
		m.refused, m.backendUp, m.backendChanged, m.transitions, m.checkDuration, m.authRefusals, m.clientLimited, m.acmeOrders, m.poolRefused} {
		f(c)
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels say what is running.", ConstLabels: prometheus.Labels{"version": version}},
		func() float64 { return 1 }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Watch registers the gauges read at scrape time; call it once.
func (m *Metrics) Watch(g Gauges) {
	f := func(c prometheus.Collector) { m.Registry.MustRegister(c) }
	if g.OpenSessions != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "sessions_open",
			Help: "Client connections open now."}, g.OpenSessions))
	}
	if g.ParkedDirections != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "parked_directions",
			Help: "Tunnel directions waiting without a goroutine (quiet sessions)."}, g.ParkedDirections))
	}
	if g.CertificateExpiry != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "certificate_expiry_timestamp_seconds",
			Help: "When the served certificate expires (unix time)."}, g.CertificateExpiry))
	}
	if g.MaxConnections != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "max_connections",
			Help: "The most client connections the proxy holds at once (MAX_CONNECTIONS, or derived from the open-file limit)."}, g.MaxConnections))
	}
	if g.DrainingSessions != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "sessions_draining",
			Help: "Sessions still open in the process this one took over from (SIGHUP, an upgrade in place): they finish there, within UPGRADE_DRAIN. Add it to sessions_open for everyone streaming."}, g.DrainingSessions))
	}
	if g.PoolRuntimes != nil {
		f(poolCollector(g.PoolRuntimes))
	}
}

// poolStates are the states pool_runtimes always reports, zero or not.
var poolStates = []string{"free", "busy", "grace", "down"}

var poolRuntimesDesc = prometheus.NewDesc(ns+"_pool_runtimes", "Runtimes in the pool (BACKEND_POOL) by state: free, busy (a session holds it), grace (its last user may take it back), down.", []string{"state"}, nil)

// poolCollector reports pool_runtimes, read once per scrape.
type poolCollector func() map[string]int

func (poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- poolRuntimesDesc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	n := c()
	for _, st := range poolStates {
		ch <- prometheus.MustNewConstMetric(poolRuntimesDesc, prometheus.GaugeValue, float64(n[st]), st)
	}
}

// PoolRefused implements proxy.Observer.
func (m *Metrics) PoolRefused() { m.poolRefused.Inc() }

// HandshakeSucceeded implements proxy.Observer.
func (m *Metrics) HandshakeSucceeded() { m.handshakes.Inc() }

// HandshakeFailed implements proxy.Observer.
func (m *Metrics) HandshakeFailed(class string) { m.handshakeFailures.WithLabelValues(class).Inc() }

// SessionEnded implements proxy.Observer.
func (m *Metrics) SessionEnded(outcome string, up, down int64, took time.Duration) {
	m.sessions.WithLabelValues(outcome).Inc()
	m.bytes.WithLabelValues("client_to_backend").Add(float64(up))
	m.bytes.WithLabelValues("backend_to_client").Add(float64(down))
	m.duration.Observe(took.Seconds())
}

// ConnectionRefused implements proxy.Observer.
func (m *Metrics) ConnectionRefused() { m.refused.Inc() }

// AuthRefused implements proxy.Observer.
func (m *Metrics) AuthRefused(why string) { m.authRefusals.WithLabelValues(why).Inc() }

// ACMEOrder counts an ACME order's result.
func (m *Metrics) ACMEOrder(result string) { m.acmeOrders.WithLabelValues(result).Inc() }

// ClientLimited implements proxy.Observer.
func (m *Metrics) ClientLimited(limit string) { m.clientLimited.WithLabelValues(limit).Inc() }

// BackendState records a checked backend's state change ("up", "down").
func (m *Metrics) BackendState(backend, state string) {
	m.transitions.WithLabelValues(backend, state).Inc()
	m.backendChanged.WithLabelValues(backend).SetToCurrentTime()
	if state == "up" {
		m.backendUp.WithLabelValues(backend).Set(1)
	} else {
		m.backendUp.WithLabelValues(backend).Set(0)
	}
}

// BackendGone forgets a runtime that left the pool: its backend_up series
// goes (its transitions stay counted).
func (m *Metrics) BackendGone(backend string) {
	m.backendUp.DeleteLabelValues(backend)
	m.backendChanged.DeleteLabelValues(backend)
}

// HealthCheck records one check.
func (m *Metrics) HealthCheck(ok bool, took time.Duration) {
	result := "failed"
	if ok {
		result = "ok"
	}
	m.checkDuration.WithLabelValues(result).Observe(took.Seconds())
}
