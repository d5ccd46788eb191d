//go:build linux

package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// init notes the descriptor, and asks for TCP_INQ's hint on the socket's
// reads (the pump's; see readPending).
func (s *Socket) init() {
	s.rc.Control(func(fd uintptr) {
		s.fd = int(fd)
		enableInq(s.fd)
	})
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
