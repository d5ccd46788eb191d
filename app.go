package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/acme"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/admin"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/portal"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/proxy"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/upgrade"
)

// app is the proxy's parts, wired: built by build, opened by listen, run
// by serve.
type app struct {
	stop     <-chan string  // the host's stop requests (a Windows service's), or nil
	sigs     chan os.Signal // SIGTERM, SIGINT and SIGHUP, caught from the start
	cfg      *config.Config
	maxConns int // MAX_CONNECTIONS, or from the open-file limit
	log      *zap.Logger
	certs    *certs.Manager // the files in CERT_DIR; nil with CERT_MODE=acme
	acme     *acme.Manager  // CERT_MODE=acme
	limits   *limit.Table   // per-client limits; nil when all are off
	httpLn   net.Listener   // ACME_HTTP_PORT
	httpSrv  *http.Server
	metrics  *admin.Metrics
	checker  *health.Checker            // the single backend; nil when routing by path
	routed   map[string]*health.Checker // routed runtimes on ROUTE_CHECK
	pool     *poolParts                 // BACKEND_POOL; nil when off
	auth     auth.Verifier              // nil: authentication off
	tokens   *auth.Static               // the tokens file's verifier, to reload on SIGHUP
	oidc     *auth.OIDC                 // the provider's verifier, run in the background
	srv      *proxy.Server
	ln       net.Listener
	admin    *admin.Server
	adminLn  net.Listener

	handover         *upgrade.Handover // upgrades in place; nil where not supported
	previousSessions atomic.Int64      // sessions still open in the process this one took over from
}

// logStart logs every effective setting once.
func logStart(cfg *config.Config, maxConns int, log *zap.Logger) {
	fields := []zap.Field{zap.String("version", fullVersion()), zap.Int("pid", os.Getpid()), zap.Int("effective_max_connections", maxConns)}
	for _, s := range cfg.Effective() {
		fields = append(fields, zap.String(s.Key, s.Value))
	}
	log.Info("starting", fields...)
}

// build makes the parts in the order they need each other: certificate,
// metrics, health checks, portal, proxy; then subscribes each to what it
// watches.
func build(cfg *config.Config, maxConns int, log *zap.Logger) (*app, error) {
	a := &app{cfg: cfg, maxConns: maxConns, log: log, metrics: admin.NewMetrics(fullVersion())}
	hostname, _ := os.Hostname()
	if err := a.newCertificates(hostname); err != nil {
		return nil, usageError{err}
	}
	a.newCheckers()
	if err := a.newPool(); err != nil {
		return nil, usageError{err}
	}
	if err := a.newAuth(); err != nil {
		return nil, usageError{err}
	}
	site, err := a.newPortal()
	if err != nil {
		return nil, usageError{fmt.Errorf("WEB_ROOT: %w", err)}
	}
	a.srv = a.newProxy(site)
	a.wire()
	return a, nil
}

// newCheckers makes the health checks: the single backend's, or, routing
// by path, one for each runtime on ROUTE_CHECK (every other one is checked
// on use). A pool's runtimes get theirs as they are discovered.
func (a *app) newCheckers() {
	cfg := a.cfg
	if !cfg.RouteByPath && cfg.Pool() == nil {
		a.checker = a.newChecker(cfg.BackendAddr())
	}
	a.routed = map[string]*health.Checker{}
	for _, addr := range cfg.RouteChecks() {
		a.routed[addr] = a.newChecker(addr)
	}
}

// newChecker makes one runtime's health checker, as the settings say.
func (a *app) newChecker(addr string) *health.Checker {
	cfg := a.cfg
	var probe health.Probe
	if cfg.HealthCheckMode == "http" {
		probe = health.HTTP
	}
	return health.New(health.Options{
		Probe:    probe,
		Addr:     addr,
		Interval: cfg.HealthCheckInterval.D(),
		Timeout:  min(cfg.ConnectTimeout.D(), cfg.HealthCheckInterval.D()),
		Rise:     cfg.HealthCheckRise,
		Fall:     cfg.HealthCheckFall,
		Logger:   a.log,
		OnCheck:  a.metrics.HealthCheck,
	})
}

// newAuth makes the verifier the settings ask for: a tokens file or an
// OpenID provider (config.Validate allows one).
func (a *app) newAuth() error {
	cfg := a.cfg
	switch {
	case cfg.AuthTokensFile != "":
		s, err := auth.NewStatic(cfg.AuthTokensFile, a.log)
		if err != nil {
			return fmt.Errorf("AUTH_TOKENS_FILE: %w", err)
		}
		a.tokens, a.auth = s, s
		a.log.Info("authentication on: every session needs a token listed in the tokens file", zap.String("path", cfg.AuthTokensFile),
			zap.Int("tokens", s.Count()), zap.String("query_parameter", cfg.AuthQueryParam), zap.String("cookie", cfg.AuthCookie))
	case cfg.AuthOIDCIssuer != "" || cfg.AuthJWKSURL != "":
		a.oidc = auth.NewOIDC(auth.OIDCOptions{
			Issuer:   cfg.AuthOIDCIssuer,
			JWKSURL:  cfg.AuthJWKSURL,
			Audience: cfg.AuthAudience,
			Claims:   cfg.RequiredClaims(),
			Logger:   a.log,
		})
		a.auth = a.oidc
		a.log.Info("authentication on: every session needs a JWT signed by the identity provider", zap.String("issuer", cfg.AuthOIDCIssuer),
			zap.String("jwks_url", cfg.AuthJWKSURL), zap.String("audience", cfg.AuthAudience), zap.Strings("required_claims", cfg.AuthRequiredClaims),
			zap.String("query_parameter", cfg.AuthQueryParam), zap.String("cookie", cfg.AuthCookie))
		if cfg.AuthOIDCIssuer == "" {
			a.log.Warn("authentication: AUTH_JWKS_URL without AUTH_OIDC_ISSUER checks signatures and the audience, not who issued the token")
		}
	default:
		a.log.Info("authentication off: whoever reaches PROXY_PORT can open sessions to the runtime (see AUTH_TOKENS_FILE, AUTH_OIDC_ISSUER)")
	}
	return nil
}

func (a *app) newPortal() (*portal.Portal, error) {
	o := portal.Options{
		Private:     a.auth != nil,
		TokenParam:  a.cfg.AuthQueryParam,
		TokenCookie: a.cfg.AuthCookie,
		Version:     fullVersion(),
		Certificate: a.currentCert,
		WebRoot:     a.cfg.WebRoot,
		WebPath:     a.cfg.WebPath,
	}
	switch {
	case a.checker != nil:
		o.Backend = func() portal.Backend { return backendStatus(a.cfg.BackendAddr(), a.checker) }
	case a.pool != nil:
		o.Pool = a.poolStatus
	default:
		o.Routes = func() []portal.Backend {
			var out []portal.Backend
			for _, addr := range a.cfg.RouteChecks() {
				out = append(out, backendStatus(addr, a.routed[addr]))
			}
			return out
		}
	}
	return portal.New(o)
}

func backendStatus(addr string, c *health.Checker) portal.Backend {
	st, since := c.State()
	b := portal.Backend{Address: addr, Up: st == health.Up, State: st.String(), Since: since}
	if p := c.Problem(); p != nil && st != health.Up {
		b.Problem = p.Error()
	}
	return b
}

func (a *app) newProxy(site *portal.Portal) *proxy.Server {
	cfg := a.cfg
	o := proxy.Options{
		Backend:           cfg.BackendAddr(),
		GetCertificate:    a.getCertificate,
		CheckName:         a.checkName(),
		ACMEChallenges:    a.acme != nil && cfg.ACMEDNSProvider == "",
		Local:             site,
		TLSSessionTickets: cfg.TLSSessionTickets,
		TLSPostQuantum:    cfg.TLSPostQuantum,
		Health:            a.checker,
		RouteHealth:       a.routed,
		AllowedOrigins:    cfg.Origins(),
		ConnectTimeout:    cfg.ConnectTimeout.D(),
		TunnelTimeout:     cfg.TunnelTimeout.D(),
		HandshakeTimeout:  cfg.HandshakeTimeout.D(),
		HeadTimeout:       cfg.HeadTimeout.D(),
		ResponseTimeout:   cfg.ResponseTimeout.D(),
		MaxConnections:    a.maxConns,
		ProxyProtocol:     cfg.ProxyProtocol,
		ReleaseIdleMemory: true,
		Observer:          a.metrics,
		Logger:            a.log,
		Auth:              a.auth,
		AuthQueryParam:    cfg.AuthQueryParam,
		AuthCookie:        cfg.AuthCookie,
		NativeBackendPort: int(cfg.NativeBackendPort),
	}
	if lo, on := cfg.ClientLimits(); on {
		a.limits = limit.New(lo)
		o.Limits = a.limits
	}
	if r := cfg.Runtimes(); r != nil {
		o.Router = proxy.NewRouter(r, int(cfg.NativeBackendPort))
	}
	if a.pool != nil {
		o.Pool, o.PoolHealth = a.pool.pool, a.pool.checker
	}
	return proxy.New(o)
}

// wire subscribes the proxy and the metrics to the health checks, and the
// metrics' gauges to the proxy and the certificate.
func (a *app) wire() {
	if a.checker != nil {
		a.watchChecker(a.cfg.BackendAddr(), a.checker)
	}
	for addr, c := range a.routed {
		a.watchChecker(addr, c)
	}
	g := admin.Gauges{
		OpenSessions:      func() float64 { return float64(a.srv.ActiveConnections()) },
		ParkedDirections:  func() float64 { return float64(a.srv.ParkedDirections()) },
		CertificateExpiry: a.certificateExpiry,
		MaxConnections:    func() float64 { return float64(a.maxConns) },
		DrainingSessions:  func() float64 { return float64(a.previousSessions.Load()) },
	}
	if a.pool != nil {
		g.PoolRuntimes = a.poolCounts
	}
	a.metrics.Watch(g)
	a.admin = admin.NewServer(a.metrics, a.ready, a.cfg.AdminPprof)
}

// watchChecker subscribes the metrics and the proxy to a checker.
func (a *app) watchChecker(addr string, c *health.Checker) {
	c.OnChange(func(s health.State, reason string) {
		a.metrics.BackendState(addr, s.String())
		a.srv.BackendChanged(addr, s, reason)
	})
}

// ready is /readyz: listening with a certificate is given once the admin
// listener serves; what is left is the backend. Routing by path, readiness
// is the proxy's own: one runtime down must not take it out of its Service.
func (a *app) ready() (bool, string) {
	if ok, why := a.certificateReady(); !ok {
		return false, why
	}
	if a.auth != nil {
		if ok, why := a.auth.Ready(); !ok {
			return false, why
		}
	}
	if a.pool != nil {
		// Like routing by path: the proxy is ready whatever its runtimes
		// do; a full or down pool answers 503 itself.
		up := 0
		runtimes := a.pool.pool.Runtimes()
		for _, r := range runtimes {
			if a.pool.up(r) {
				up++
			}
		}
		return true, fmt.Sprintf("runtime pool; %d of %d runtimes up (not part of readiness)", up, len(runtimes))
	}
	if a.checker == nil {
		up := 0
		for _, c := range a.routed {
			if st, _ := c.State(); st == health.Up {
				up++
			}
		}
		return true, fmt.Sprintf("routing by path; %d of %d checked runtimes up (not part of readiness)", up, len(a.routed))
	}
	if st, _ := a.checker.State(); st != health.Up {
		return false, "backend " + st.String()
	}
	return true, ""
}

// maxConnections is MAX_CONNECTIONS, or sized to the open-file limit: each
// session holds two descriptors (client and backend), and some are kept for
// the listener, health checks and logs.
func maxConnections(cfg *config.Config) int {
	if cfg.MaxConnections > 0 {
		return cfg.MaxConnections
	}
	lim, ok := openFileLimit()
	if !ok {
		return 10000
	}
	return max(lim-64, 2) / 2
}
