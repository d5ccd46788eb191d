//go:build windows

package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/winacl"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"
)

// Installing the Windows service: the program is copied to
// %ProgramFiles%\cloudxr-wss-proxy and that copy registered, so that the
// service does not depend on the folder the archive was unzipped into (a
// Downloads folder, cleaned up one day), and only administrators may
// replace what runs as SYSTEM. Its data (settings, certificates, logs)
// lives apart, in %ProgramData%\cloudxr-wss-proxy, which uninstalling
// leaves in place.

//go:embed deploy/windows/env.example
var envExample []byte

// programDir is where service install puts the program.
func programDir() string {
	dir, err := windows.KnownFolderPath(windows.FOLDERID_ProgramFiles, 0)
	if err != nil {
		dir = `C:\Program Files`
	}
	return filepath.Join(dir, serviceName)
}

// installedExe is the program's copy that the service runs.
func installedExe() string { return filepath.Join(programDir(), serviceName+".exe") }

// installService copies the program to programDir and registers that copy
// to start at boot, restarting it if it fails, with the settings file under
// %ProgramData% (written from the example when there is none, in a folder
// only SYSTEM and the Administrators may enter). Installed already, the
// service is stopped, its program replaced (an upgrade) and started again
// if it ran.
func installService() error {
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
	exe := installedExe()
	args := []string{"service", "run", "--env-file", envFile}
	s, err := m.OpenService(serviceName)
	if err != nil {
		if err := copyProgram(exe); err != nil {
			return err
		}
		return register(m, exe, args, envFile)
	}
	defer s.Close()
	return upgradeService(s, exe, args)
}

// register creates the service for the program at exe.
func register(m *mgr.Mgr, exe string, args []string, envFile string) error {
	s, err := m.CreateService(serviceName, exe, mgr.Config{
		DisplayName: "CloudXR WSS proxy",
		Description: "Terminates TLS for CloudXR.js: wss:// from browsers and headsets to the CloudXR Runtime.",
		StartType:   mgr.StartAutomatic,
	}, args...)
	if err != nil {
		return err
	}
	defer s.Close()
	restart := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: 5 * time.Second}
	s.SetRecoveryActions([]mgr.RecoveryAction{restart, restart, restart}, uint32((24 * time.Hour).Seconds()))
	if err := eventlog.InstallAsEventCreate(serviceName, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil && !errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
		fmt.Printf("note: no Event Log source (%v); the log file has everything\n", err)
	}
	self, _ := os.Executable()
	fmt.Printf("installed the %s service (%s), starting at boot\nsettings: %s\nlog: %s\nstart it now: .\\%s service start\n",
		serviceName, exe, envFile, filepath.Dir(serviceLogFile()), filepath.Base(self))
	fmt.Printf("the service runs the copy in %s: the folder it was installed from may be deleted\n", programDir())
	return nil
}

// upgradeService replaces the installed service's program with this one: the
// service is stopped, the copy replaced, the service pointed at it (an
// older install may have run the program from elsewhere) and started again
// if it ran.
func upgradeService(s *mgr.Service, exe string, args []string) error {
	st, err := s.Query()
	if err != nil {
		return err
	}
	running := st.State != svc.Stopped
	if running {
		if err := stopAndWait(s); err != nil {
			return err
		}
	}
	if err := copyProgram(exe); err != nil {
		return err
	}
	if err := setProgram(s, exe, args); err != nil {
		return err
	}
	fmt.Printf("upgraded the %s service: it runs %s\n", serviceName, exe)
	if running {
		return startAndWait(s)
	}
	return nil
}

// setProgram points the service at exe, changing nothing else (the
// whole configuration, as mgr's UpdateConfig writes it, includes levels
// Wine does not know: "Invalid level").
func setProgram(s *mgr.Service, exe string, args []string) error {
	cmd := syscall.EscapeArg(exe)
	for _, a := range args {
		cmd += " " + syscall.EscapeArg(a)
	}
	p, err := windows.UTF16PtrFromString(cmd)
	if err != nil {
		return err
	}
	const same = windows.SERVICE_NO_CHANGE
	if err := windows.ChangeServiceConfig(s.Handle, same, same, same, p, nil, nil, nil, nil, nil, nil); err != nil {
		return fmt.Errorf("pointing the service at %s: %w", exe, err)
	}
	return nil
}

// copyProgram copies this program to dst, through a file beside it renamed
// over dst, so that an interrupted copy never leaves half a program. A
// program run from dst already is left alone.
func copyProgram(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if a, err := os.Stat(self); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".new"
	if err := copyFile(self, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying the program to %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s (is it running?): %w", dst, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// uninstallService stops and removes the service and its program in
// programDir; the settings file, the certificates and the logs stay.
func uninstallService() error {
	m, s, err := openService()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	if err := stopIfRunning(s); err != nil {
		return err
	}
	if err := s.Delete(); err != nil {
		return err
	}
	eventlog.Remove(serviceName)
	fmt.Printf("removed the %s service\n", serviceName)
	removeProgram()
	fmt.Printf("%s (settings, certificates, logs) is left in place; delete it to remove those too\n", dataDir())
	return nil
}

// removeProgram deletes the installed copy and its folder. Windows does
// not delete a running program: when uninstall runs from that copy, the
// copy is deleted at the next restart instead.
func removeProgram() {
	exe := installedExe()
	err := os.Remove(exe)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		p, _ := windows.UTF16PtrFromString(exe)
		if windows.MoveFileEx(p, nil, windows.MOVEFILE_DELAY_UNTIL_REBOOT) == nil {
			fmt.Printf("%s is in use: Windows deletes it at the next restart\n", exe)
			return
		}
		fmt.Printf("note: %s could not be deleted (%v): delete it by hand\n", exe, err)
		return
	}
	os.Remove(programDir()) // only if empty: what else is there is not ours
	fmt.Printf("removed %s\n", programDir())
}
