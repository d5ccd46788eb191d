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
	s       *session
	up      bool // client to backend
	dst     net.Conn
	srcConn net.Conn        // the socket it reads; its read deadline governs the wait
	rc      syscall.RawConn // srcConn's raw socket
	// limit is how many bytes to copy; -1 copies until src ends.
	limit int64
	n     int64
	// readErr says the copy ended at src (EOF or error) rather than at a
	// failed write to dst.
	readErr bool

	cr *clientReader // the client direction's reader
	rr *rawReader    // the backend direction's reader

	// parking (see park.go)
	key        uint64
	fd         int
	registered bool
	state      atomic.Int32
	parkReq    atomic.Bool
}

// A tunnel direction holds no pooled buffer while it waits, and each runs
// inside one syscall.RawConn.Read on its source socket: it reads, forwards,
// and after a short read waits for readability at once. Within one
// RawConn.Read the runtime keeps the socket's readiness between waits, so
// the read that would only have said EAGAIN is skipped: two system calls
// per message instead of three. (Across separate RawConn.Read calls it is
// not kept: each resets it, so a wait there must follow a read that said
// EAGAIN.) Pooled buffers are taken for reading and given back before
// waiting. A direction that stays quiet parks (park.go) and then holds no
// goroutine either.

// copyClientToBackend and copyBackendToClient are named so that a goroutine
// dump says which way a stuck session is stuck. Each returns nil when its
// source ended cleanly (EOF) or its limit was reached.
func (s *session) copyClientToBackend(d *direction) error {
	if d.rc == nil {
		return errNoRawConn
	}
	if d.cr == nil {
		d.cr = &clientReader{readerBase: readerBase{rc: d.rc, s: s, d: d}}
		d.cr.fillFn = d.cr.fill
		d.cr.releaseFn = d.cr.release
		s.pc.poll = true // from here on crypto/tls reads what fill stages
	}
	return s.pumpFrom(&d.cr.readerBase)
}

// readerBase is what the two directions' readers share: the socket, the
// callback run inside RawConn.Read, and how the callback ended.
type readerBase struct {
	rc        syscall.RawConn
	s         *session
	d         *direction
	fillFn    func(uintptr) bool
	releaseFn func()
	err       error // why the source ended
	werr      error // a failed write to the destination
}

// capped cuts buf to what the direction may still copy.
func (r *readerBase) capped(buf []byte) []byte {
	if r.d.limit >= 0 && int64(len(buf)) > r.d.limit {
		return buf[:r.d.limit]
	}
	return buf
}

// forward sends b on; true means the direction must stop (r.werr or r.err
// says why).
func (r *readerBase) forward(b []byte) bool {
	r.s.lastActive.Store(time.Now().UnixNano())
	if err := r.d.write(b); err != nil {
		r.werr = err
		return true
	}
	if r.d.limit == 0 {
		r.err = errLimit
		return true
	}
	return false
}

// pumpFrom runs a direction's reader until its source ends, a write fails,
// or waiting ends (idle, linger, park, halt).
func (s *session) pumpFrom(r *readerBase) error {
	for {
		err := r.rc.Read(r.fillFn)
		r.releaseFn()
		switch {
		case r.werr != nil:
			err, r.werr = r.werr, nil
			return err
		case err == nil: // the callback ended it; r.err says why
			err, r.err = r.err, nil
			if err == errLimit {
				return nil
			}
			return r.d.readEnded(err)
		}
		if retry, err := s.afterDeadline(r.d, err); !retry {
			return r.d.readEnded(err)
		}
	}
}

// clientReader moves the client's bytes to the backend from inside one
// RawConn.Read on the client socket: it reads ciphertext into a staging
// buffer that crypto/tls takes through pollConn, and sends on whatever
// plaintext crypto/tls can then deliver.
type clientReader struct {
	readerBase
	in     *[]byte // staging for ciphertext
	out    *[]byte // plaintext for the backend
	waitOK bool    // the last read was short: the socket is drained
}

func (r *clientReader) fill(fd uintptr) bool {
	pc, tc := r.s.pc, r.s.tc
	for {
		// Send on what crypto/tls can decrypt from what it has.
		for {
			if r.out == nil {
				r.out = copyBufs.Get().(*[]byte)
			}
			buf := r.capped(*r.out)
			n, err := tc.Read(buf)
			if n > 0 {
				if r.forward(buf[:n]) {
					return true
				}
				continue
			}
			if err == errWouldBlock {
				break
			}
			if err != nil {
				r.err = err // end of stream, or a TLS error
				return true
			}
		}
		if r.waitOK {
			r.waitOK = false
			r.release()
			return false // drained: wait for more
		}
		if r.in == nil {
			r.in = copyBufs.Get().(*[]byte)
		}
		n, err := unix.Read(int(fd), *r.in)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.release()
			return false
		case err != nil:
			pc.stageEr = os.NewSyscallError("read", err)
		case n == 0:
			pc.stageEr = io.EOF
		default:
			pc.stage = (*r.in)[:n]
			r.waitOK = n < len(*r.in)
		}
	}
}

func (r *clientReader) release() {
	if len(r.s.pc.stage) == 0 && r.in != nil {
		copyBufs.Put(r.in)
		r.in = nil
	}
	if r.out != nil {
		copyBufs.Put(r.out)
		r.out = nil
	}
}

func (s *session) copyBackendToClient(d *direction) error {
	if d.limit == 0 {
		return nil
	}
	if d.rc == nil {
		return errNoRawConn
	}
	if d.rr == nil {
		d.rr = &rawReader{readerBase: readerBase{rc: d.rc, s: s, d: d}}
		d.rr.fillFn = d.rr.fill
		d.rr.releaseFn = d.rr.release
	}
	return s.pumpFrom(&d.rr.readerBase)
}

// errNoRawConn ends a direction whose socket has no raw form (closed).
var errNoRawConn = errors.New("socket unavailable")

// errLimit ends a direction that has copied all it was to copy.
var errLimit = errors.New("limit reached")

// rawReader moves the backend's bytes to the client from inside one
// RawConn.Read on the backend socket (see above). fill is bound once per
// direction, so the steady state allocates nothing.
type rawReader struct {
	readerBase
	bp *[]byte
}

func (r *rawReader) fill(fd uintptr) bool {
	for {
		if r.bp == nil {
			r.bp = copyBufs.Get().(*[]byte)
		}
		buf := r.capped(*r.bp)
		n, err := unix.Read(int(fd), buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.release()
			return false // wait for readability, holding no buffer
		case err != nil:
			r.err = os.NewSyscallError("read", err)
			return true
		case n == 0:
			r.err = io.EOF
			return true
		}
		if r.forward(buf[:n]) {
			return true
		}
		if n < len(buf) {
			r.release()
			return false // the socket is drained: wait for more
		}
	}
}

func (r *rawReader) release() {
	if r.bp != nil {
		copyBufs.Put(r.bp)
		r.bp = nil
	}
}

// write sends b on; the readers cut b to the limit beforehand (capped).
func (d *direction) write(b []byte) error {
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

// afterDeadline decides what an error from waiting on d's source means:
// true to wait again (with the deadline pushed to the idle or linger time),
// or the error that ends the wait: errPark, errIdle, or err itself.
func (s *session) afterDeadline(d *direction, err error) (bool, error) {
	if !errors.Is(err, os.ErrDeadlineExceeded) || s.halted.Load() {
		return false, err
	}
	if d.parkReq.Load() {
		return false, errPark
	}
	c := d.srcConn
	now := time.Now()
	if l := s.lingerUntil.Load(); l != 0 {
		if now.UnixNano() >= l {
			return false, err
		}
		c.SetReadDeadline(time.Unix(0, l))
		return true, nil
	}
	next := time.Unix(0, s.lastActive.Load()).Add(time.Duration(s.idle.Load()))
	if !now.Before(next) {
		return false, errIdle
	}
	c.SetReadDeadline(next)
	// A halt, linger or park request that ran between the checks above
	// and the SetReadDeadline had its deadline overwritten.
	switch {
	case s.halted.Load():
		return false, err
	case d.parkReq.Load():
		return false, errPark
	}
	if l := s.lingerUntil.Load(); l != 0 {
		c.SetReadDeadline(time.Unix(0, l))
	}
	return true, nil
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
