package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dialer connects to backends with the system calls a connect needs and
// nothing around them: socket, the two options the tunnel uses
// (TCP_NODELAY for signaling latency, TCP_INQ for the pump), connect, and
// one getsockopt(TCP_INFO) that says whether the connect completed. On
// loopback or a fast LAN it has by then, and the session's goroutine
// carries on without waiting. net.Dialer, for the same connect, starts a
// goroutine to watch the context, arms a timer for the deadline, parks the
// dialing goroutine until the poller reports the connect, reads both
// addresses back and sets its options one by one: about 25 allocations and
// two goroutine hand-offs per session (bench/README.md, issue 14).
//
// Its sockets get no keepalive: the health checks watch the backend, and a
// backend marked down has its sessions closed.
type Dialer struct {
	// Check, if set, sees each address before it is dialed (a host name's,
	// once resolved); an error skips the address.
	Check func(netip.Addr) error
}

// TCP states from TCP_INFO (include/net/tcp_states.h).
const (
	tcpSynSent = 2
	tcpClose   = 7
)

// Dial connects to address (host:port) within timeout, or until ctx is
// done. A host name is resolved on every dial, as net.Dialer does (DNS may
// move a runtime), and its addresses are tried in turn.
func (d *Dialer) Dial(ctx context.Context, address string, timeout time.Duration) (*Socket, error) {
	deadline := time.Now().Add(timeout)
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "invalid port", Addr: address}}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return d.dialAddr(ctx, netip.AddrPortFrom(ip.Unmap(), uint16(port)), deadline)
	}
	rctx, cancel := context.WithDeadline(ctx, deadline)
	ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	cancel()
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	var first error
	for _, ip := range ips {
		s, err := d.dialAddr(ctx, netip.AddrPortFrom(ip.Unmap(), uint16(port)), deadline)
		if err == nil {
			return s, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

func (d *Dialer) dialAddr(ctx context.Context, ap netip.AddrPort, deadline time.Time) (*Socket, error) {
	raddr := net.TCPAddrFromAddrPort(ap)
	fail := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: err} }
	if d.Check != nil {
		if err := d.Check(ap.Addr()); err != nil {
			return nil, fail(err)
		}
	}
	var sa unix.RawSockaddrAny
	salen, err := rawSockaddr(ap, &sa)
	if err != nil {
		return nil, fail(err)
	}
	fd, err := unix.Socket(int(sa.Addr.Family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fail(os.NewSyscallError("socket", err))
	}
	if err := setTCPOption(fd, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return nil, fail(os.NewSyscallError("setsockopt", err))
	}
	enableInq(fd) // without it (Linux before 4.18) the pump reads until EAGAIN
	// A raw connect: on loopback it runs the whole handshake inline, long
	// enough for the runtime to hand the P away if it knew (see Socket).
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(salen))
	if errno != 0 && errno != unix.EINPROGRESS && errno != unix.EINTR {
		unix.Close(fd)
		return nil, fail(os.NewSyscallError("connect", errno))
	}
	// Most often the connect has completed (or failed) by now, and this
	// is the only look needed; else the poller waits for it.
	done, err := connected(fd)
	if done && err != nil {
		unix.Close(fd)
		return nil, fail(err)
	}
	f := os.NewFile(uintptr(fd), "backend") // into the runtime's poller
	s := newSocket(f, fd, localAddr(fd), raddr)
	if !done {
		if err := s.awaitConnect(ctx, deadline); err != nil {
			f.Close()
			return nil, fail(err)
		}
	}
	return s, nil
}

// awaitConnect waits for a connect in progress under the deadline, or
// until ctx is done.
func (s *Socket) awaitConnect(ctx context.Context, deadline time.Time) error {
	var err error
	s.c.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { s.c.SetWriteDeadline(past) })
	werr := s.rc.Write(func(fd uintptr) bool {
		var done bool
		done, err = connected(int(fd))
		return done
	})
	stop()
	s.c.SetWriteDeadline(time.Time{})
	switch {
	case werr == nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(werr, os.ErrDeadlineExceeded):
		return errDialTimeout
	}
	return werr
}

// errDialTimeout is a connect that ran out of time, as net.Dialer says it.
var errDialTimeout error = dialTimeout{}

type dialTimeout struct{}

func (dialTimeout) Error() string   { return "i/o timeout" }
func (dialTimeout) Timeout() bool   { return true }
func (dialTimeout) Temporary() bool { return true }
func (dialTimeout) Is(target error) bool {
	return target == os.ErrDeadlineExceeded
}

// connected says whether the connect on fd has completed, and its error
// if it failed.
func connected(fd int) (bool, error) {
	var info unix.TCPInfo
	n := uint32(unix.SizeofTCPInfo)
	_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&n)), 0)
	switch {
	case errno != 0:
		return true, os.NewSyscallError("getsockopt", errno)
	case info.State == tcpSynSent:
		return false, nil
	case info.State != tcpClose:
		return true, nil // established, or already closing: connected
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return true, os.NewSyscallError("getsockopt", err)
	case soErr != 0:
		return true, os.NewSyscallError("connect", unix.Errno(soErr))
	}
	return true, os.NewSyscallError("connect", unix.ECONNREFUSED)
}

// rawSockaddr writes ap into sa for connect(2) and returns its length.
func rawSockaddr(ap netip.AddrPort, sa *unix.RawSockaddrAny) (int, error) {
	a := ap.Addr()
	if a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family, sa4.Addr = unix.AF_INET, a.As4()
		binary.BigEndian.PutUint16(portBytes(&sa4.Port), ap.Port())
		return unix.SizeofSockaddrInet4, nil
	}
	sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
	sa6.Family, sa6.Addr = unix.AF_INET6, a.As16()
	binary.BigEndian.PutUint16(portBytes(&sa6.Port), ap.Port())
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return 0, err
		}
		sa6.Scope_id = uint32(ifi.Index)
	}
	return unix.SizeofSockaddrInet6, nil
}

// localAddr is the socket's own address (for the session's log line, to
// match it with the runtime's), read with one getsockname.
func localAddr(fd int) net.Addr {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	var ap netip.AddrPort
	switch {
	case errno != 0:
	case sa.Addr.Family == unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		ap = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), binary.BigEndian.Uint16(portBytes(&sa4.Port)))
	case sa.Addr.Family == unix.AF_INET6:
		sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		ap = netip.AddrPortFrom(netip.AddrFrom16(sa6.Addr), binary.BigEndian.Uint16(portBytes(&sa6.Port)))
	}
	if !ap.IsValid() {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// portBytes is a sockaddr's port field as the bytes it holds (network
// order).
func portBytes(p *uint16) []byte { return (*[2]byte)(unsafe.Pointer(p))[:] }
