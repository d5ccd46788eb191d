//go:build windows

package main

import (
	"errors"

	"golang.org/x/sys/windows"
)

// What the program asks of the system that differs per platform: the
// open-file limit, and how a listener's errors are named.

// openFileLimit: Windows has no limit on sockets but memory.
func openFileLimit() (int, bool) { return 0, false }

// addrInUse reports a listener's address taken by another program.
func addrInUse(err error) bool { return errors.Is(err, windows.WSAEADDRINUSE) }

// accessDenied reports a port the program may not bind: reserved by the
// system (netsh int ipv4 show excludedportrange) or held exclusively.
func accessDenied(err error) bool { return errors.Is(err, windows.WSAEACCES) }

// portDenied says why binding setting's port was refused: Windows needs no
// privilege for a low port, so the port is reserved or held exclusively.
func portDenied(setting, port string) string {
	return "is reserved by the system or held exclusively by another program (see `netsh int ipv4 show excludedportrange protocol=tcp`)"
}
