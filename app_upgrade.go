package main

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/upgrade"
)

// Upgrading in place (SIGHUP, systemctl reload): the listeners go to a new
// process started from the binary at the same path, which reads its
// settings afresh; this one then finishes its sessions (UPGRADE_DRAIN) and
// exits. Where that cannot be done, SIGHUP reloads the certificate and the
// tokens file in place.

// upgradeTimeout bounds a new process's start: not ready by then, it is
// killed and this one carries on.
const upgradeTimeout = time.Minute

// newHandover prepares upgrades in place; nil where they cannot be done
// (Windows).
func newHandover(cfg *config.Config, log *zap.Logger) *upgrade.Handover {
	h, err := upgrade.New(cfg.PIDFile, upgradeTimeout)
	if err != nil {
		if !errors.Is(err, upgrade.ErrUnsupported) {
			log.Warn("upgrading in place is off: SIGHUP only reloads the certificate and tokens", zap.Error(err))
		}
		return nil
	}
	return h
}

// whyNoUpgrade says why SIGHUP cannot upgrade in place, or "".
func (a *app) whyNoUpgrade() string {
	switch {
	case a.handover == nil:
		return "not supported on this system"
	case upgrade.UnderForeignInit():
		// A container ends with its init's child: the new process would
		// go with this one once it had finished its sessions.
		return "the container's init (docker run --init, podman --init) ends the container when this process exits; run without --init (the program is its own init) or restart the container"
	case a.pool != nil && a.pool.claims == config.ClaimsMemory:
		return "the runtime pool's claims are in this process's memory (BACKEND_POOL without Kubernetes Leases): a new process could hand out a runtime a session here still holds; restart to apply a new binary or settings"
	}
	return ""
}

// reload is SIGHUP: an upgrade in place, or else the certificate and the
// tokens file read again. It reports whether a new process took over.
func (a *app) reload() bool {
	why := a.whyNoUpgrade()
	if why == "" {
		a.log.Info("SIGHUP: starting a new process to take over (upgrade in place)")
		err := a.handover.Upgrade()
		if err == nil {
			return true
		}
		why = err.Error()
		if errors.Is(err, upgrade.ErrPreviousDraining) {
			why += ": upgrade again once it has exited (UPGRADE_DRAIN bounds the wait)"
		} else {
			why += " (its own log lines above say why); this process keeps serving"
		}
		a.log.Error("SIGHUP: upgrade in place failed", zap.String("why", why))
	} else {
		a.log.Info("SIGHUP: no upgrade in place", zap.String("why", why))
	}
	if a.certs != nil {
		a.certs.Reload("SIGHUP")
	}
	if a.tokens != nil {
		a.tokens.Reload("SIGHUP")
	}
	return false
}

// takeOver tells the process before this one, if any, that this one
// serves, and follows what it reports while it finishes its sessions.
func (a *app) takeOver() {
	if a.handover == nil {
		return
	}
	if err := a.handover.Ready(); err != nil {
		a.log.Warn("could not tell the previous process or systemd that this one serves", zap.Error(err))
	}
	if !a.handover.HasParent() {
		return
	}
	a.log.Info("took over from the previous process: it finishes its open sessions")
	go a.handover.Previous(func(r upgrade.Report) {
		if r.Gone {
			a.previousSessions.Store(0)
			a.log.Info("the previous process has exited", zap.Int("pid", r.PID))
			return
		}
		if r.Spent != nil && a.limits != nil {
			a.limits.Restore(r.Spent)
		}
		a.previousSessions.Store(int64(r.Sessions))
	})
}

// drain is the old process's end after a new one has taken over: stop
// accepting (the listeners stay open in the new process), stop serving
// what the new one now serves (the admin and ACME HTTP ports), report to
// the new one, and let the sessions finish, for at most UPGRADE_DRAIN.
// SIGTERM or SIGINT meanwhile (systemctl stop) gives them SHUTDOWN_GRACE.
// serve stops the rest (ACME, the checks, the claims' renewals) after it.
func (a *app) drain(serveErr chan error) {
	limit := a.cfg.UpgradeDrain.D()
	a.log.Info("handed over to the new process: finishing the open sessions here",
		zap.Int("sessions", a.srv.ActiveConnections()), zap.Duration("upgrade_drain", limit))
	// ACME stays on until the sessions end: an order under way finishes and
	// releases its lock in the storage, where the new process waits for it
	// and then finds the certificate (certmagic's locks keep two processes
	// from ordering one name at once). The ACME HTTP port is the new one's.
	if a.httpSrv != nil {
		a.httpSrv.Close()
	}
	if a.admin != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		a.admin.Shutdown(sctx)
		cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if limit > 0 {
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	reporting := make(chan struct{})
	go a.stopOnSignal(cancel, reporting)
	go a.report(reporting)
	err := a.srv.Drain(ctx)
	close(reporting)
	<-serveErr
	if err != nil {
		a.log.Warn("UPGRADE_DRAIN is over: the sessions left were closed")
	} else {
		a.log.Info("every session handed over has ended")
	}
}

// stopOnSignal ends a drain SHUTDOWN_GRACE after SIGTERM or SIGINT.
func (a *app) stopOnSignal(cancel func(), done <-chan struct{}) {
	for {
		var sig os.Signal
		select {
		case <-done:
			return
		case sig = <-a.sigs:
		}
		if sig == syscall.SIGHUP {
			a.log.Info("SIGHUP ignored: this process has handed over and is finishing its sessions")
			continue
		}
		grace := a.cfg.ShutdownGrace.D()
		a.log.Info("shutting down while finishing handed-over sessions", zap.String("why", "signal "+sig.String()), zap.Duration("grace", grace))
		time.AfterFunc(grace, cancel)
		return
	}
}

// report tells the new process, once a second, how many sessions this
// one still has, and first which clients had spent part of their
// authentication-failure budget.
func (a *app) report(done <-chan struct{}) {
	first := upgrade.Report{Sessions: a.srv.ActiveConnections()}
	if a.limits != nil {
		first.Spent = a.limits.Spent()
	}
	failed := false
	send := func(r upgrade.Report) {
		if err := a.handover.Send(r); err != nil && !failed {
			failed = true
			a.log.Warn("cannot report to the new process; its sessions_draining gauge is stale", zap.Error(err))
		}
	}
	send(first)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			send(upgrade.Report{Sessions: 0})
			return
		case <-t.C:
			send(upgrade.Report{Sessions: a.srv.ActiveConnections()})
		}
	}
}
