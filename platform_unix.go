//go:build unix

package main

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// What the program asks of the system that differs per platform: the
// open-file limit, and how a listener's errors are named.

// openFileLimit is the soft limit on open descriptors; false when there
// is none.
func openFileLimit() (int, bool) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return 0, false
	}
	return int(min(lim.Cur, 1<<30)), true
}

// addrInUse reports a listener's address taken by another program.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// accessDenied reports a port the program may not bind (below 1024).
func accessDenied(err error) bool { return errors.Is(err, syscall.EACCES) }
