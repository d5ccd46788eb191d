// Package tunnel owns a client connection's life, from accept to close,
// and runs its bytes once a request has been forwarded: the client's
// (decrypted by crypto/tls) to the backend, the backend's to the client,
// never parsed, until both ways have ended.
//
// One Tunnel per connection, made at accept (New). Its owner, the proxy's
// session, runs the TLS handshake and the request heads on its own
// goroutine (state accepted), setting deadlines through the tunnel so that
// a stop cannot be overwritten, and records how the session ended with End
// when it is the one to know (a refused head, a backend that cannot be
// reached). To forward a request it attaches the backend (Attach), writes
// the head and Opens the tunnel: the way up runs at once for the request's
// body (Options.Body bytes and no more: what a client sends after its
// request is not for the backend). The owner then reads the response head
// from the backend itself, relays it, and calls Relay (a response body,
// after which the tunnel stops) or Upgrade (after a 101: the way up starts,
// and a tunnel both ways runs until both sides have closed), which run the
// way down in the owner's goroutine. When the owner's goroutine ends
// without running the way down, it says so with Abandon. Stop ends the
// session from outside, in any state, gracefully or at once. Done is called
// once, by whichever goroutine ends last: the owner's, or a way's.
//
// Each way ends with a half-close passed on (FIN to the backend, close_notify
// and FIN to the client), so a WebSocket close frame is never cut off; the
// other way then has Linger to finish. A tunnel quiet for its idle time ends.
//
// Parking. Signaling sessions sit quiet for hours while media flows
// elsewhere, and each way of a tunnel would hold a goroutine (8 KiB of stack
// or more) waiting to read. Instead, a way that has seen nothing for the
// Parker's quiet time gives its goroutine up: its socket goes into the
// Parker's epoll set (one-shot, level-triggered, so bytes that arrived in
// the meantime wake it at once), and a fresh goroutine carries on when the
// socket becomes readable, the tunnel is stopped, or its idle or linger time
// runs out. Buffers are pooled and held only while bytes move, so a parked
// tunnel costs its TLS state and little else.
//
// Every change of state happens in step (state.go), under the tunnel's
// mutex, which also sets the sockets' deadlines to match: a deadline in the
// past is how a goroutine blocked in a read is woken, and setting it under
// the same lock as the state means no change can be overwritten by a stale
// one. The byte path itself takes no lock.
package tunnel

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one tunnel.
type Options struct {
	// Idle ends an upgraded tunnel that saw no byte either way for this
	// long (TUNNEL_TIMEOUT).
	Idle time.Duration
	// ResponseIdle bounds the quiet while a response is awaited or
	// relayed (RESPONSE_TIMEOUT). While awaited, the longer of the two
	// applies to the way up: a client waiting quietly is not idle.
	ResponseIdle time.Duration
	// Parker, if set, takes the quiet ways of upgraded tunnels off their
	// goroutines.
	Parker *Parker
	// Done is called once with the result, when the owner's goroutine and
	// every way have ended and the backend connection, if any, is closed.
	// The client's connection is left to the caller (see Result.Goodbye).
	Done func(Result)
}

// Result is how a session ended.
type Result struct {
	Up, Down int64 // bytes the ways copied client to backend, backend to client
	End      End   // what ended it first
	Detail   string
	Err      error // the error behind End, if any (End.BackendSide says whose)
	// Goodbye says the client is still owed close_notify and a FIN: the
	// session was not cut, and the two had not both closed their halves.
	Goodbye bool
}

// StopMode says how Stop ends a tunnel.
type StopMode uint8

const (
	// Graceful stops reading and lets a record being written to the
	// client finish (within writeGrace): the client then gets a goodbye.
	Graceful StopMode = iota
	// Cut stops everything at once: the client is gone, or must not wait.
	Cut
)

// Linger bounds how long the open way of a half-closed tunnel may stay
// quiet: a peer that never closes its side must not pin the session.
const Linger = 10 * time.Second

// writeGrace bounds a write to the client that a graceful stop lets
// finish: a close_notify after a torn record would reach the client as a
// bad record MAC instead of a clean end.
const writeGrace = 2 * time.Second

// past is the deadline that wakes a blocked read or write at once.
var past = time.Unix(1, 0)

// Tunnel is one client connection's life.
type Tunnel struct {
	raw     *net.TCPConn // the client's socket as accepted: its deadlines are the Conn's too
	client  *Conn        // the client's socket under crypto/tls; nil until UseConn
	tls     *tls.Conn    // the client's TLS connection over client
	backend net.Conn     // nil until Attach
	opts    Options

	lastActive atomic.Int64 // unix nanos of the last byte read either way

	mu        sync.Mutex // guards what follows, and every deadline set in the tunnel
	state     state
	ways      [2]*way   // up, down; each nil until it starts
	left      int       // the owner's goroutine (until it runs the way down or abandons it) and each way started, not yet ended
	lingerAt  time.Time // in halfClosed: when the open way's time is up
	end       End
	detail    string
	endErr    error
	clientEOF bool // the client closed its half cleanly
	notified  bool // close_notify and FIN went to the client
	goodbye   bool // set on done: Result.Goodbye
}

// New starts the life of an accepted connection: the caller's goroutine
// is its owner (see the package comment).
func New(c *net.TCPConn, o Options) *Tunnel {
	return &Tunnel{raw: c, opts: o, left: 1}
}

// UseConn makes the Conn crypto/tls is to read, with pending (bytes read
// before, past a PROXY header) served first, and returns the TLS
// connection over it.
func (t *Tunnel) UseConn(pending []byte, tlsConf *tls.Config) *tls.Conn {
	t.client = NewConn(t.raw, pending)
	t.tls = tls.Server(t.client, tlsConf)
	return t.tls
}

// SetDeadline sets the client's deadlines, unless the session is
// stopping: a stop's deadlines must stay. It reports whether the session
// is still going; so do SetReadDeadline and SetWriteDeadline.
func (t *Tunnel) SetDeadline(at time.Time) bool {
	return t.setDeadline(func() { t.raw.SetDeadline(at) })
}

// SetReadDeadline sets the client's read deadline (see SetDeadline).
func (t *Tunnel) SetReadDeadline(at time.Time) bool {
	return t.setDeadline(func() { t.raw.SetReadDeadline(at) })
}

// SetWriteDeadline sets the client's write deadline (see SetDeadline).
func (t *Tunnel) SetWriteDeadline(at time.Time) bool {
	return t.setDeadline(func() { t.raw.SetWriteDeadline(at) })
}

// SetBackendDeadlines sets the attached backend's read and write
// deadlines, unless the session is stopping.
func (t *Tunnel) SetBackendDeadlines(read, write time.Time) bool {
	return t.setDeadline(func() {
		t.backend.SetReadDeadline(read)
		t.backend.SetWriteDeadline(write)
	})
}

func (t *Tunnel) setDeadline(set func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state >= closing {
		return false
	}
	set()
	return true
}

// Attach records the backend connection the owner dialed, unless the
// session is stopping (the caller then closes it). From now on a stop
// reaches it too, and the tunnel closes it at the end.
func (t *Tunnel) Attach(backend net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state >= closing {
		return false
	}
	t.backend = backend
	return true
}

// Forwarding reports whether a backend is attached.
func (t *Tunnel) Forwarding() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.backend != nil
}

// End records why the session ends, with words for the log and the error
// behind it, unless an end was recorded already: the first one wins.
// ClientLost also cuts the session (the client is gone: no goodbye), as a
// way that finds the client gone does.
func (t *Tunnel) End(e End, detail string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e == ClientLost {
		t.step(evClientBroke, nil, err)
		return
	}
	t.settle(e, detail, err)
}

// Open starts the tunnel once the request head has gone to the attached
// backend: the rest of the request's body (body bytes) flows to the
// backend from now on, and no more. Until Relay, Upgrade or Abandon the
// owner may read the response head from the backend (under its own read
// deadline, set before Open; a stop sets it in the past).
func (t *Tunnel) Open(body int64) {
	t.mu.Lock()
	t.moveTo(awaiting)
	t.mu.Unlock()
	t.lastActive.Store(time.Now().UnixNano())
	if body > 0 {
		t.startUp(body)
	}
}

// startUp starts the way up, copying limit bytes (-1: until the client
// ends).
func (t *Tunnel) startUp(limit int64) {
	up := newWay(t, true, limit)
	t.mu.Lock()
	t.ways[0] = up
	t.left++
	up.src.SetReadDeadline(t.readDeadline(up))
	t.mu.Unlock()
	go up.run()
}

// Relay copies a response body of limit bytes (-1: until the backend
// closes) to the client in the owner's goroutine, after the owner has
// written the response head; the tunnel then stops with a goodbye. The
// owner's goroutine is the way down from here on.
func (t *Tunnel) Relay(limit int64) { t.relay(limit, nil) }

// RelayUntil is Relay for a body whose end its framing says (a chunked
// one): end sees the bytes as they come and says how many of them are the
// body's, and whether it ended within them. The bytes go on unchanged;
// nothing past the end does.
func (t *Tunnel) RelayUntil(end func(b []byte) (n int, done bool)) { t.relay(-1, end) }

func (t *Tunnel) relay(limit int64, end func([]byte) (int, bool)) {
	w := newWay(t, false, limit)
	w.until = end
	t.mu.Lock()
	t.ways[1] = w
	t.step(evRelay, nil, nil)
	w.src.SetReadDeadline(t.readDeadline(w))
	t.mu.Unlock()
	w.run()
}

// Upgrade starts the way up and runs the way down of an upgraded
// connection in the owner's goroutine, after the owner has written the 101
// to the client (and sent the backend whatever the client sent before it).
// It returns when the way down has ended or parked. An upgrade request has
// no body (Open(0)).
func (t *Tunnel) Upgrade() {
	if p := t.opts.Parker; p != nil {
		p.track(t)
	}
	up, down := newWay(t, true, -1), newWay(t, false, -1)
	t.mu.Lock()
	t.ways[0], t.ways[1] = up, down
	t.left++
	t.step(evUpgrade, nil, nil)
	up.src.SetReadDeadline(t.readDeadline(up))
	down.src.SetReadDeadline(t.readDeadline(down))
	t.mu.Unlock()
	go up.run()
	down.run()
}

// Abandon says the owner's goroutine ends without running the way down
// (no request was forwarded, or its exchange failed). A way up still
// running is stopped gracefully, and Done may be called before Abandon
// returns.
func (t *Tunnel) Abandon() {
	t.mu.Lock()
	t.step(evStop, nil, nil)
	act := t.step(evAbandon, nil, nil)
	t.mu.Unlock()
	t.after(act, nil)
}

// Stop ends the session from outside (shutdown, the backend marked down),
// with why as its end unless one came first. It returns at once; Done
// follows when the owner and the ways have noticed.
func (t *Tunnel) Stop(how StopMode, why End) {
	t.mu.Lock()
	t.settle(why, "", nil)
	t.step(stopEvent(how), nil, nil)
	t.mu.Unlock()
}

// Stopping reports whether the tunnel is ending: a failed read of the
// response head is then the tunnel's doing, not the backend's.
func (t *Tunnel) Stopping() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state >= closing
}

func stopEvent(how StopMode) event {
	if how == Cut {
		return evCut
	}
	return evStop
}

// after does what step left to do outside the lock.
func (t *Tunnel) after(act action, w *way) {
	if act&actPassEOF != 0 {
		w.passEOF()
	}
	if act&actFinish != 0 {
		t.finish()
	}
}

// finish closes the backend and reports the result.
func (t *Tunnel) finish() {
	if t.backend != nil {
		t.backend.Close()
	}
	if p := t.opts.Parker; p != nil {
		p.untrack(t)
	}
	r := Result{End: t.end, Detail: t.detail, Err: t.endErr, Goodbye: t.goodbye}
	if w := t.ways[0]; w != nil {
		r.Up = w.n
	}
	if w := t.ways[1]; w != nil {
		r.Down = w.n
	}
	if t.opts.Done != nil {
		t.opts.Done(r)
	}
}
