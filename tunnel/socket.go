package tunnel

import (
	"net"
	"syscall"
	"time"
)

// Socket is a TCP connection whose reads and writes, on Linux, are raw system calls
// made inside syscall.RawConn's Read and Write: the runtime's netpoller
// still waits for readiness and applies the deadlines, but a read or write
// on the non-blocking socket does not go through the runtime's
// entersyscall/exitsyscall. Those mark the goroutine's P as in a system
// call, and on loopback a write runs the receiver's whole TCP path inline,
// long enough for sysmon (every 20 µs while busy) to hand the P to another
// thread: a futex wake, a spinning thread, and sysmon kept at its fastest
// tick. Such a read or write never blocks, so it needs none of that.
// Writes use send(2) with MSG_NOSIGNAL: a peer gone gives EPIPE, not a
// signal (socket_linux.go). Elsewhere they are the TCPConn's own
// (socket_other.go).
//
// A Socket wraps a *net.TCPConn (NewSocket): the client's as accepted, or
// the backend's as net.Dialer connected it. Setting options and closing
// go through the TCPConn; only the reads and writes, which a session makes
// many of, are raw.
type Socket struct {
	c            *net.TCPConn
	fd           int // for the parker's epoll set; -1 where there is none
	laddr, raddr net.Addr
	rc           syscall.RawConn
}

// NewSocket wraps a connection: accepted, or dialed to the backend.
func NewSocket(c *net.TCPConn) *Socket {
	s := &Socket{c: c, fd: -1, laddr: c.LocalAddr(), raddr: c.RemoteAddr()}
	s.rc, _ = c.SyscallConn() // fails only for a connection never opened
	s.init()
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
