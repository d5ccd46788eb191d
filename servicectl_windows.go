//go:build windows

package main

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/winacl"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// The service subcommand: install, uninstall, start and stop the Windows
// service, from an administrator's terminal.

//go:embed deploy/systemd/env.example
var envExample []byte

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
		return usageError{errors.New("usage: cloudxr-wss-proxy service install|uninstall|start|stop")}
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
	default:
		return usageError{fmt.Errorf("service %q: want install, uninstall, start or stop", args[0])}
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return fmt.Errorf("%w: run it from a terminal opened as administrator", err)
	}
	return err
}

// installService registers the program, where it is now, to start at boot
// with the settings file under %ProgramData% (written from the example
// when there is none, in a folder only SYSTEM and the Administrators may
// enter), restarting it if it fails.
func installService() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	envFile := filepath.Join(dataDir(), "env")
	// The folder would inherit %ProgramData%'s access list, which lets
	// every local user read the keys in it and put a certificate of their
	// own in certs\: only SYSTEM and the Administrators get in.
	if err := winacl.MkdirProtected(dataDir()); err != nil {
		return err
	}
	if _, err := os.Stat(envFile); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(envFile, envExample, 0o644); err != nil {
			return err
		}
	}
	m, err := mgr.Connect()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s, err := m.OpenService(serviceName); err == nil {
		s.Close()
		return fmt.Errorf("the %s service is installed already (service uninstall first, to install this copy)", serviceName)
	}
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: "CloudXR WSS proxy",
		Description: "Terminates TLS for CloudXR.js: wss:// from browsers and headsets to the CloudXR Runtime.",
		StartType:   mgr.StartAutomatic,
	}, "service", "run", "--env-file", envFile)
	if err != nil {
		return err
	}
	defer s.Close()
	restart := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: 5 * time.Second}
	s.SetRecoveryActions([]mgr.RecoveryAction{restart, restart, restart}, uint32((24 * time.Hour).Seconds()))
	if err := eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		fmt.Printf("note: no Event Log source (%v); the log file has everything\n", err)
	}
	fmt.Printf("installed the %s service (%s), starting at boot\nsettings: %s\nlog: %s\nstart it now: %s service start\n",
		serviceName, exe, envFile, filepath.Join(dataDir(), "logs"), filepath.Base(exe))
	return nil
}

// uninstallService stops and removes the service; the settings file,
// the certificates and the logs stay.
func uninstallService() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if st, err := s.Query(); err == nil && st.State != svc.Stopped {
		if err := stopAndWait(s); err != nil {
			return err
		}
	}
	if err := s.Delete(); err != nil {
		return err
	}
	eventlog.Remove(serviceName)
	fmt.Printf("removed the %s service; %s (settings, certificates, logs) is left in place\n", serviceName, dataDir())
	return nil
}

func startService() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := s.Start(); err != nil {
		return err
	}
	if err := waitFor(s, svc.Running, 30*time.Second); err != nil {
		return fmt.Errorf("%w (the log under %s says why)", err, filepath.Join(dataDir(), "logs"))
	}
	fmt.Printf("the %s service is running\n", serviceName)
	return nil
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

// stopAndWait asks the service to stop (it drains its sessions for
// SHUTDOWN_GRACE) and waits until it has.
func stopAndWait(s *mgr.Service) error {
	if _, err := s.Control(svc.Stop); err != nil {
		return err
	}
	return waitFor(s, svc.Stopped, 2*time.Minute)
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

// waitFor polls the service's state until it is want, or the time is up.
func waitFor(s *mgr.Service, want svc.State, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := s.Query()
		if err != nil {
			return err
		}
		if st.State == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s service did not reach state %d within %v (it is in %d)", serviceName, want, limit, st.State)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
