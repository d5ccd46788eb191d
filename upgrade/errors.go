package upgrade

import "errors"

// ErrUnsupported is returned by New where a process cannot hand over its
// sockets (Windows).
var ErrUnsupported = errors.New("upgrading in place is not supported on this system")

// ErrPreviousDraining is returned by Upgrade while the process before this
// one is still finishing its sessions: one hand-over at a time.
var ErrPreviousDraining = errors.New("the process before this one is still finishing its sessions")
