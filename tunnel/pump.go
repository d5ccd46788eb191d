package tunnel

import (
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The byte pump. Each way runs inside one syscall.RawConn.Read on its
// source socket: the callback reads, forwards, and after a short read
// returns false, so the runtime waits for readability at once. Within one
// RawConn.Read the runtime keeps the socket's readiness between waits, so
// the read that would only have said EAGAIN is skipped: two system calls per
// message instead of three. (Across separate RawConn.Read calls it is not
// kept: each resets it, so a wait there must follow a read that said
// EAGAIN.) Pooled buffers are taken for reading and given back before
// waiting, so a quiet way holds none.

// bufSize is the pump's buffer: room for two full TLS records.
const bufSize = 32 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func nanotime() int64 { return time.Now().UnixNano() }

// clientReader moves the client's bytes to the backend. It reads ciphertext
// into a staging buffer that crypto/tls takes through Conn, and sends on
// whatever plaintext crypto/tls can then deliver; crypto/tls never touches
// the socket itself (see conn.go).
type clientReader struct {
	d      *direction
	in     *[]byte // staging for ciphertext
	out    *[]byte // plaintext for the backend
	waitOK bool    // the last read was short: the socket is drained
}

func (r *clientReader) fill(fd uintptr) bool {
	d, c := r.d, r.d.t.client
	c.staged = true // from here on crypto/tls reads what fill stages
	for {
		// Send on what crypto/tls can decrypt from what it has.
		for {
			if r.out == nil {
				r.out = bufs.Get().(*[]byte)
			}
			buf := d.capped(*r.out)
			n, err := d.t.tls.Read(buf)
			if n > 0 {
				if d.forward(buf[:n]) {
					return true
				}
				continue
			}
			if err == errWouldBlock {
				break
			}
			if err != nil {
				return d.readFailed(err) // end of stream, or a TLS error
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
		n, err := unix.Read(int(fd), *r.in)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.releaseBufs()
			return false
		case err != nil:
			c.stageErr = os.NewSyscallError("read", err)
		case n == 0:
			c.stageErr = io.EOF
		default:
			c.stage = (*r.in)[:n]
			r.waitOK = n < len(*r.in)
		}
	}
}

// releaseBufs gives back the buffers, but not staging that crypto/tls has
// yet to take.
func (r *clientReader) releaseBufs() {
	if len(r.d.t.client.stage) == 0 && r.in != nil {
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
	d  *direction
	bp *[]byte
}

func (r *backendReader) fill(fd uintptr) bool {
	d := r.d
	for {
		if r.bp == nil {
			r.bp = bufs.Get().(*[]byte)
		}
		buf := d.capped(*r.bp)
		n, err := unix.Read(int(fd), buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.releaseBufs()
			return false // wait for readability, holding no buffer
		case err != nil:
			return d.readFailed(os.NewSyscallError("read", err))
		case n == 0:
			return d.readFailed(io.EOF)
		}
		if d.forward(buf[:n]) {
			return true
		}
		if n < len(buf) {
			r.releaseBufs()
			return false // the socket is drained: wait for more
		}
	}
}

func (r *backendReader) releaseBufs() {
	if r.bp != nil {
		bufs.Put(r.bp)
		r.bp = nil
	}
}
