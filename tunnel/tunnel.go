// Package tunnel owns a client connection's life, from accept to close:
// the TLS handshake, request heads, at most one forwarded exchange, then
// the bytes both ways, never parsed, until both ways have ended. It is the
// transport; the HTTP policy (who may connect, what a request may be, where
// it goes, what the proxy answers itself) is package proxy's, asked at each
// step through a Policy, as net/http/httputil's ReverseProxy asks its
// Director: one state machine, one stop and one list of ends for both.
//
// One Tunnel per connection, made at accept (New); Serve runs it on the
// accepting goroutine, the owner (serve.go): the policy admits the client
// and runs the handshake, then each request head is read and the policy
// says whether to answer it itself (and read the next), forward it, or end.
// A forwarded request goes to the backend the policy dials, with its body
// and nothing after it (what a client sends after its request is not for
// the backend): the way up runs at once for the body. The owner reads the
// response head, relays the policy's version of it, and becomes the way
// down: a response body, after which the tunnel stops, or, after a 101, a
// tunnel both ways (way.go) until both sides have closed. Stop ends the
// session from outside, in any state, gracefully or at once (cut). The
// policy's Ended is called once, by whichever goroutine ends last: the
// owner's, or a way's.
//
// Each way ends with a half-close passed on (FIN to the backend, close_notify
// and FIN to the client), so a WebSocket close frame is never cut off; the
// other way then has Options.Linger to finish. A tunnel quiet for its idle time ends.
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
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure one tunnel.
type Options struct {
	// Policy decides at each step (see Policy).
	Policy Policy
	// TLS is the client side's configuration.
	TLS *tls.Config
	// Context ends the backend's dial when it is cancelled (the proxy
	// stopping for good); nil: never.
	Context context.Context
	// HandshakeTimeout bounds the PROXY header and the TLS handshake;
	// HeadTimeout each request head, and the wait for the next one.
	HandshakeTimeout, HeadTimeout time.Duration
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

	// Linger is how long the open way of a half-closed tunnel may stay
	// quiet; 0 means 10 s.
	Linger time.Duration

	// portable picks the portable pump on Linux too (tests).
	portable bool
}

// Result is how a session ended.
type Result struct {
	Up, Down int64 // bytes sent to the backend, and to the client
	End      End   // what ended it first
	Detail   string
	Err      error // the error behind End, if any (End.BackendSide says whose)
	// Goodbye says the client got close_notify and a FIN at the end: the
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

// defaultLinger bounds how long the open way of a half-closed tunnel may
// stay quiet: a peer that never closes its side must not pin the session.
const defaultLinger = 10 * time.Second

// writeGrace bounds a write to the client that a graceful stop lets
// finish: a close_notify after a torn record would reach the client as a
// bad record MAC instead of a clean end.
const writeGrace = 2 * time.Second

// past is the deadline that wakes a blocked read or write at once.
var past = time.Unix(1, 0)

// Tunnel is one client connection's life.
type Tunnel struct {
	raw     *net.TCPConn // the client's socket as accepted: its deadlines are the Conn's too
	client  *Conn        // the client's socket under crypto/tls; nil until the handshake
	tls     *tls.Conn    // the client's TLS connection over client
	backend net.Conn     // nil until Attach
	opts    Options
	pol     Policy

	// Bytes the owner moved itself (the request head, the response head,
	// the policy's answers); the ways count theirs. Only the owner's
	// goroutine writes them.
	ownUp, ownDown int64

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

// New makes the life of an accepted connection; Serve runs it.
func New(c *net.TCPConn, o Options) *Tunnel {
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Linger == 0 {
		o.Linger = defaultLinger
	}
	return &Tunnel{raw: c, opts: o, pol: o.Policy, left: 1}
}

// Forwarding reports whether a backend is attached.
func (t *Tunnel) Forwarding() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.backend != nil
}

// End records why the session ends, with words for the log and the error
// behind it, unless an end was recorded already: the first one wins. The
// policy calls it when it is the one to know (a refused head, a client
// over its limits).
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

// Stop ends the session from outside (shutdown, the backend marked down),
// with why as its end unless one came first. It returns at once;
// Policy.Ended follows when the owner and the ways have noticed.
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
