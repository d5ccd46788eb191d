package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/bindcap"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/proxy"
)

// The app's running life: its listeners opened, served, and shut down on
// the signals.

// listen opens the TLS listener and the admin listener, or takes them
// from the process this one takes over from.
func (a *app) listen() error {
	var err error
	keepalive := a.cfg.ClientKeepalive.D()
	a.ln, err = a.listenOn("PROXY_PORT", a.cfg.ListenAddr(), func(network, addr string) (net.Listener, error) {
		return bindcap.Listen(func() (net.Listener, error) { return proxy.Listen(network, addr, keepalive) })
	})
	if err != nil {
		return err
	}
	if err := proxy.SetListenerOptions(a.ln, keepalive); err != nil { // an inherited one has the old process's
		a.log.Info("CLIENT_KEEPALIVE", zap.Error(err))
	}
	if err = a.listenACMEHTTP(); err != nil {
		a.ln.Close()
		return err
	}
	if a.cfg.AdminAddress == "off" {
		a.admin = nil
		return nil
	}
	a.adminLn, err = a.listenOn("ADMIN_ADDRESS", a.cfg.AdminAddress, func(string, string) (net.Listener, error) {
		return listenAdmin(a.cfg, a.log)
	})
	if err != nil {
		a.ln.Close()
		if a.httpLn != nil {
			a.httpLn.Close()
		}
		return err
	}
	paths := []string{"/healthz", "/readyz", "/metrics"}
	if a.cfg.AdminPprof {
		paths = append(paths, "/debug/pprof/")
	}
	a.log.Info("admin listener", zap.String("address", a.adminLn.Addr().String()), zap.Strings("paths", paths))
	return nil
}

// listenOn opens the listener for setting at addr with open, or takes the
// one the previous process had there. open's errors are said in words
// naming the setting.
func (a *app) listenOn(setting, addr string, open func(network, addr string) (net.Listener, error)) (net.Listener, error) {
	wrapped := func(network, addr string) (net.Listener, error) {
		ln, err := open(network, addr)
		if err != nil {
			var u usageError
			if !errors.As(err, &u) {
				err = listenError(setting, addr, err)
			}
		}
		return ln, err
	}
	if a.handover == nil {
		return wrapped("tcp", addr)
	}
	ln, inherited, err := a.handover.Listen(setting, "tcp", addr, wrapped)
	if inherited {
		a.log.Info("listener taken over from the previous process", zap.String("setting", setting), zap.String("address", addr))
	}
	return ln, err
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
	if cfg.AdminAddressSet() || !addrInUse(err) {
		return nil, listenError("ADMIN_ADDRESS", cfg.AdminAddress, err)
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

// listenError says what to change when a listener cannot be opened: a
// port in use or one below 1024 is the user's to fix (exit status 2), in
// words naming the setting; anything else is reported as it came.
func listenError(setting, addr string, err error) error {
	_, port, _ := net.SplitHostPort(addr)
	change := "set " + setting
	if setting == "ADMIN_ADDRESS" {
		change += " to another host:port, or ADMIN_ADDRESS=off"
	}
	switch {
	case addrInUse(err):
		return usageError{fmt.Errorf("%s %s is in use by another program (%s): stop it, or %s", setting, port, addr, change)}
	case accessDenied(err):
		return usageError{fmt.Errorf("%s %s %s; or %s", setting, port, portDenied(setting, port), change)}
	}
	return fmt.Errorf("listening on %s (%s): %w", addr, setting, err)
}

// serve starts the background work and the listeners, then waits: SIGHUP
// reloads the certificate, SIGTERM or SIGINT shut down gracefully.
func (a *app) serve() error {
	ctx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	if a.checker != nil {
		bg.Go(func() { a.checker.Run(ctx) })
	}
	for _, c := range a.routed {
		bg.Go(func() { c.Run(ctx) })
	}
	if a.certs != nil {
		bg.Go(func() { a.certs.Watch(ctx, a.cfg.CertWatch.D()) })
	}
	if a.tokens != nil {
		bg.Go(func() { a.tokens.Watch(ctx, a.cfg.CertWatch.D()) })
	}
	if a.oidc != nil {
		bg.Go(func() { a.oidc.Run(ctx) })
	}
	if a.pool != nil {
		a.runPool(ctx, &bg)
	}
	if a.admin != nil {
		bg.Go(a.serveAdmin)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.srv.Serve(a.ln) }()
	backend := a.cfg.BackendAddr()
	if a.pool != nil {
		backend = "the runtime pool (BACKEND_POOL)"
	}
	a.log.Info("listening", zap.String("address", a.ln.Addr().String()), zap.String("backend", backend))

	a.startACME(ctx) // after the listeners are open (see listenACMEHTTP)
	a.takeOver()

	err := a.waitForSignals(serveErr)
	stopBackground()
	a.stopACME()
	if a.admin != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.admin.Shutdown(sctx)
		cancel()
	}
	bg.Wait()
	return err
}

func (a *app) serveAdmin() {
	if err := a.admin.Serve(a.adminLn); err != nil {
		a.log.Error("admin listener failed", zap.Error(err))
	}
}

// waitForSignals serves until SIGTERM, SIGINT (Ctrl+C) or the host's stop
// request drains the sessions (SHUTDOWN_GRACE), or SIGHUP hands over to a
// new process and the sessions here finish (UPGRADE_DRAIN; see reload).
func (a *app) waitForSignals(serveErr chan error) error {
	for {
		var why string
		select {
		case err := <-serveErr:
			return fmt.Errorf("serving: %w", err)
		case why = <-a.stop:
		case sig := <-a.sigs:
			if sig == syscall.SIGHUP {
				if a.reload() {
					a.drain(serveErr)
					a.log.Info("stopped: the new process serves")
					return nil
				}
				continue
			}
			why = "signal " + sig.String()
		}
		grace := a.cfg.ShutdownGrace.D()
		a.log.Info("shutting down", zap.String("why", why), zap.Duration("grace", grace))
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		a.srv.Shutdown(sctx)
		cancel()
		<-serveErr
		a.log.Info("stopped")
		return nil
	}
}

// catchSignals takes SIGTERM, SIGINT and SIGHUP from the start, so that
// one sent while the parts are built (a reload as soon as the service is
// up) waits for waitForSignals instead of ending the program.
func catchSignals() chan os.Signal {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return sigs
}
