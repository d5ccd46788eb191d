package tunnel

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket is a TCP connection whose reads and writes are raw system calls
// made inside syscall.RawConn's Read and Write: the runtime's netpoller
// still waits for readiness and applies the deadlines, but a read or write
// on the non-blocking socket does not go through the runtime's
// entersyscall/exitsyscall. Those mark the goroutine's P as in a system
// call, and on loopback a write runs the receiver's whole TCP path inline,
// long enough for sysmon (every 20 µs while busy) to hand the P to another
// thread: a futex wake, a spinning thread, and sysmon kept at its fastest
// tick. Such a read or write never blocks, so it needs none of that.
// Writes use send(2) with MSG_NOSIGNAL: a peer gone gives EPIPE, not a
// signal.
//
// Everything else (deadlines, Close, CloseWrite, addresses) is the
// embedded *net.TCPConn's.
type Socket struct {
	*net.TCPConn
	rc syscall.RawConn

	rmu   sync.Mutex // one read at a time uses r
	r     rawOp
	wmu   sync.Mutex // one write at a time uses w
	w     rawOp
	readF func(fd uintptr) bool // r's and w's callbacks, bound once
	sendF func(fd uintptr) bool
}

// rawOp is the read or write in progress.
type rawOp struct {
	buf   []byte
	n     int
	errno syscall.Errno
}

// NewSocket wraps c.
func NewSocket(c *net.TCPConn) *Socket {
	s := &Socket{TCPConn: c}
	s.rc, _ = c.SyscallConn() // fails only for a connection never opened
	s.readF, s.sendF = s.readOnce, s.sendAll
	return s
}

// Read reads like net.TCPConn.Read: io.EOF at the end of the stream.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 || s.rc == nil {
		return s.TCPConn.Read(p)
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.r = rawOp{buf: p}
	err := s.rc.Read(s.readF)
	n, errno := s.r.n, s.r.errno
	s.r.buf = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, s.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (s *Socket) readOnce(fd uintptr) bool {
	b := s.r.buf
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			s.r.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for readability
		}
		s.r.errno = e
		return true
	}
}

// Write writes all of p, waiting for room under the write deadline.
func (s *Socket) Write(p []byte) (int, error) {
	if len(p) == 0 || s.rc == nil {
		return s.TCPConn.Write(p)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.w = rawOp{buf: p}
	err := s.rc.Write(s.sendF)
	n, errno := s.w.n, s.w.errno
	s.w.buf = nil
	switch {
	case errno != 0:
		return n, s.opError("write", errno)
	case err != nil:
		return n, err
	}
	return n, nil
}

func (s *Socket) sendAll(fd uintptr) bool {
	for b := s.w.buf; s.w.n < len(b); {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[s.w.n])), uintptr(len(b)-s.w.n), unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			s.w.n += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait for room
		default:
			s.w.errno = e
			return true
		}
	}
	return true
}

// opError is the error net.TCPConn would have returned.
func (s *Socket) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.LocalAddr(), Addr: s.RemoteAddr(), Err: os.NewSyscallError(op, errno)}
}
