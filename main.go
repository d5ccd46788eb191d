// Command cloudxr-wss-proxy terminates TLS for CloudXR.js and passes the
// WebSocket signaling of browsers and headsets to the CloudXR Runtime. It is
// a drop-in replacement for the HAProxy "wss-proxy" container: same
// variables, port and certificate paths. main only wires the packages.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/admin"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/health"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/logging"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/portal"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/proxy"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(os.Stderr, "cloudxr-wss-proxy: %s\n", line)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is bad input from the user: exit status 2, like flag parsing.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(args[1:])
	}
	cfg, err := config.Load(args, os.Environ(), os.Stdout, fullVersion())
	if errors.Is(err, config.ErrHelp) || errors.Is(err, config.ErrVersion) {
		return nil
	}
	if err != nil {
		return usageError{err}
	}
	// Settings that need more than the config package checks, before
	// anything (a certificate) is written.
	var origins *proxy.Origins
	if len(cfg.AllowedOrigins) > 0 {
		if origins, err = proxy.NewOrigins(cfg.AllowedOrigins); err != nil {
			return usageError{fmt.Errorf("invalid ALLOWED_ORIGINS: %w", err)}
		}
	}
	var router *proxy.Router
	if cfg.RouteByPath {
		if router, err = proxy.NewRouter(cfg.RouteAllow, int(cfg.BackendPort)); err != nil {
			return usageError{fmt.Errorf("invalid ROUTE_ALLOW: %w", err)}
		}
	}
	routeChecks := make([]string, 0, len(cfg.RouteCheck))
	for _, spec := range cfg.RouteCheck {
		addr, err := router.Target(spec)
		if err != nil {
			return usageError{fmt.Errorf("invalid ROUTE_CHECK: %w", err)}
		}
		if !slices.Contains(routeChecks, addr) { // "10.0.3.17" and "10.0.3.17:49100" are one runtime
			routeChecks = append(routeChecks, addr)
		}
	}
	log, err := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageError{err}
	}
	defer log.Sync()

	maxConns := cfg.MaxConnections
	if maxConns == 0 {
		maxConns = connectionsForFileLimit()
	}
	fields := []zap.Field{zap.String("version", fullVersion()), zap.Int("effective_max_connections", maxConns)}
	for _, s := range cfg.Effective() {
		fields = append(fields, zap.String(s.Key, s.Value))
	}
	log.Info("starting", fields...)

	hostname, _ := os.Hostname()
	certMgr, err := certs.NewManager(certs.Options{
		Dir:    cfg.CertDir,
		Names:  certs.WantedNames(hostname, certs.InterfaceIPs(), cfg.CertHostnames),
		Label:  hostname,
		Mode:   certs.Mode(cfg.CertMode),
		Logger: log,
	})
	if err != nil {
		return usageError{err}
	}

	ln, err := proxy.Listen("tcp", cfg.ListenAddr(), cfg.ClientKeepalive.D())
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}

	var srv *proxy.Server
	metrics := admin.NewMetrics(fullVersion(), admin.Gauges{
		OpenSessions:      func() float64 { return float64(srv.ActiveConnections()) },
		ParkedDirections:  func() float64 { return float64(srv.ParkedDirections()) },
		CertificateExpiry: func() float64 { return float64(certMgr.Current().Leaf().NotAfter.Unix()) },
	})
	newChecker := func(addr string) *health.Checker {
		return health.New(health.Options{
			Addr:     addr,
			Interval: cfg.HealthCheckInterval.D(),
			Timeout:  min(cfg.ConnectTimeout.D(), cfg.HealthCheckInterval.D()),
			Rise:     cfg.HealthCheckRise,
			Fall:     cfg.HealthCheckFall,
			Logger:   log,
			OnChange: func(s health.State, reason string) {
				metrics.BackendState(addr, s.String())
				srv.BackendChanged(addr, s, reason)
			},
			OnCheck: metrics.HealthCheck,
		})
	}
	// One backend, checked; or, routing by path, the runtimes on
	// ROUTE_CHECK checked and every other one checked on use.
	var checker *health.Checker
	if router == nil {
		checker = newChecker(cfg.BackendAddr())
	}
	routeHealth := make(map[string]*health.Checker, len(routeChecks))
	for _, addr := range routeChecks {
		routeHealth[addr] = newChecker(addr)
	}
	started := time.Now()
	site, err := portal.New(portal.Options{
		Version: fullVersion(),
		Backend: func() portal.Backend {
			if checker == nil {
				return portal.Backend{Address: "the first path segment of each request", Up: true, State: "routing by path", Since: started}
			}
			st, since := checker.State()
			return portal.Backend{Address: cfg.BackendAddr(), Up: st == health.Up, State: st.String(), Since: since}
		},
		Routes: func() []portal.Backend {
			var out []portal.Backend
			for _, addr := range routeChecks {
				st, since := routeHealth[addr].State()
				out = append(out, portal.Backend{Address: addr, Up: st == health.Up, State: st.String(), Since: since})
			}
			return out
		},
		Certificate: certMgr.Current,
		WebRoot:     cfg.WebRoot,
		WebPath:     cfg.WebPath,
	})
	if err != nil {
		return usageError{fmt.Errorf("WEB_ROOT: %w", err)}
	}
	srv = proxy.New(proxy.Options{
		Backend:           cfg.BackendAddr(),
		GetCertificate:    certMgr.GetCertificate,
		CheckName:         certMgr.CheckName,
		Local:             site,
		TLSSessionTickets: cfg.TLSSessionTickets,
		TLSPostQuantum:    cfg.TLSPostQuantum,
		Health:            checker,
		RouteHealth:       routeHealth,
		Router:            router,
		AllowedOrigins:    origins,
		ConnectTimeout:    cfg.ConnectTimeout.D(),
		TunnelTimeout:     cfg.TunnelTimeout.D(),
		HandshakeTimeout:  cfg.HandshakeTimeout.D(),
		HeadTimeout:       cfg.HeadTimeout.D(),
		ResponseTimeout:   cfg.ResponseTimeout.D(),
		MaxConnections:    maxConns,
		ProxyProtocol:     cfg.ProxyProtocol,
		ReleaseIdleMemory: true,
		Observer:          metrics,
		Logger:            log,
	})
	adminSrv, adminDone, err := startAdmin(cfg, metrics, checker, log)
	if err != nil {
		return err
	}

	ctx, stopChecks := context.WithCancel(context.Background())
	var checks sync.WaitGroup
	if checker != nil {
		checks.Go(func() { checker.Run(ctx) })
	}
	for _, c := range routeHealth {
		checks.Go(func() { c.Run(ctx) })
	}
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); certMgr.Watch(ctx, cfg.CertWatch.D()) }()
	stopBackground := func() {
		stopChecks()
		checks.Wait()
		<-watchDone
		if adminSrv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			adminSrv.Shutdown(sctx)
			cancel()
			<-adminDone
		}
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", zap.String("address", ln.Addr().String()), zap.String("backend", cfg.BackendAddr()))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case err := <-serveErr:
			stopBackground()
			return fmt.Errorf("serving: %w", err)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				certMgr.Reload("SIGHUP")
				continue
			}
			log.Info("signal received: shutting down", zap.Stringer("signal", sig), zap.Duration("grace", cfg.ShutdownGrace.D()))
			sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace.D())
			srv.Shutdown(sctx)
			cancel()
			stopBackground()
			<-serveErr
			log.Info("stopped")
			return nil
		}
	}
}

// startAdmin opens the admin listener, unless ADMIN_ADDRESS is "off".
func startAdmin(cfg *config.Config, m *admin.Metrics, checker *health.Checker, log *zap.Logger) (*admin.Server, chan struct{}, error) {
	if cfg.AdminAddress == "off" {
		return nil, nil, nil
	}
	profiling := cfg.AdminPprof
	ln, err := listenAdmin(cfg, log)
	if err != nil {
		return nil, nil, err
	}
	// Listening and a certificate are given once the admin listener is
	// up; what is left to be ready is the backend.
	srv := admin.NewServer(m, func() (bool, string) {
		if checker == nil {
			return true, "" // routing by path: no single backend to wait for
		}
		if st, _ := checker.State(); st != health.Up {
			return false, "backend " + st.String()
		}
		return true, ""
	}, profiling)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			log.Error("admin listener failed", zap.Error(err))
		}
	}()
	paths := []string{"/healthz", "/readyz", "/metrics"}
	if profiling {
		paths = append(paths, "/debug/pprof/")
	}
	log.Info("admin listener", zap.String("address", ln.Addr().String()), zap.Strings("paths", paths))
	return srv, done, nil
}

// listenAdmin binds ADMIN_ADDRESS. A second instance on one host (another
// runtime, another PROXY_PORT, --network host) finds the default port taken
// by the first: it keeps serving, with its admin listener on a free port of
// the same host, and says so. A port the user chose is never replaced.
func listenAdmin(cfg *config.Config, log *zap.Logger) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.AdminAddress)
	if err == nil {
		return ln, nil
	}
	if cfg.AdminAddressSet() || !errors.Is(err, syscall.EADDRINUSE) {
		return nil, usageError{fmt.Errorf("admin listener (ADMIN_ADDRESS): %w", err)}
	}
	host, _, _ := net.SplitHostPort(cfg.AdminAddress)
	ln, err2 := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err2 != nil {
		return nil, fmt.Errorf("admin listener (ADMIN_ADDRESS): %w; on a free port: %w", err, err2)
	}
	log.Warn("admin listener: the default address is taken (another instance on this host?); listening on a free port instead: set ADMIN_ADDRESS to choose one, or ADMIN_ADDRESS=off",
		zap.String("default", cfg.AdminAddress), zap.String("address", ln.Addr().String()))
	return ln, nil
}

// healthcheck is the container's HEALTHCHECK, for images with no shell or
// curl: it exits 0 when the proxy completes a TLS handshake on its port and
// answers GET /status.json.
func healthcheck(args []string) error {
	cfg, err := config.Load(args, os.Environ(), os.Stdout, fullVersion())
	if err != nil {
		return usageError{err}
	}
	host := cfg.ListenAddress
	if host == "" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(strings.Trim(host, "[]"), cfg.ProxyPort.String())
	client := &http.Client{
		Timeout: 3 * time.Second,
		// The point is that the proxy answers, not who signed its
		// certificate; a user's certificate need not name 127.0.0.1.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	resp, err := client.Get("https://" + addr + portal.PathStatus)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", addr, resp.Status)
	}
	fmt.Println("ok:", addr)
	return nil
}

// connectionsForFileLimit sizes the connection cap to the open-file limit:
// each session holds two descriptors (client and backend), and some are
// kept for the listener, health checks and logs.
func connectionsForFileLimit() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return 10000
	}
	return max(int(lim.Cur)-64, 2) / 2
}

func fullVersion() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v == "dev" {
				v += "+" + s.Value[:min(12, len(s.Value))]
			}
		}
		v += " (" + bi.GoVersion + ")"
	}
	return v
}
