package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The byte pump: once a head has been answered, bytes go both ways as they
// are, never parsed. Each direction ends with a half-close of the other
// side (close_notify and FIN), so a WebSocket close frame is never cut off.

// copyBufSize is the pump's buffer: room for two full TLS records.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// lingerTimeout bounds how long the open direction of a half-closed session
// may stay quiet before the session is closed: a peer that never closes its
// side must not pin the session.
const lingerTimeout = 10 * time.Second

// errIdle ends a session that saw no bytes either way for the idle timeout.
var errIdle = errors.New("idle timeout")

// direction is one way of the pump.
type direction struct {
	src, dst net.Conn
	// limit is how many bytes to copy; -1 copies until src ends.
	limit int64
	n     int64
	// readErr says the copy ended at src (EOF or error) rather than at a
	// failed write to dst.
	readErr bool
}

// An idle signaling session must cost little: it may sit quiet for hours,
// and thousands may be open. So neither direction holds a pooled buffer
// while it waits, and both wait in shallow frames. The client direction
// takes from crypto/tls all it can deliver without waiting (pollConn in poll
// mode), gives the buffer back, and waits for the socket; the backend
// direction waits for readability on the raw socket and takes a buffer only
// for the read itself. Reading through crypto/tls until it would block
// before waiting means a record it has already buffered is never stranded.

// copyClientToBackend and copyBackendToClient are named so that a goroutine
// dump says which way a stuck session is stuck. Each returns nil when its
// source ended cleanly (EOF) or its limit was reached.
func (s *session) copyClientToBackend(d *direction) error {
	r := &tlsReader{tc: s.tc, pc: s.pc}
	attempt := r.read
	for d.limit != 0 {
		n, err := s.read(d.src, attempt)
		if n > 0 {
			if werr := d.write((*r.bp)[:n]); werr != nil {
				r.release()
				return werr
			}
		}
		r.release()
		if err != nil {
			return d.readEnded(err)
		}
	}
	return nil
}

// tlsReader reads the client through crypto/tls in poll mode.
type tlsReader struct {
	tc *tls.Conn
	pc *pollConn
	bp *[]byte
}

// read returns the bytes crypto/tls can deliver now, in r.bp, waiting for
// the socket (holding no buffer) when there are none.
func (r *tlsReader) read() (int, error) {
	for {
		if r.bp == nil {
			r.bp = copyBufs.Get().(*[]byte)
		}
		buf := *r.bp
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.tc.Read(buf[n:])
			n += m
		}
		if err == errWouldBlock {
			err = nil
		}
		if n > 0 || err != nil {
			return n, err // an error after data comes back on the next call
		}
		r.release()
		if err := r.pc.waitReadable(); err != nil {
			return 0, err
		}
	}
}

func (r *tlsReader) release() {
	if r.bp != nil {
		copyBufs.Put(r.bp)
		r.bp = nil
	}
}

func (s *session) copyBackendToClient(d *direction) error {
	rc, err := d.src.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	r := &rawReader{}
	fill := r.fill
	attempt := func() (int, error) {
		if err := rc.Read(fill); err != nil {
			return 0, err
		}
		return r.n, r.err
	}
	for d.limit != 0 {
		n, err := s.read(d.src, attempt)
		if n > 0 {
			if werr := d.write((*r.bp)[:n]); werr != nil {
				r.release()
				return werr
			}
		}
		r.release()
		if err != nil {
			return d.readEnded(err)
		}
	}
	return nil
}

// rawReader reads a socket from inside syscall.RawConn.Read: it takes a
// pooled buffer for each read attempt and gives it back when the socket has
// nothing, so a quiet connection holds none. fill is bound once per
// direction, so the steady state allocates nothing.
type rawReader struct {
	bp  *[]byte
	n   int
	err error
}

func (r *rawReader) fill(fd uintptr) bool {
	if r.bp == nil {
		r.bp = copyBufs.Get().(*[]byte)
	}
	for {
		n, err := unix.Read(int(fd), *r.bp)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.release()
			return false // wait for readability, holding no buffer
		case err != nil:
			r.n, r.err = 0, os.NewSyscallError("read", err)
		case n == 0:
			r.n, r.err = 0, io.EOF
		default:
			r.n, r.err = n, nil
		}
		return true
	}
}

func (r *rawReader) release() {
	if r.bp != nil {
		copyBufs.Put(r.bp)
		r.bp = nil
	}
}

// write sends b on, up to the direction's limit.
func (d *direction) write(b []byte) error {
	if d.limit >= 0 && int64(len(b)) > d.limit {
		b = b[:d.limit]
	}
	if _, err := d.dst.Write(b); err != nil {
		return err
	}
	d.n += int64(len(b))
	if d.limit > 0 {
		d.limit -= int64(len(b))
	}
	return nil
}

// readEnded turns the error that ended reading into the direction's
// result: nil for a clean end of stream.
func (d *direction) readEnded(err error) error {
	d.readErr = true
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// read reads from c, keeping the session alive while either direction
// moves: a read deadline is only pushed back when it expires, so the data
// path does not touch timers on every read.
func (s *session) read(c net.Conn, attempt func() (int, error)) (int, error) {
	for {
		n, err := attempt()
		if n > 0 {
			s.lastActive.Store(time.Now().UnixNano())
			return n, err
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || s.halted.Load() {
			return 0, err
		}
		now := time.Now()
		if l := s.lingerUntil.Load(); l != 0 {
			if now.UnixNano() >= l {
				return 0, err
			}
			c.SetReadDeadline(time.Unix(0, l))
			continue
		}
		next := time.Unix(0, s.lastActive.Load()).Add(time.Duration(s.idle.Load()))
		if !now.Before(next) {
			return 0, errIdle
		}
		c.SetReadDeadline(next)
		// A halt or linger that ran between the checks above and the
		// SetReadDeadline had its deadline overwritten: apply it again.
		if s.halted.Load() {
			return 0, err
		}
		if l := s.lingerUntil.Load(); l != 0 {
			c.SetReadDeadline(time.Unix(0, l))
		}
	}
}

// startUpstream starts copying the client's bytes to the backend, before
// the response head is read: a request body must reach the backend before it
// can answer. The returned channel is closed when the copy has ended.
func (s *session) startUpstream(backend net.Conn) (*direction, <-chan struct{}) {
	// Until the response head arrives, the response timeout guards the
	// exchange; a client waiting quietly for it is not idle.
	wait := max(s.srv.opts.TunnelTimeout, s.srv.opts.ResponseTimeout)
	s.idle.Store(int64(wait))
	now := time.Now()
	s.lastActive.Store(now.UnixNano())
	s.tc.SetReadDeadline(now.Add(wait))
	d := &direction{src: s.tc, dst: backend, limit: -1}
	s.pc.poll = true // from here on only the pump reads the client
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.directionEnded(d, true, s.copyClientToBackend(d))
	}()
	return d, done
}

// relayDown copies the backend's bytes to the client in the session's own
// goroutine. In a tunnel (after a 101) the session lasts until both sides
// have closed; otherwise it ends once the response (respLimit bytes, or up
// to the backend's close when -1) has been relayed.
func (s *session) relayDown(backend net.Conn, respLimit int64) *direction {
	idle := s.srv.opts.ResponseTimeout
	if s.tunnel.Load() {
		idle = s.srv.opts.TunnelTimeout
	}
	s.idle.Store(int64(idle))
	deadline := time.Now().Add(idle)
	s.tc.SetReadDeadline(deadline)
	backend.SetReadDeadline(deadline)
	// The client side may have ended or been stopped meanwhile: keep its
	// deadline, which the lines above replaced.
	if s.halted.Load() {
		s.halt()
	} else if s.lingerUntil.Load() != 0 {
		s.linger()
	}
	d := &direction{src: backend, dst: s.tc, limit: respLimit}
	s.directionEnded(d, false, s.copyBackendToClient(d))
	return d
}

// directionEnded records why one direction ended and acts on it.
func (s *session) directionEnded(d *direction, up bool, err error) {
	if s.halted.Load() {
		return // whoever halted the session has set the reason
	}
	tunnel := s.tunnel.Load()
	switch {
	case errors.Is(err, errIdle):
		s.setReason("idle timeout")
	case err != nil && up == d.readErr:
		// Reading from the client or writing to it failed.
		s.setReason("client connection lost")
	case err != nil:
		s.setReason("backend connection lost")
	case up:
		s.setReason("client closed")
	case !tunnel && d.limit == 0:
		s.setReason("response complete")
	default:
		s.setReason("backend closed")
	}
	switch {
	case err != nil:
		// A broken side breaks the session: stop the other direction.
		s.abort()
	case up:
		closeWrite(d.dst)
		if tunnel {
			s.linger()
		}
	case tunnel:
		closeWriteTLS(s.tc)
		s.linger()
	default:
		// The response is complete; the request side has nothing more to
		// say that the backend would read.
		s.halt()
	}
}

// linger gives the open direction lingerTimeout to finish.
func (s *session) linger() {
	t := time.Now().Add(lingerTimeout)
	s.lingerUntil.Store(t.UnixNano())
	s.tc.SetReadDeadline(t)
	s.mu.Lock()
	if s.backend != nil {
		s.backend.SetReadDeadline(t)
	}
	s.mu.Unlock()
}

// closeWrite half-closes a TCP connection (FIN), if it can.
func closeWrite(c net.Conn) {
	if tc := tcpConn(c); tc != nil {
		tc.CloseWrite()
	}
}

// closeWriteTLS sends close_notify and then a FIN.
func closeWriteTLS(c interface {
	CloseWrite() error
	NetConn() net.Conn
}) {
	c.CloseWrite()
	closeWrite(c.NetConn())
}
