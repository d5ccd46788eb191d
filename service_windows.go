//go:build windows

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"gopkg.in/natefinch/lumberjack.v2"
)

// Running as a Windows service: the service manager starts the program
// with the arguments `service install` registered (--env-file naming the
// settings file), and a stop or the system's shutdown drains sessions for
// SHUTDOWN_GRACE as SIGTERM does.
//
// Where the log goes, since a service has no console: every line, as JSON,
// to a file under %ProgramData%\cloudxr-wss-proxy\logs that rotates at
// 10 MB and keeps five (what an administrator reads, or a collector
// tails); start, stop and errors also to the Windows Event Log (source
// cloudxr-wss-proxy, in the Application log), where Windows administrators
// and their monitoring look first.

const serviceName = "cloudxr-wss-proxy"

func isWindowsService() bool {
	ok, err := svc.IsWindowsService()
	return err == nil && ok
}

// dataDir is where the service keeps its settings file and logs.
func dataDir() string { return config.DataDir() }

// serviceLogFile is the service's log, every line.
func serviceLogFile() string { return filepath.Join(dataDir(), "logs", serviceName+".log") }

// runAsService runs the proxy under the service manager; its result is the
// process's exit status.
func runAsService(args []string) int {
	elog, err := eventlog.Open(serviceName)
	if err != nil {
		elog = nil // not registered: the file still has everything
	}
	h := &service{args: args, elog: elog}
	if err := svc.Run(serviceName, h); err != nil {
		h.event(true, fmt.Sprintf("the service could not run: %v", err))
		return 1
	}
	return h.exit
}

type service struct {
	args []string
	elog *eventlog.Log
	exit int
}

// Execute is the service manager's view: start the proxy, report running
// once its listeners are open (a start that fails on a setting or a port
// in use is a failed start, not a service that runs and then stops), and
// pass a stop or shutdown on as a drain.
func (s *service) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 30000}
	logFile := &lumberjack.Logger{Filename: serviceLogFile(), MaxSize: 10, MaxBackups: 5}
	defer logFile.Close()
	stop := make(chan string, 1)
	done := make(chan error, 1)
	listening := make(chan struct{})
	go func() {
		err := run(s.args, host{logTo: logFile, wrapLog: s.errorsToEventLog, stop: stop, listening: func() { close(listening) }})
		if err != nil {
			// Bad settings end the start before the log exists: the
			// file says so too, as a line of its own.
			line, _ := json.Marshal(map[string]string{"level": "error", "time": time.Now().UTC().Format(time.RFC3339), "msg": serviceEndedMsg, "error": err.Error()})
			logFile.Write(append(line, '\n'))
		}
		done <- err
	}()
	for {
		select {
		case <-listening:
			listening = nil
			status <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
			s.event(false, "started")
		case err := <-done:
			return s.ended(err)
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				status <- svc.Status{State: svc.StopPending}
				stop <- map[svc.Cmd]string{svc.Stop: "service stop", svc.Shutdown: "system shutdown"}[c.Cmd]
				return s.ended(<-done)
			}
		}
	}
}

// ended reports how the proxy ended, as the service's exit code.
func (s *service) ended(err error) (bool, uint32) {
	if err != nil {
		s.exit = exitCode(err)
		s.event(true, "stopped: "+err.Error())
		return true, uint32(s.exit)
	}
	s.event(false, "stopped")
	return false, 0
}

func (s *service) event(isErr bool, msg string) {
	if s.elog == nil {
		return
	}
	if isErr {
		s.elog.Error(1, msg)
		return
	}
	s.elog.Info(1, msg)
}

// errorsToEventLog adds a copy of the log's errors, one event each.
func (s *service) errorsToEventLog(c zapcore.Core) zapcore.Core {
	if s.elog == nil {
		return c
	}
	enc := zapcore.NewConsoleEncoder(zapcore.EncoderConfig{MessageKey: "msg", ConsoleSeparator: " "})
	return zapcore.NewTee(c, zapcore.NewCore(enc, zapcore.AddSync(eventWriter{s.elog}), zapcore.ErrorLevel))
}

type eventWriter struct{ elog *eventlog.Log }

func (w eventWriter) Write(p []byte) (int, error) {
	return len(p), w.elog.Error(1, strings.TrimSpace(string(p)))
}
