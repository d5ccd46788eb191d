package tunnel

import (
	"context"
	"crypto/tls"
	"net"
)

// Policy is one connection's HTTP policy, asked at each step of its life
// as httputil.ReverseProxy asks its Director and ModifyResponse: package
// proxy's session is one. It writes the proxy's own answers through
// Tunnel.Write and records why a session ends with Tunnel.End; the tunnel
// owns the sockets, the deadlines and the state. Every call but Ended is
// made on the owner's goroutine.
type Policy interface {
	// Admit is asked first, under the handshake deadline and before any
	// TLS work: it may read a PROXY protocol header from c, and returns
	// the bytes it read past it. False ends the session.
	Admit(c net.Conn) (pending []byte, ok bool)
	// Handshake runs the TLS handshake on tc, under the same deadline.
	Handshake(tc *tls.Conn) bool
	// Request decides on a request head: forward it (f.Head set), or,
	// having answered it, read the next one (next) or end. room is how
	// many bytes the client sent after the head; f.Head should have room
	// for them (the request body's start goes up in the same write).
	Request(head []byte, room int) (f Forward, next bool)
	// Dial connects to the backend the forwarded request is for.
	Dial(ctx context.Context) (net.Conn, error)
	// Response decides on the backend's response head; room is as for
	// Request (the body's start goes down in the same write).
	Response(head []byte, room int) (Reply, error)
	// Failed is told that an exchange failed before a response head was
	// relayed: a request head over MaxHeadSize (BadRequest with
	// ErrHeadTooLarge), or the backend (BackendUnreachable, BackendLost,
	// BackendClosedEarly, ResponseTimeout, BadResponse). It answers the
	// client and records the end.
	Failed(e End, err error)
	// Ended is told the session's result, once, after the client's
	// connection is closed, on whichever goroutine ended last.
	Ended(Result)
}

// Forward is a request the policy sends on.
type Forward struct {
	// Head is the request head as the backend gets it. Unless Upgrade, it
	// asks the backend to close after its response: the response then
	// ends where the tunnel can tell, without parsing a second one.
	Head    []byte
	Body    int64 // the request body's length; nothing after it goes up
	Upgrade bool  // a WebSocket upgrade: bytes both ways after a 101
	NoBody  bool  // the response has no body, whatever it declares (HEAD)
}

// Reply is the policy's decision on a response head.
type Reply struct {
	Head    []byte // the head the client gets
	Status  int
	Length  int64 // the body's declared length, or -1
	Chunked bool  // the body is chunked: it ends where its framing says
}
