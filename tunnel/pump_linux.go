//go:build linux

package tunnel

import (
	"encoding/binary"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

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

// rawPump is a way's state for the raw pump: the callback run inside
// RawConn.Read, cr's for the way up, br's for the way down.
type rawPump struct {
	fill func(fd uintptr) bool
	cr   clientReader
	br   backendReader
}

// useRaw sets w up for the raw pump when its source has a raw socket,
// asking for TCP_INQ's hint on its reads.
func (w *way) useRaw() {
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
	w.raw.cr.w, w.raw.br.w = w, w
	if w.up {
		w.raw.fill = w.raw.cr.fill
	} else {
		w.raw.fill = w.raw.br.fill
	}
}

// pumpRaw runs the pump inside one RawConn.Read.
func (w *way) pumpRaw() error {
	err := w.rc.Read(w.raw.fill)
	if w.up {
		w.raw.cr.releaseBufs()
	} else {
		w.raw.br.releaseBufs()
	}
	return err
}

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
		if w.relayed(buf[:n]) {
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
