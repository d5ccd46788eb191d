package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
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
	s        *session
	up       bool     // client to backend
	src, dst net.Conn // src's read deadline is set on srcConn
	srcConn  net.Conn
	// limit is how many bytes to copy; -1 copies until src ends.
	limit int64
	n     int64
	// readErr says the copy ended at src (EOF or error) rather than at a
	// failed write to dst.
	readErr bool

	rr *rawReader // the backend direction's reader

	// parking (see park.go)
	key        uint64
	fd         int
	registered bool
	state      atomic.Int32
	parkReq    atomic.Bool
}

// A tunnel direction holds no pooled buffer while it waits. The client
// direction waits in crypto/tls's Read with a small buffer on its stack (so
// a record crypto/tls has already buffered is never stranded); a message
// that does not fit is collected from crypto/tls into a pooled buffer
// without waiting (pollConn in poll mode), so it goes on in one write. The
// backend direction waits for readability on the raw socket and takes a
// buffer only for the read itself. A direction that stays quiet parks
// (park.go) and then holds no goroutine either.

// smallRead is the client direction's waiting buffer: most signaling
// messages fit in it.
const smallRead = 512

// copyClientToBackend and copyBackendToClient are named so that a goroutine
// dump says which way a stuck session is stuck. Each returns nil when its
// source ended cleanly (EOF) or its limit was reached.
func (s *session) copyClientToBackend(d *direction) error {
	var small [smallRead]byte
	attempt := func() (int, error) { return s.tc.Read(small[:]) }
	for d.limit != 0 {
		n, err := s.read(d, attempt)
		if n == len(small) {
			// There may be more: collect what crypto/tls holds.
			bp := copyBufs.Get().(*[]byte)
			buf := *bp
			copy(buf, small[:])
			n += s.collect(buf[n:])
			werr := d.write(buf[:n])
			copyBufs.Put(bp)
			if werr != nil {
				return werr
			}
		} else if n > 0 {
			if werr := d.write(small[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return d.readEnded(err)
		}
	}
	return nil
}

// collect reads into b what crypto/tls can deliver without waiting.
func (s *session) collect(b []byte) int {
	s.pc.poll = true
	n := 0
	for n < len(b) {
		m, err := s.tc.Read(b[n:])
		n += m
		if err != nil {
			break // would block; a real error comes back on the next read
		}
	}
	s.pc.poll = false
	return n
}

func (s *session) copyBackendToClient(d *direction) error {
	if d.rr == nil {
		rc, err := d.src.(syscall.Conn).SyscallConn()
		if err != nil {
			return err
		}
		d.rr = newRawReader(rc)
	}
	r := d.rr
	for d.limit != 0 {
		n, err := s.read(d, r.read)
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
	rc     syscall.RawConn
	fillFn func(uintptr) bool
	bp     *[]byte
	n      int
	err    error
}

func newRawReader(rc syscall.RawConn) *rawReader {
	r := &rawReader{rc: rc}
	r.fillFn = r.fill
	return r
}

// read waits for the socket and reads what it has, in r.bp.
func (r *rawReader) read() (int, error) {
	if err := r.rc.Read(r.fillFn); err != nil {
		return 0, err
	}
	return r.n, r.err
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
	if err == errPark {
		return err
	}
	d.readErr = true
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// read runs attempt, keeping the session alive while either direction
// moves: a read deadline is only pushed back when it expires, so the data
// path does not touch timers on every read. It returns errPark when the
// sweeper asked the direction to park.
func (s *session) read(d *direction, attempt func() (int, error)) (int, error) {
	c := d.srcConn
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
		if d.parkReq.Load() {
			return 0, errPark
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
		// A halt, linger or park request that ran between the checks above
		// and the SetReadDeadline had its deadline overwritten.
		switch {
		case s.halted.Load():
			return 0, err
		case d.parkReq.Load():
			return 0, errPark
		}
		if l := s.lingerUntil.Load(); l != 0 {
			c.SetReadDeadline(time.Unix(0, l))
		}
	}
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
