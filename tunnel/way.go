package tunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// way is one way of a tunnel: up (client to backend) or down.
type way struct {
	t     *Tunnel
	up    bool
	src   net.Conn        // the socket it reads: the client's TCP connection, or the backend
	rc    syscall.RawConn // src's raw socket, when the raw pump reads it; nil: the portable pump
	limit int64           // bytes still to copy; -1: until src ends
	// until, if set, says where a relayed body ends (a chunked one: relay with end)
	until func(b []byte) (n int, done bool)
	n     int64 // bytes copied

	raw     rawPump    // the raw pump's state (pump_linux.go)
	stopped pumpResult // why the pump stopped: set by forward, readFailed, or the raw pump's callback
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
	if !t.opts.portable {
		w.useRaw()
	}
	if w.rc != nil && t.opts.Parker != nil {
		w.key = t.opts.Parker.newKey()
	} else {
		w.fd = -1 // not parkable
	}
	return w
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

// pump moves bytes from src until src ends, a write fails, the limit is
// reached or the wait ends (a deadline): inside one RawConn.Read where the
// socket allows (pumpRaw, Linux), else with plain reads (pumpPortable).
func (w *way) pump() (pumpResult, error) {
	if w.limit == 0 {
		return pumpComplete, nil
	}
	var res pumpResult
	var err error
	if w.rc != nil {
		err = w.pumpRaw()
	} else {
		err = w.pumpPortable()
	}
	if w.stopped != pumpWaiting {
		res, err = w.stopped, w.err
		w.stopped, w.err = pumpWaiting, nil
	}
	return res, err
}

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

// relayed forwards b, or the part of it that is the body when the way's
// framing says where the body ends; true means stop (why is recorded).
func (w *way) relayed(b []byte) bool {
	if w.until != nil {
		if k, done := w.until(b); done {
			if k > 0 && w.forward(b[:k]) {
				return true
			}
			return w.stop(pumpComplete, nil)
		}
	}
	return w.forward(b)
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

// bufSize is the pump's buffer: room for two full TLS records.
const bufSize = 32 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func nanotime() int64 { return time.Now().UnixNano() }
