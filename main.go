// Command cloudxr-wss-proxy terminates TLS for CloudXR.js and passes the
// WebSocket signaling of browsers and headsets to the CloudXR Runtime. It is
// a drop-in replacement for the HAProxy "wss-proxy" container: same
// variables, port and certificate paths. main only wires the packages:
// run reads as its steps, each a function below.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/logging"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/upgrade"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if code, ok := upgrade.RunAsInit(); ok { // a container's first process
		os.Exit(code)
	}
	if isWindowsService() {
		os.Exit(runAsService(os.Args[1:]))
	}
	if err := run(os.Args[1:], host{logTo: os.Stderr}); err != nil {
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

// host is what the program runs under: a console, systemd or a container
// engine (signals stop it, the log goes to stderr), or the Windows service
// manager (service_windows.go).
type host struct {
	logTo io.Writer
	// wrapLog, if set, adds a copy of the log (the Event Log's of errors).
	wrapLog func(zapcore.Core) zapcore.Core
	// stop, if set, asks for the same drain as SIGTERM, for the reason sent.
	stop <-chan string
	// listening, if set, is called once the listeners are open: a service
	// reports itself running then, so that a port in use fails the start.
	listening func()
}

// run: load the configuration, build the parts, open the listeners, serve
// until a signal (or the host) says stop.
func run(args []string, h host) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(args[1:])
		case "service":
			return serviceCommand(args[1:])
		}
	}
	cfg, err := config.Load(args, os.Environ(), os.Stdout, fullVersion())
	if errors.Is(err, config.ErrHelp) || errors.Is(err, config.ErrVersion) {
		return nil
	}
	if err != nil {
		return usageError{err}
	}
	log, err := logging.New(h.logTo, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return usageError{err}
	}
	if h.wrapLog != nil {
		log = log.WithOptions(zap.WrapCore(h.wrapLog))
	}
	defer log.Sync()
	sigs := catchSignals()
	defer signal.Stop(sigs)
	maxConns := maxConnections(cfg)
	logStart(cfg, maxConns, log)
	for _, w := range cfg.Warnings() {
		log.Warn("a setting is probably not what was meant", zap.String("why", w))
	}
	for _, v := range cfg.UnknownVariables() {
		log.Warn("a variable in the environment is not a setting of this program, and is ignored", zap.String("variable", v.Name),
			zap.String("nearest_setting", v.Nearest))
	}
	for _, f := range cfg.ExposedSecrets() {
		log.Warn("a file holding secrets is readable by every local user", zap.String("file", f.Path),
			zap.String("mode", fmt.Sprintf("%04o", f.Mode)), zap.String("fix", f.Fix()))
	}
	tuneGC(maxConns, log)

	a, err := build(cfg, maxConns, log)
	if err != nil {
		return err
	}
	a.stop = h.stop
	a.sigs = sigs
	a.handover = newHandover(cfg, log)
	if err := a.listen(); err != nil {
		return err
	}
	if h.listening != nil {
		h.listening()
	}
	return a.serve()
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
