//go:build windows

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// The service subcommand: install, uninstall, start, stop and restart the Windows
// service, from an administrator's terminal.

func serviceCommand(args []string) error {
	if len(args) > 0 && args[0] == "run" {
		// What the service manager starts (install registers it): the
		// same program, told it runs under the manager.
		if code := runAsService(args[1:]); code != 0 {
			return fmt.Errorf("the service ended with status %d (the log under %s says why)", code, filepath.Join(dataDir(), "logs"))
		}
		return nil
	}
	if len(args) != 1 {
		return usageError{errors.New("usage: cloudxr-wss-proxy service install|uninstall|start|stop|restart")}
	}
	var err error
	switch args[0] {
	case "install":
		err = installService()
	case "uninstall":
		err = uninstallService()
	case "start":
		err = startService()
	case "stop":
		err = stopService()
	case "restart":
		err = restartService()
	default:
		return usageError{fmt.Errorf("service %q: want install, uninstall, start, stop or restart", args[0])}
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return fmt.Errorf("%w: run it from a terminal opened as administrator", err)
	}
	return err
}

func startService() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	return startAndWait(s)
}

// startAndWait starts the service and waits until it runs (its listeners
// are open) or has stopped, and says which, in words. A service already
// running is not an error: Windows starts it at boot, and Wine whenever its
// server starts (the first program of a session), which may be this one.
func startAndWait(s *mgr.Service) error {
	const limit = 30 * time.Second
	err := s.Start()
	if errors.Is(err, windows.ERROR_SERVICE_ALREADY_RUNNING) {
		err = nil
		fmt.Printf("the %s service was started already\n", serviceName)
	}
	if err != nil {
		return err
	}
	st, err := waitWhile(s, func(st svc.State) bool { return st == svc.StartPending }, limit)
	if err != nil {
		return err
	}
	if st != svc.Running {
		return startFailure(serviceName, st == svc.Stopped, limit, serviceLogFile(), lastLogWords(logTail(serviceLogFile())))
	}
	fmt.Printf("the %s service is running\n", serviceName)
	return nil
}

// logTail is the end of the file at path, enough for its last lines.
func logTail(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const tail = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > tail {
		f.Seek(fi.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, tail))
	return b
}

// restartService stops the service if it runs, to take in a changed
// settings file, and starts it again.
func restartService() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopIfRunning(s); err != nil {
		return err
	}
	return startAndWait(s)
}

func stopService() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopAndWait(s); err != nil {
		return err
	}
	fmt.Printf("the %s service is stopped\n", serviceName)
	return nil
}

// stopIfRunning stops the service unless it is stopped already (or its
// state cannot be read: then whatever follows says why).
func stopIfRunning(s *mgr.Service) error {
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		return stopAndWait(s)
	}
	return nil
}

// stopAndWait asks the service to stop (it drains its sessions for
// SHUTDOWN_GRACE) and waits until it has.
func stopAndWait(s *mgr.Service) error {
	if _, err := s.Control(svc.Stop); err != nil {
		return err
	}
	const limit = 2 * time.Minute
	// Until the service has taken the request in, it may still say running.
	if st, err := waitWhile(s, func(st svc.State) bool { return st != svc.Stopped }, limit); err != nil || st == svc.Stopped {
		return err
	}
	return fmt.Errorf("the %s service did not stop within %v (the log: %s)", serviceName, limit, serviceLogFile())
}

func openService() (*mgr.Mgr, *mgr.Service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, err
	}
	s, err := m.OpenService(serviceName)
	if err != nil {
		m.Disconnect()
		return nil, nil, fmt.Errorf("the %s service is not installed (%w)", serviceName, err)
	}
	return m, s, nil
}

// waitWhile polls the service's state while pending says it is not yet
// settled, until the time is up, and returns the state it was last in.
func waitWhile(s *mgr.Service, pending func(svc.State) bool, limit time.Duration) (svc.State, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := s.Query()
		if err != nil || !pending(st.State) || time.Now().After(deadline) {
			return st.State, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
