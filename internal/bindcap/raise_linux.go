package bindcap

import (
	"errors"
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Listen calls listen; when the system refuses the bind (EACCES, a port
// below 1024) and CAP_NET_BIND_SERVICE is permitted but not effective (the
// image's file capability), it calls listen once more with the capability
// raised on this goroutine's thread only, and lowers it again after.
// listen must bind synchronously (net.Listen does).
func Listen(listen func() (net.Listener, error)) (net.Listener, error) {
	ln, err := listen()
	if err == nil || !errors.Is(err, syscall.EACCES) {
		return ln, err
	}
	// Capabilities are per thread: the raise, the bind and the lowering
	// happen on one locked thread.
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	const bit = 1 << netBindService
	if unix.Capget(&hdr, &data[0]) != nil || data[0].Permitted&bit == 0 || data[0].Effective&bit != 0 {
		runtime.UnlockOSThread()
		return nil, err
	}
	data[0].Effective |= bit
	if unix.Capset(&hdr, &data[0]) != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	ln, err = listen()
	data[0].Effective &^= bit
	if unix.Capset(&hdr, &data[0]) == nil {
		// Otherwise the thread stays locked and ends with this goroutine,
		// rather than running other goroutines with the capability.
		runtime.UnlockOSThread()
	}
	return ln, err
}
