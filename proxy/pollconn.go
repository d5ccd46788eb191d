package proxy

import (
	"bufio"
	"io"
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// pollConn is the client's TCP connection as crypto/tls sees it. Until the
// tunnel starts, reads block as usual. In the tunnel the client direction
// reads the socket itself (clientReader) and stages what it read here;
// crypto/tls then reads only staged bytes, and a read with nothing staged
// returns errWouldBlock at once instead of touching the socket. It also
// serves first what a PROXY protocol header's parser read past the header.
type pollConn struct {
	*net.TCPConn
	pending []byte // read past a PROXY protocol header, served first
	poll    bool   // staged mode; only the goroutine reading the client sets it
	stage   []byte // bytes the client direction read, not yet taken by crypto/tls
	stageEr error  // how the socket ended, once it has
}

func newPollConn(c *net.TCPConn) *pollConn { return &pollConn{TCPConn: c} }

// errWouldBlock is what a staged-mode read returns when nothing is staged.
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
	if len(c.stage) > 0 {
		n := copy(p, c.stage)
		c.stage = c.stage[n:]
		return n, nil
	}
	if c.stageEr != nil {
		return 0, c.stageEr
	}
	return 0, errWouldBlock
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

var _ io.Reader = (*pollConn)(nil)
