package tunnel

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// way is one way of a tunnel: up (client to backend) or down.
type way struct {
	t     *Tunnel
	up    bool
	src   net.Conn        // the socket it reads: the client's TCP connection, or the backend
	rc    syscall.RawConn // src's raw socket; nil if it has none
	limit int64           // bytes still to copy; -1: until src ends
	// until, if set, says where a relayed body ends (a chunked one: relay with end)
	until func(b []byte) (n int, done bool)
	n     int64 // bytes copied

	// reading: the callback run inside RawConn.Read (the pump, below), cr's for
	// the way up, br's for the way down
	fill    func(fd uintptr) bool
	cr      clientReader
	br      backendReader
	stopped pumpResult // why fill stopped the read
	err     error

	// parking, under t.mu
	phase      phase
	fd         int    // src's descriptor, for the parker; -1 when not parkable
	key        uint64 // the parker's key for it
	registered bool   // src is in the parker's epoll set
}

// pumpResult says why a pump stopped.
type pumpResult uint8

const (
	pumpWaiting     pumpResult = iota // not stopped by the callback: the wait ended (a deadline)
	pumpEOF                           // src ended cleanly
	pumpComplete                      // the limit was reached
	pumpReadFailed                    // reading src failed
	pumpWriteFailed                   // writing the destination failed
)

func newWay(t *Tunnel, up bool, limit int64) *way {
	w := &way{t: t, up: up, limit: limit, fd: -1}
	if up {
		w.src = t.client.Socket
	} else {
		w.src = t.backend
	}
	switch src := w.src.(type) {
	case *Socket: // TCP_INQ is on already
		w.rc, w.fd = src.rc, src.fd
	case syscall.Conn:
		if rc, err := src.SyscallConn(); err == nil {
			w.rc = rc
			rc.Control(func(fd uintptr) {
				enableInq(int(fd))
				w.fd = int(fd)
			})
		}
	}
	if w.rc != nil && t.opts.Parker != nil {
		w.key = t.opts.Parker.newKey()
	} else {
		w.fd = -1 // not parkable
	}
	w.cr.w, w.br.w = w, w
	if up {
		w.fill = w.cr.fill
	} else {
		w.fill = w.br.fill
	}
	return w
}

// release gives back the reader's buffers.
func (w *way) release() {
	if w.up {
		w.cr.releaseBufs()
	} else {
		w.br.releaseBufs()
	}
}

// run pumps until the way ends or parks. runUp and runDown name the
// goroutine in a dump, so that it says which way a stuck session is stuck.
func (w *way) run() {
	if w.up {
		w.runUp()
	} else {
		w.runDown()
	}
}

func (w *way) runUp()   { w.loop() }
func (w *way) runDown() { w.loop() }

func (w *way) loop() {
	t := w.t
	for {
		res, err := w.pump()
		ev := w.event(res, err)
		if res == pumpWaiting && errors.Is(err, os.ErrDeadlineExceeded) {
			t.mu.Lock()
			again, parkedNow, wev := t.waitOver(w)
			t.mu.Unlock()
			if again {
				continue
			}
			if parkedNow {
				return // the parker starts a fresh goroutine when it is time
			}
			ev = wev
		}
		w.exit(ev, err)
		return
	}
}

// event names what ended a pump, for step.
func (w *way) event(res pumpResult, err error) event {
	switch res {
	case pumpEOF:
		return evEOF
	case pumpComplete:
		return evComplete
	case pumpWriteFailed:
		if w.up {
			return evBackendBroke
		}
		return evClientBroke
	}
	// A failed read or wait on src.
	if w.up {
		return evClientBroke
	}
	return evBackendBroke
}

// exit records how the way ended (ev; 0 when the tunnel was already stopping)
// and does what that asks, outside the lock; the last way finishes the tunnel.
func (w *way) exit(ev event, err error) {
	t := w.t
	if ev != 0 {
		t.mu.Lock()
		act := t.step(ev, w, err)
		t.mu.Unlock()
		t.after(act, w)
	}
	t.mu.Lock()
	act := t.step(evWayExited, w, nil)
	t.mu.Unlock()
	t.after(act, w)
}

// pump moves bytes from src inside one RawConn.Read until src ends, a
// write fails, the limit is reached or the wait ends (a deadline).
func (w *way) pump() (pumpResult, error) {
	if w.limit == 0 {
		return pumpComplete, nil
	}
	if w.rc == nil {
		return pumpReadFailed, errNoRawConn
	}
	err := w.rc.Read(w.fill)
	w.release()
	if w.stopped != pumpWaiting {
		res, err := w.stopped, w.err
		w.stopped, w.err = pumpWaiting, nil
		return res, err
	}
	return pumpWaiting, err
}

// errNoRawConn ends a way whose socket has no raw form (closed).
var errNoRawConn = errors.New("socket unavailable")

// stop ends the pump from inside the callback.
func (w *way) stop(res pumpResult, err error) bool {
	w.stopped, w.err = res, err
	return true
}

// forward writes b to the way's destination; true means stop (why is
// recorded). The readers cut b to the limit beforehand.
func (w *way) forward(b []byte) bool {
	w.t.lastActive.Store(nanotime())
	var err error
	if w.up {
		_, err = w.t.backend.Write(b)
	} else {
		_, err = w.t.tls.Write(b)
	}
	if err != nil {
		return w.stop(pumpWriteFailed, err)
	}
	w.n += int64(len(b))
	if w.limit > 0 {
		if w.limit -= int64(len(b)); w.limit == 0 {
			return w.stop(pumpComplete, nil)
		}
	}
	return false
}

// capped cuts buf to what the way may still copy.
func (w *way) capped(buf []byte) []byte {
	if w.limit >= 0 && int64(len(buf)) > w.limit {
		return buf[:w.limit]
	}
	return buf
}

// readFailed records how reading src ended: EOF is a clean end.
func (w *way) readFailed(err error) bool {
	if errors.Is(err, io.EOF) {
		return w.stop(pumpEOF, nil)
	}
	return w.stop(pumpReadFailed, err)
}

// passEOF passes a clean end on: a FIN to the backend, or close_notify and
// a FIN to the client.
func (w *way) passEOF() {
	if w.up {
		closeWrite(w.t.backend)
		return
	}
	w.t.tls.CloseWrite()
	w.t.client.CloseWrite()
	w.t.mu.Lock()
	w.t.notified = true
	w.t.mu.Unlock()
}

// closeWrite half-closes a TCP connection (FIN), if it can.
func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
}

// The byte pump. Each way runs inside one syscall.RawConn.Read on its
// source socket: the callback reads, forwards, and returns false when the
// socket is drained, so the runtime waits for readability. Go's netpoller
// is edge-triggered, and RawConn.Read forgets readiness that came before it
// began, so a wait is only safe when nothing at all is pending: not only no
// bytes but no FIN either (a read that returns data does not report a FIN
// queued behind it). Reads therefore go through recvmsg with TCP_INQ
// (Linux 4.18), whose hint says whether anything is left; with the hint, a
// drained socket costs no extra read that would only say EAGAIN, and
// without it (an older kernel) the pump reads until EAGAIN. Pooled buffers
// are taken for reading and given back before waiting, so a quiet way
// holds none.

// bufSize is the pump's buffer: room for two full TLS records.
const bufSize = 32 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func nanotime() int64 { return time.Now().UnixNano() }

// clientReader moves the client's bytes to the backend. It reads ciphertext
// into a staging buffer that crypto/tls takes through Conn, and sends on
// whatever plaintext crypto/tls can then deliver; crypto/tls never touches
// the socket itself (see conn.go).
type clientReader struct {
	w      *way
	in     *[]byte // staging for ciphertext
	out    *[]byte // plaintext for the backend
	waitOK bool    // the last read left nothing pending: the socket is drained
	// starved: crypto/tls asked for bytes beyond what was staged; until
	// more are, another Read would only say so again (and allocate).
	starved bool
	oob     inqBuf
}

func (r *clientReader) fill(fd uintptr) bool {
	w, c := r.w, r.w.t.client
	c.staged = true // from here on crypto/tls reads what fill stages
	for {
		// Send on what crypto/tls can decrypt from what it has.
		for !r.starved {
			if r.out == nil {
				r.out = bufs.Get().(*[]byte)
			}
			buf := w.capped(*r.out)
			n, err := w.t.tls.Read(buf)
			if n > 0 {
				if w.forward(buf[:n]) {
					return true
				}
				continue
			}
			if err == errWouldBlock {
				r.starved = true
				break
			}
			if err != nil {
				return w.readFailed(err) // end of stream, or a TLS error
			}
		}
		if r.waitOK {
			r.waitOK = false
			r.releaseBufs()
			return false // drained: wait for more
		}
		if r.in == nil {
			r.in = bufs.Get().(*[]byte)
		}
		n, more, err := readPending(int(fd), *r.in, &r.oob)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.releaseBufs()
			return false
		case err != nil:
			c.stageErr = os.NewSyscallError("recvmsg", err)
			r.starved = false
		case n == 0:
			c.stageErr = io.EOF
			r.starved = false
		default:
			c.stage = (*r.in)[:n]
			r.waitOK = !more
			r.starved = false
		}
	}
}

// releaseBufs gives back the buffers, but not staging that crypto/tls has
// yet to take.
func (r *clientReader) releaseBufs() {
	if len(r.w.t.client.stage) == 0 && r.in != nil {
		bufs.Put(r.in)
		r.in = nil
	}
	if r.out != nil {
		bufs.Put(r.out)
		r.out = nil
	}
}

// backendReader moves the backend's bytes to the client.
type backendReader struct {
	w   *way
	bp  *[]byte
	oob inqBuf
}

func (r *backendReader) fill(fd uintptr) bool {
	w := r.w
	for {
		if r.bp == nil {
			r.bp = bufs.Get().(*[]byte)
		}
		buf := w.capped(*r.bp)
		n, more, err := readPending(int(fd), buf, &r.oob)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.releaseBufs()
			return false // wait for readability, holding no buffer
		case err != nil:
			return w.readFailed(os.NewSyscallError("recvmsg", err))
		case n == 0:
			return w.readFailed(io.EOF)
		}
		if w.until != nil {
			if k, done := w.until(buf[:n]); done {
				if k > 0 && w.forward(buf[:k]) {
					return true
				}
				return w.stop(pumpComplete, nil)
			}
		}
		if w.forward(buf[:n]) {
			return true
		}
		if !more {
			r.releaseBufs()
			return false // nothing pending, not even a FIN: wait for more
		}
	}
}

func (r *backendReader) releaseBufs() {
	if r.bp != nil {
		bufs.Put(r.bp)
		r.bp = nil
	}
}

// inqBuf receives TCP_INQ's control message.
type inqBuf [unix.SizeofCmsghdr + 8]byte

// enableInq asks the kernel for TCP_INQ's hint on fd's reads. (A raw
// setsockopt measured no different, bench/README.md item 16.)
func enableInq(fd int) { unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_INQ, 1) }

// readPending reads like read(2) and says whether anything is still
// pending on the socket: TCP_INQ's hint counts the bytes left, and is 1
// once only a FIN is left (tcp_inq_hint in the kernel's net/ipv4/tcp.c).
// Without the hint it says more, so the caller reads until EAGAIN.
func readPending(fd int, buf []byte, oob *inqBuf) (n int, more bool, err error) {
	// unix.Recvmsg would allocate its source address on every call; a
	// connected socket has none to report.
	iov := unix.Iovec{Base: &buf[0]}
	iov.SetLen(len(buf))
	msg := unix.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if errno != 0 {
		return 0, false, errno
	}
	more = true
	if msg.Controllen >= unix.SizeofCmsghdr+4 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
			more = binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr:]) != 0
		}
	}
	return int(r), more, nil
}
