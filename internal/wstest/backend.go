package wstest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Request is a request head as the backend received it.
type Request struct {
	Method, Target string
	Header         http.Header
	Raw            []byte // the head's bytes exactly as they arrived
}

// Backend is a stand-in for the CloudXR runtime: it accepts WebSocket
// upgrades and echoes every data frame, answers a close frame with a close
// frame, and answers other requests with 200 and a short body naming the
// path.
type Backend struct {
	// FirstFrame, if set, is sent in the same write as the 101 response,
	// as a server that speaks first does.
	FirstFrame []byte
	// RawEcho echoes bytes after the 101 without parsing frames (a client
	// then reads its own masked frames back), which costs the backend
	// almost nothing: the bench uses it. It is a plain read/write loop, as
	// io.Copy between TCP connections would splice through a pipe, holding
	// two more descriptors per waiting connection.
	RawEcho bool

	ln       net.Listener
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	sessions int // upgraded connections open now
	accepted int
	requests []Request
	wg       sync.WaitGroup
	reqCh    chan Request
}

// StartBackend listens on addr ("127.0.0.1:0" for any port).
func StartBackend(addr string) (*Backend, error) {
	return StartBackendWith(addr, nil)
}

// StartBackendWith is StartBackend with options set before it accepts.
func StartBackendWith(addr string, setup func(*Backend)) (*Backend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	b := &Backend{ln: ln, conns: map[net.Conn]struct{}{}, reqCh: make(chan Request, 1024)}
	if setup != nil {
		setup(b)
	}
	b.wg.Add(1)
	go b.acceptLoop()
	return b, nil
}

// Addr is the backend's listening address.
func (b *Backend) Addr() string { return b.ln.Addr().String() }

// Port is the backend's port.
func (b *Backend) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// Requests returns the request heads received so far.
func (b *Backend) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.requests...)
}

// NextRequest returns a channel that yields each request head as it
// arrives.
func (b *Backend) NextRequest() <-chan Request { return b.reqCh }

// StopListening closes the listener but keeps open connections: the
// runtime's port stops answering while its sessions linger.
func (b *Backend) StopListening() { b.ln.Close() }

// Close stops the backend and drops every connection, as a killed runtime.
func (b *Backend) Close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// OpenConns is the number of connections the backend holds now.
func (b *Backend) OpenConns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// Sessions is the number of WebSocket sessions the backend holds now:
// upgraded connections, not yet ended. Unlike OpenConns it leaves out the
// health checks' connections, which come and go every interval.
func (b *Backend) Sessions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sessions
}

// Accepted is the number of connections the backend has accepted so far.
func (b *Backend) Accepted() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.accepted
}

func (b *Backend) acceptLoop() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.accepted++
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			b.serve(c)
		}()
	}
}

// recorder keeps the raw bytes a bufio.Reader pulled, so the head can be
// cut out exactly.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
	on  bool
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if r.on {
		r.buf.Write(p[:n])
	}
	return n, err
}

// HealthCheckAgent is the User-Agent of the proxy's health checks.
const HealthCheckAgent = "cloudxr-wss-proxy health check"

func (b *Backend) serve(c net.Conn) {
	rec := &recorder{r: c, on: true}
	br := bufio.NewReader(rec)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		raw := rec.buf.Bytes()
		if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
			raw = raw[:i+4]
		}
		r := Request{Method: req.Method, Target: req.RequestURI, Header: req.Header, Raw: append([]byte(nil), raw...)}
		// Keep what was read past the head for the next request.
		rest := append([]byte(nil), rec.buf.Bytes()[len(raw):]...)
		rec.buf.Reset()
		rec.buf.Write(rest)
		// The proxy's health checks (HEALTH_CHECK_MODE=http) are
		// answered like any request but not recorded: tests look at
		// what the sessions sent.
		if req.Header.Get("User-Agent") != HealthCheckAgent {
			b.mu.Lock()
			b.requests = append(b.requests, r)
			b.mu.Unlock()
			select {
			case b.reqCh <- r:
			default:
			}
		}
		if strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			rec.on = false
			b.echo(c, br, req)
			return
		}
		body := fmt.Sprintf("backend: %s %s\n", req.Method, req.RequestURI)
		io.Copy(io.Discard, req.Body)
		resp := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nX-Backend: yes\r\n\r\n%s", len(body), body)
		if req.Method == http.MethodHead {
			resp = resp[:len(resp)-len(body)]
		}
		if _, err := io.WriteString(c, resp); err != nil || req.Close {
			return
		}
	}
}

func (b *Backend) echo(c net.Conn, br *bufio.Reader, req *http.Request) {
	head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"
	// Counted before the 101 goes out: a client that has the 101 sees
	// its session counted.
	b.mu.Lock()
	b.sessions++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.sessions--
		b.mu.Unlock()
	}()
	if _, err := c.Write(append([]byte(head), b.FirstFrame...)); err != nil {
		return
	}
	if b.RawEcho {
		io.CopyBuffer(struct{ io.Writer }{c}, br, make([]byte, 32<<10))
		return
	}
	var out []byte
	for {
		op, payload, err := ReadFrame(br)
		if err != nil {
			return
		}
		switch op {
		case OpClose:
			c.Write(AppendFrame(out[:0], OpClose, payload, false))
			return
		case OpPing:
			out = AppendFrame(out[:0], OpPong, payload, false)
		default:
			out = AppendFrame(out[:0], op, payload, false)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
