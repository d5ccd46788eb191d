// Package tunnel runs one session's bytes once its heads have been read:
// the client's (decrypted by crypto/tls) to the backend, the backend's to the
// client, never parsed, until both ways have ended.
//
// A tunnel starts with Open once the request head has gone to the backend:
// the way up runs at once for the request's body (Options.Body bytes and no
// more: what a client sends after its request is not for the backend), as
// a body must reach the backend before it can answer; for an upgrade it
// starts with Upgrade, once the backend has accepted. The caller then reads the response head from the
// backend itself, relays it, and calls Relay (a response body, after which
// the tunnel stops) or Upgrade (after a 101: a tunnel both ways until both
// sides have closed), which run the way down in the caller's goroutine; or
// Abandon when the exchange failed. Stop ends it from outside. Done is called
// once, by whichever goroutine ends the tunnel last.
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
	// Body is how many bytes of the request's body the client has still
	// to send: the way up passes these and no more before Upgrade (0: it
	// passes nothing until then). A backend that ignores "Connection:
	// close" or refuses an upgrade thus never gets bytes the proxy has not
	// checked as a request.
	Body int64
	// Parker, if set, takes the quiet ways of upgraded tunnels off their
	// goroutines.
	Parker *Parker
	// Done is called once with the result, when both ways have ended and
	// the backend connection is closed. The client's connection is left
	// to the caller (see Result.Goodbye).
	Done func(Result)
}

// Result is how a tunnel ended.
type Result struct {
	Up, Down int64 // bytes copied client to backend, backend to client
	End      End   // what ended it first
	Err      error // the error behind ClientLost or BackendLost
	// Goodbye says the client is still owed close_notify and a FIN: the
	// tunnel was not cut, and the two had not both closed their halves.
	Goodbye bool
}

// End says what ended a tunnel first.
type End uint8

const (
	Stopped          End = iota + 1 // Stop or Abandon
	ClientClosed                    // the client closed its half
	BackendClosed                   // the backend closed its half
	ResponseComplete                // the relayed response was complete
	IdleTimeout                     // no byte either way for the idle time
	ClientLost                      // reading from or writing to the client failed
	BackendLost                     // reading from or writing to the backend failed
)

var endNames = [...]string{"", "stopped", "client closed", "backend closed", "response complete", "idle timeout",
	"client connection lost", "backend connection lost"}

func (e End) String() string { return endNames[e] }

// StopMode says how Stop and Abandon end a tunnel.
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

// Tunnel is one session's byte tunnel.
type Tunnel struct {
	client  *Conn     // the client's socket, under crypto/tls
	tls     *tls.Conn // the client's TLS connection over client
	backend net.Conn
	opts    Options

	lastActive atomic.Int64 // unix nanos of the last byte read either way

	mu        sync.Mutex // guards what follows, and every deadline set in the tunnel
	state     state
	dirs      [2]*direction // up, down; up is nil until Upgrade when there is no body, down until Relay or Upgrade
	left      int           // ways not yet ended (the down way counts from Open, the up way from its start)
	lingerAt  time.Time     // in halfClosed: when the open way's time is up
	end       End
	endErr    error
	clientEOF bool // the client closed its half cleanly
	notified  bool // close_notify and FIN went to the client
	goodbye   bool // set on done: Result.Goodbye
}

// Open starts the tunnel between the client (the TLS connection tc over
// the Conn c) and backend, to which the request head has been written: the
// rest of the request's body (o.Body bytes) flows to the backend from now
// on. Until Relay, Upgrade or Abandon the caller may read the response head
// from backend (under its own read deadline, set before Open; a stop sets
// it in the past).
func Open(c *Conn, tc *tls.Conn, backend net.Conn, o Options) *Tunnel {
	t := &Tunnel{client: c, tls: tc, backend: backend, opts: o, left: 1}
	t.lastActive.Store(time.Now().UnixNano())
	if o.Body > 0 {
		t.startUp(o.Body)
	}
	return t
}

// startUp starts the way up, copying limit bytes (-1: until the client
// ends).
func (t *Tunnel) startUp(limit int64) {
	up := newDirection(t, true, limit)
	t.mu.Lock()
	t.dirs[0] = up
	t.left++
	up.src.SetReadDeadline(t.readDeadline(up))
	t.mu.Unlock()
	go up.run()
}

// Relay copies a response body of limit bytes (-1: until the backend
// closes) to the client in the calling goroutine, after the caller has
// written the response head; the tunnel then stops with a goodbye.
func (t *Tunnel) Relay(limit int64) { t.runDown(evRelay, limit) }

// Upgrade starts the way up and runs the way down of an upgraded
// connection in the calling goroutine, after the caller has written the 101
// to the client (and sent the backend whatever the client sent before it).
// It returns when the way down has ended or parked. An upgrade request has
// no body (Options.Body is 0).
func (t *Tunnel) Upgrade() {
	if p := t.opts.Parker; p != nil {
		p.track(t)
	}
	up, down := newDirection(t, true, -1), newDirection(t, false, -1)
	t.mu.Lock()
	t.dirs[0], t.dirs[1] = up, down
	t.left++
	t.step(evUpgrade, nil, nil)
	up.src.SetReadDeadline(t.readDeadline(up))
	down.src.SetReadDeadline(t.readDeadline(down))
	t.mu.Unlock()
	go up.run()
	down.run()
}

func (t *Tunnel) runDown(ev event, limit int64) {
	d := newDirection(t, false, limit)
	t.mu.Lock()
	t.dirs[1] = d
	t.step(ev, nil, nil)
	d.src.SetReadDeadline(t.readDeadline(d))
	t.mu.Unlock()
	d.run()
}

// Abandon ends a tunnel whose way down will not run (the response failed,
// or could not be written to the client). Done may be called before it
// returns.
func (t *Tunnel) Abandon(how StopMode) {
	t.mu.Lock()
	t.step(stopEvent(how), nil, nil)
	act := t.step(evAbandon, nil, nil)
	t.mu.Unlock()
	t.after(act, nil)
}

// Stop ends the tunnel from outside (shutdown, the backend marked down).
// It returns at once; Done follows when both ways have noticed.
func (t *Tunnel) Stop(how StopMode) {
	t.mu.Lock()
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
func (t *Tunnel) after(act action, d *direction) {
	if act&actPassEOF != 0 {
		d.passEOF()
	}
	if act&actFinish != 0 {
		t.finish()
	}
}

// finish closes the backend and reports the result.
func (t *Tunnel) finish() {
	t.backend.Close()
	if p := t.opts.Parker; p != nil {
		p.untrack(t)
	}
	r := Result{End: t.end, Err: t.endErr, Goodbye: t.goodbye}
	if d := t.dirs[0]; d != nil {
		r.Up = d.n
	}
	if d := t.dirs[1]; d != nil {
		r.Down = d.n
	}
	if t.opts.Done != nil {
		t.opts.Done(r)
	}
}
