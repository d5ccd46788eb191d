package tunnel

import (
	"io"
	"net"
	"time"
)

// Conn is the client's TCP connection as crypto/tls sees it: give it to
// tls.Server, and the same Conn to Open. Until the tunnel starts, reads go
// to the socket as usual. In the tunnel the way up reads the socket itself
// and stages what it read here; crypto/tls then reads only staged bytes, and
// a read with nothing staged returns a temporary error at once instead of
// touching the socket. crypto/tls keeps its state across such an error and
// a later Read carries on (pinned by TestTLSReadSurvivesTemporaryError).
type Conn struct {
	*Socket
	pending  []byte // read before crypto/tls took over (past a PROXY header): served first
	staged   bool   // staged mode; only the goroutine reading the client sets it
	stage    []byte // bytes the way up read, not yet taken by crypto/tls
	stageErr error  // how the socket ended, once it has
}

// NewConn wraps the accepted connection c. pending is what was read from c
// before (past a PROXY protocol header): crypto/tls reads it first.
func NewConn(c *net.TCPConn, pending []byte) *Conn {
	return &Conn{Socket: NewSocket(c), pending: pending}
}

// errWouldBlock is what a staged read returns when nothing is staged: a
// temporary timeout, so crypto/tls does not record it as the connection's
// final error.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "read would block" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if !c.staged {
		return c.Socket.Read(p)
	}
	if len(c.stage) > 0 {
		n := copy(p, c.stage)
		c.stage = c.stage[n:]
		return n, nil
	}
	if c.stageErr != nil {
		return 0, c.stageErr
	}
	return 0, errWouldBlock
}

// Drain half-closes c and reads what the client still sends for a moment
// before the caller closes it: closing a socket with unread data makes the
// kernel answer with a reset, which can destroy the last response before the
// client has read it.
func Drain(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, c, 64<<10)
}
