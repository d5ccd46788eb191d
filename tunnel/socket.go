package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
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
// A Socket wraps a *net.TCPConn (NewSocket): the client's as accepted, or
// the backend's as net.Dialer connected it. Setting options and closing
// go through the TCPConn; only the reads and writes, which a session makes
// many of, are raw.
type Socket struct {
	c            *net.TCPConn
	fd           int // for the parker's epoll set
	laddr, raddr net.Addr
	rc           syscall.RawConn
}

// rawOp is one read or write in progress, with its callbacks for
// RawConn bound once: ops come from a pool, so that an idle Socket holds
// no state for them (it is per session, twice, and sessions sit idle for
// hours).
type rawOp struct {
	buf         []byte
	n           int
	errno       syscall.Errno
	read, write func(fd uintptr) bool
}

var rawOps = sync.Pool{New: func() any {
	op := new(rawOp)
	op.read, op.write = op.readOnce, op.sendAll
	return op
}}

func getOp(p []byte) *rawOp {
	op := rawOps.Get().(*rawOp)
	op.buf, op.n, op.errno = p, 0, 0
	return op
}

func (op *rawOp) put() {
	op.buf = nil
	rawOps.Put(op)
}

// NewSocket wraps an accepted connection, and asks for TCP_INQ's hint on
// its reads (the pump's; see readPending).
func NewSocket(c *net.TCPConn) *Socket {
	s := &Socket{c: c, fd: -1, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
	s.rc, _ = c.SyscallConn() // fails only for a connection never opened
	s.rc.Control(func(fd uintptr) {
		s.fd = int(fd)
		enableInq(s.fd)
	})
	return s
}

func (s *Socket) LocalAddr() net.Addr                { return s.laddr }
func (s *Socket) RemoteAddr() net.Addr               { return s.raddr }
func (s *Socket) SetDeadline(t time.Time) error      { return s.c.SetDeadline(t) }
func (s *Socket) SetReadDeadline(t time.Time) error  { return s.c.SetReadDeadline(t) }
func (s *Socket) SetWriteDeadline(t time.Time) error { return s.c.SetWriteDeadline(t) }

// SyscallConn gives the socket's raw form, as net.TCPConn's does.
func (s *Socket) SyscallConn() (syscall.RawConn, error) { return s.rc, nil }

// Close closes the socket.
func (s *Socket) Close() error { return s.c.Close() }

// CloseWrite half-closes the socket: a FIN to the peer. It is the
// TCPConn's: a raw shutdown(2) measured 1.01 (0.77-1.12) of it per session
// (bench/README.md item 16), no gain.
func (s *Socket) CloseWrite() error { return s.c.CloseWrite() }

// Read reads like net.TCPConn.Read: io.EOF at the end of the stream.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := getOp(p)
	err := s.rc.Read(op.read)
	n, errno := op.n, op.errno
	op.put()
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (op *rawOp) readOnce(fd uintptr) bool {
	b := op.buf
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			op.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for readability
		}
		op.errno = e
		return true
	}
}

// Write writes all of p, waiting for room under the write deadline.
func (s *Socket) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	op := getOp(p)
	err := s.rc.Write(op.write)
	n, errno := op.n, op.errno
	op.put()
	switch {
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	case err != nil:
		return n, s.opError("write", err)
	}
	return n, nil
}

func (op *rawOp) sendAll(fd uintptr) bool {
	for b := op.buf; op.n < len(b); {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[op.n])), uintptr(len(b)-op.n), unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			op.n += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false // wait for room
		default:
			op.errno = e
			return true
		}
	}
	return true
}

// opError is the error net.TCPConn would have returned: a failure of the
// poller (a deadline, net.ErrClosed) or of the system call, in a
// *net.OpError.
func (s *Socket) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err // RawConn's own, named "raw-read" or "raw-write"
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.laddr, Addr: s.raddr, Err: err}
}
