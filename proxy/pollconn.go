package proxy

import (
	"bufio"
	"io"
	"net"
	"syscall"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// pollConn is the client's TCP connection as crypto/tls sees it: reads
// block as usual, but in poll mode a read that would block returns
// errWouldBlock at once, so the pump can collect what crypto/tls can
// deliver without waiting. It also serves first what a PROXY protocol
// header's parser read past the header.
type pollConn struct {
	*net.TCPConn
	rc      syscall.RawConn
	pending []byte // read past a PROXY protocol header, served first
	poll    bool   // only the goroutine reading the client sets it

	// attempt state, bound once so reading allocates nothing
	p     []byte
	n     int
	err   error
	tryFn func(uintptr) bool
}

func newPollConn(c *net.TCPConn) (*pollConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	pc := &pollConn{TCPConn: c, rc: rc}
	pc.tryFn = pc.try
	return pc, nil
}

// errWouldBlock is what a poll-mode read returns when the socket is empty.
// It is a temporary timeout, so crypto/tls keeps its state and a later Read
// carries on where this one stopped.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "read would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (c *pollConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if !c.poll {
		return c.TCPConn.Read(p)
	}
	c.p = p
	err := c.rc.Read(c.tryFn)
	c.p = nil
	if err != nil {
		return 0, err // a deadline or a closed connection
	}
	return c.n, c.err
}

// try makes one non-blocking read and never waits.
func (c *pollConn) try(fd uintptr) bool {
	for {
		n, err := unix.Read(int(fd), c.p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.n, c.err = 0, errWouldBlock
		case err != nil:
			c.n, c.err = 0, &net.OpError{Op: "read", Net: "tcp", Err: err}
		case n == 0:
			c.n, c.err = 0, io.EOF
		default:
			c.n, c.err = n, nil
		}
		return true
	}
}

// readProxyHeader reads a PROXY protocol v1 or v2 header (required: the
// policy is explicit) with go-proxyproto's parser. What the parser read
// past the header is kept to be served before the socket.
func (c *pollConn) readProxyHeader(deadline time.Time) (*proxyproto.Header, error) {
	c.TCPConn.SetReadDeadline(deadline)
	br := bufio.NewReaderSize(c.TCPConn, 256)
	h, err := proxyproto.Read(br)
	if err != nil {
		return nil, err
	}
	if n := br.Buffered(); n > 0 {
		rest, _ := br.Peek(n)
		c.pending = append([]byte(nil), rest...)
	}
	return h, nil
}
