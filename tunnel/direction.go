package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// direction is one way of a tunnel: up (client to backend) or down.
type direction struct {
	t     *Tunnel
	up    bool
	src   net.Conn        // the socket it reads: the client's TCP connection, or the backend
	rc    syscall.RawConn // src's raw socket; nil if it has none
	limit int64           // bytes still to copy; -1: until src ends
	n     int64           // bytes copied

	// reading: the callback run inside RawConn.Read (pump.go), cr's for
	// the way up, br's for the way down
	fill  func(fd uintptr) bool
	cr    clientReader
	br    backendReader
	ended pumpEnd // why fill stopped the read
	err   error

	// parking, under t.mu
	phase      phase
	fd         int    // src's descriptor, for the parker; -1 when not parkable
	key        uint64 // the parker's key for it
	registered bool   // src is in the parker's epoll set
}

// pumpEnd says why a pump stopped.
type pumpEnd uint8

const (
	pumpWaiting     pumpEnd = iota // not stopped by the callback: the wait ended (a deadline)
	pumpEOF                        // src ended cleanly
	pumpComplete                   // the limit was reached
	pumpReadFailed                 // reading src failed
	pumpWriteFailed                // writing the destination failed
)

func newDirection(t *Tunnel, up bool, limit int64) *direction {
	d := &direction{t: t, up: up, limit: limit, fd: -1}
	if up {
		d.src = t.client.Socket
	} else {
		d.src = t.backend
	}
	switch src := d.src.(type) {
	case *Socket: // TCP_INQ is on already
		d.rc, d.fd = src.rc, src.fd
	case syscall.Conn:
		if rc, err := src.SyscallConn(); err == nil {
			d.rc = rc
			rc.Control(func(fd uintptr) {
				enableInq(int(fd))
				d.fd = int(fd)
			})
		}
	}
	if d.rc != nil && t.opts.Parker != nil {
		d.key = t.opts.Parker.newKey()
	} else {
		d.fd = -1 // not parkable
	}
	d.cr.d, d.br.d = d, d
	if up {
		d.fill = d.cr.fill
	} else {
		d.fill = d.br.fill
	}
	return d
}

// release gives back the reader's buffers.
func (d *direction) release() {
	if d.up {
		d.cr.releaseBufs()
	} else {
		d.br.releaseBufs()
	}
}

// run pumps until the way ends or parks. runUp and runDown name the
// goroutine in a dump, so that it says which way a stuck session is stuck.
func (d *direction) run() {
	if d.up {
		d.runUp()
	} else {
		d.runDown()
	}
}

func (d *direction) runUp()   { d.loop() }
func (d *direction) runDown() { d.loop() }

func (d *direction) loop() {
	t := d.t
	for {
		end, err := d.pump()
		ev := d.event(end, err)
		if end == pumpWaiting && errors.Is(err, os.ErrDeadlineExceeded) {
			t.mu.Lock()
			again, parkedNow, wev := t.waitOver(d)
			t.mu.Unlock()
			if again {
				continue
			}
			if parkedNow {
				return // the parker starts a fresh goroutine when it is time
			}
			ev = wev
		}
		d.end(ev, err)
		return
	}
}

// event names what ended a pump, for step.
func (d *direction) event(end pumpEnd, err error) event {
	switch end {
	case pumpEOF:
		return evEOF
	case pumpComplete:
		return evComplete
	case pumpWriteFailed:
		if d.up {
			return evBackendBroke
		}
		return evClientBroke
	}
	// A failed read or wait on src.
	if d.up {
		return evClientBroke
	}
	return evBackendBroke
}

// end records the way's end (ev; 0 when the tunnel was already stopping)
// and does what that asks, outside the lock; the last way finishes the tunnel.
func (d *direction) end(ev event, err error) {
	t := d.t
	if ev != 0 {
		t.mu.Lock()
		act := t.step(ev, d, err)
		t.mu.Unlock()
		t.after(act, d)
	}
	t.mu.Lock()
	act := t.step(evEnded, d, nil)
	t.mu.Unlock()
	t.after(act, d)
}

// pump moves bytes from src inside one RawConn.Read until src ends, a
// write fails, the limit is reached or the wait ends (a deadline).
func (d *direction) pump() (pumpEnd, error) {
	if d.limit == 0 {
		return pumpComplete, nil
	}
	if d.rc == nil {
		return pumpReadFailed, errNoRawConn
	}
	err := d.rc.Read(d.fill)
	d.release()
	if d.ended != pumpWaiting {
		end, err := d.ended, d.err
		d.ended, d.err = pumpWaiting, nil
		return end, err
	}
	return pumpWaiting, err
}

// errNoRawConn ends a way whose socket has no raw form (closed).
var errNoRawConn = errors.New("socket unavailable")

// stop ends the pump from inside the callback.
func (d *direction) stop(end pumpEnd, err error) bool {
	d.ended, d.err = end, err
	return true
}

// forward writes b to the way's destination; true means stop (why is
// recorded). The readers cut b to the limit beforehand.
func (d *direction) forward(b []byte) bool {
	d.t.lastActive.Store(nanotime())
	var err error
	if d.up {
		_, err = d.t.backend.Write(b)
	} else {
		_, err = d.t.tls.Write(b)
	}
	if err != nil {
		return d.stop(pumpWriteFailed, err)
	}
	d.n += int64(len(b))
	if d.limit > 0 {
		if d.limit -= int64(len(b)); d.limit == 0 {
			return d.stop(pumpComplete, nil)
		}
	}
	return false
}

// capped cuts buf to what the way may still copy.
func (d *direction) capped(buf []byte) []byte {
	if d.limit >= 0 && int64(len(buf)) > d.limit {
		return buf[:d.limit]
	}
	return buf
}

// readFailed records how reading src ended: EOF is a clean end.
func (d *direction) readFailed(err error) bool {
	if errors.Is(err, io.EOF) {
		return d.stop(pumpEOF, nil)
	}
	return d.stop(pumpReadFailed, err)
}

// passEOF passes a clean end on: a FIN to the backend, or close_notify and
// a FIN to the client.
func (d *direction) passEOF() {
	if d.up {
		closeWrite(d.t.backend)
		return
	}
	d.t.tls.CloseWrite()
	d.t.client.CloseWrite()
	d.t.mu.Lock()
	d.t.notified = true
	d.t.mu.Unlock()
}

// closeWrite half-closes a TCP connection (FIN), if it can.
func closeWrite(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
}
