//go:build !windows

package main

import "errors"

// A Windows service is Windows's alone; elsewhere the system's own service
// manager runs the program (the systemd unit: make install, or the .deb).

func isWindowsService() bool { return false }

func runAsService([]string) int { return 1 } // never called: not a service

func serviceCommand([]string) error {
	return usageError{errors.New("the service subcommand installs a Windows service; on Linux the systemd unit runs the proxy (make install, or the .deb or .rpm package)")}
}
