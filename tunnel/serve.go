package tunnel

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// The owner's part of a connection's life, on the goroutine that accepted
// it: the handshake, request heads, at most one forwarded exchange, then
// the way down. The policy (policy.go) decides at each step; this file
// reads, writes and waits.

// errUnaskedUpgrade is a 101 to a request that asked for no upgrade: not
// a response the tunnel can relay and still know where the exchange ends.
var errUnaskedUpgrade = errors.New("101 Switching Protocols to a request without an upgrade")

// Serve runs the connection's life on the caller's goroutine. When a
// forwarded exchange's way down runs here, the session ends with the
// ways; otherwise this goroutine's part ends here. Either way Policy.Ended
// follows, once, on whichever goroutine ends last.
func (t *Tunnel) Serve() {
	if t.handshake() && t.exchange() {
		return // the way down ran here; it, or the way up, ends the session
	}
	t.abandon()
}

// handshake lets the policy admit the client and run the TLS handshake,
// both under HandshakeTimeout.
func (t *Tunnel) handshake() bool {
	if !t.setDeadline(time.Now().Add(t.opts.HandshakeTimeout)) {
		return false
	}
	pending, ok := t.pol.Admit(t.raw)
	if !ok {
		return false
	}
	t.useConn(pending, t.opts.TLS)
	return t.pol.Handshake(t.tls) && t.setDeadline(time.Time{})
}

// useConn makes the Conn crypto/tls is to read, with pending served first.
func (t *Tunnel) useConn(pending []byte, conf *tls.Config) {
	t.client = NewConn(t.raw, pending)
	t.tls = tls.Server(t.client, conf)
}

// wayDown is what follows a response head relayed to the client: an
// upgraded tunnel (and the bytes the client sent before the 101), or a
// response body of relay bytes (-1: until the backend closes).
type wayDown struct {
	upgrade bool
	early   []byte
	relay   int64
	chunked *chunkedEnd // a chunked body's framing, to stop at its end
	backend net.Conn
}

// exchange runs the requests and then, when a response was relayed, the
// way down on this goroutine; it reports whether the way down ran. The
// head buffer is this function's alone, given back before the way down
// runs, so that a long session does not keep 16 KiB.
func (t *Tunnel) exchange() bool {
	hb := getHeadBuf()
	down, ok := t.requests(hb.b)
	hb.release()
	return ok && t.runDown(down)
}

// requests reads request heads into buf and asks the policy about each,
// until one is forwarded and its response head relayed (ok), or the
// session ends.
func (t *Tunnel) requests(buf []byte) (down wayDown, ok bool) {
	n, served := 0, false
	for {
		if !t.setReadDeadline(time.Now().Add(t.opts.HeadTimeout)) {
			return down, false
		}
		hl, m, err := readHead(t.tls, buf, n)
		n = m
		if err != nil {
			t.headFailed(err, n, served)
			return down, false
		}
		served = true
		f, next := t.pol.Request(buf[:hl], n-hl)
		switch {
		case f.Head != nil:
			return t.forward(f, buf, hl, n)
		case !next:
			return down, false
		}
		n = copy(buf, buf[hl:n])
	}
}

// headFailed records why no whole request head came.
func (t *Tunnel) headFailed(err error, n int, served bool) {
	switch {
	case errors.Is(err, ErrHeadTooLarge):
		t.pol.Failed(BadRequest, err)
	case errors.Is(err, os.ErrDeadlineExceeded) && n == 0 && served:
		t.End(KeepAliveTimeout, "", nil)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.End(HeadTimeout, "", nil)
	case errors.Is(err, io.EOF) && n == 0:
		t.End(ClientClosed, "", nil)
	default:
		t.End(ClientLost, "", err)
	}
}

// forward sends a request to the backend and relays its response head.
// buf[:hl] is the head, buf[hl:n] bytes the client sent after it; buf
// then holds the response head.
func (t *Tunnel) forward(f Forward, buf []byte, hl, n int) (down wayDown, ok bool) {
	backend, err := t.pol.Dial(t.opts.Context)
	if err != nil {
		t.pol.Failed(BackendUnreachable, err)
		return down, false
	}
	if !t.attach(backend) {
		backend.Close()
		return down, false
	}
	early, ok := t.sendRequest(f, backend, buf[hl:n])
	if !ok {
		return down, false
	}
	return t.respond(f, backend, buf, early)
}

// sendRequest writes the request to the backend and opens the tunnel.
// The backend gets the request and its body, and nothing the client sent
// after them: for an upgrade, bytes sent before the 101 wait for it (early,
// returned); after any other request they are not the runtime's.
func (t *Tunnel) sendRequest(f Forward, backend net.Conn, pending []byte) (early []byte, ok bool) {
	out, body := f.Head, int64(0)
	if f.Upgrade {
		if len(pending) > 0 {
			early = bytes.Clone(pending)
		}
	} else {
		sent := min(int64(len(pending)), f.Body)
		out = append(out, pending[:sent]...)
		body = f.Body - sent
	}
	timeout := t.opts.ResponseIdle
	if !t.setBackendDeadlines(time.Time{}, time.Now().Add(timeout)) {
		return nil, false
	}
	t.ownUp += int64(len(out))
	if _, err := backend.Write(out); err != nil {
		t.pol.Failed(BackendLost, err)
		return nil, false
	}
	// The response head's deadline is set through the tunnel, so that a
	// stop, which puts it in the past, cannot be overwritten.
	if !t.setBackendDeadlines(time.Now().Add(timeout), time.Time{}) {
		return nil, false
	}
	t.open(body)
	return early, true
}

// respond reads the backend's response head and relays the policy's
// version of it to the client, with whatever came after it up to the
// body's declared length, and says which way down follows.
func (t *Tunnel) respond(f Forward, backend net.Conn, buf []byte, early []byte) (down wayDown, ok bool) {
	hl, n, r, ok := t.readResponse(backend, buf)
	if !ok {
		return down, false
	}
	down = wayDown{upgrade: f.Upgrade && r.Status == http.StatusSwitchingProtocols, early: early, relay: -1, backend: backend}
	if r.Status == http.StatusSwitchingProtocols && !down.upgrade {
		t.pol.Failed(BadResponse, errUnaskedUpgrade)
		return down, false
	}
	// The response head and whatever came after it (a first WebSocket
	// frame in the same packet as the 101, the start of a body), in one
	// write; nothing past the body's declared length.
	rest := buf[hl:n]
	switch {
	case down.upgrade:
	case f.NoBody:
		rest, down.relay = rest[:0], 0
	case r.Length >= 0:
		rest = rest[:min(int64(len(rest)), r.Length)]
		down.relay = r.Length - int64(len(rest))
	case r.Chunked:
		down.chunked = &chunkedEnd{}
		n, done := down.chunked.scan(rest)
		if rest = rest[:n]; done {
			down.chunked, down.relay = nil, 0
		}
	}
	if _, err := t.Write(append(r.Head, rest...)); err != nil {
		t.End(ClientLost, "", err)
		return down, false
	}
	return down, true
}

// readResponse reads the backend's response head into buf, relaying
// interim responses (100 Continue). When the exchange fails the policy
// answers the client, and ok is false.
func (t *Tunnel) readResponse(backend net.Conn, buf []byte) (hl, n int, r Reply, ok bool) {
	for {
		var err error
		hl, n, err = readHead(backend, buf, n)
		if err == nil {
			r, err = t.pol.Response(buf[:hl], n-hl)
		}
		switch {
		case err != nil && t.Stopping():
			return 0, 0, r, false // the client went away, or the session was stopped
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.pol.Failed(ResponseTimeout, err)
		case n == 0:
			t.pol.Failed(BackendClosedEarly, err)
		case err != nil:
			t.pol.Failed(BadResponse, err)
		case r.Status >= 200 || r.Status == http.StatusSwitchingProtocols:
			return hl, n, r, true
		default:
			if _, err := t.Write(r.Head); err != nil {
				t.End(ClientLost, "", err)
				return 0, 0, r, false
			}
			n = copy(buf, buf[hl:n])
			continue
		}
		return 0, 0, r, false
	}
}

// runDown runs the way down on this goroutine: the response body, or,
// after a 101, the client's early bytes and then the tunnel both ways. It
// reports whether the way down ran.
func (t *Tunnel) runDown(d wayDown) bool {
	switch {
	case d.chunked != nil:
		t.relay(-1, d.chunked.scan)
		return true
	case !d.upgrade:
		t.relay(d.relay, nil)
		return true
	}
	if len(d.early) > 0 {
		if !t.setBackendDeadlines(time.Time{}, time.Now().Add(t.opts.ResponseIdle)) {
			return false
		}
		if _, err := d.backend.Write(d.early); err != nil {
			t.End(BackendLost, "", err)
			return false
		}
		t.ownUp += int64(len(d.early))
		t.setBackendDeadlines(time.Time{}, time.Time{})
	}
	t.upgrade()
	return true
}

// Write writes an answer of the policy's own, or a relayed response head,
// to the client, under HeadTimeout.
func (t *Tunnel) Write(b []byte) (int, error) {
	t.setWriteDeadline(time.Now().Add(t.opts.HeadTimeout))
	n, err := t.tls.Write(b)
	t.ownDown += int64(n)
	t.setWriteDeadline(time.Time{})
	return n, err
}

// The owner's steps on the tunnel's state: deadlines that a stop cannot
// overwrite, the backend attached, the ways started.

// setDeadline sets the client's deadlines, unless the session is
// stopping: a stop's deadlines must stay. It reports whether the session
// is still going; so do the other setters.
func (t *Tunnel) setDeadline(at time.Time) bool {
	return t.setUnlessStopping(func() { t.raw.SetDeadline(at) })
}

// setReadDeadline sets the client's read deadline (see setDeadline).
func (t *Tunnel) setReadDeadline(at time.Time) bool {
	return t.setUnlessStopping(func() { t.raw.SetReadDeadline(at) })
}

// setWriteDeadline sets the client's write deadline (see setDeadline).
func (t *Tunnel) setWriteDeadline(at time.Time) bool {
	return t.setUnlessStopping(func() { t.raw.SetWriteDeadline(at) })
}

// setBackendDeadlines sets the attached backend's read and write
// deadlines, unless the session is stopping.
func (t *Tunnel) setBackendDeadlines(read, write time.Time) bool {
	return t.setUnlessStopping(func() {
		t.backend.SetReadDeadline(read)
		t.backend.SetWriteDeadline(write)
	})
}

func (t *Tunnel) setUnlessStopping(set func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state >= closing {
		return false
	}
	set()
	return true
}

// attach records the backend connection the policy dialed, unless the
// session is stopping (the caller then closes it). From now on a stop
// reaches it too, and the tunnel closes it at the end.
func (t *Tunnel) attach(backend net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state >= closing {
		return false
	}
	t.backend = backend
	return true
}

// open starts the tunnel once the request head has gone to the attached
// backend: the rest of the request's body (body bytes) flows to the
// backend from now on, and no more. Until relay, upgrade or abandon the
// owner reads the response head from the backend (under its own read
// deadline, set before open; a stop sets it in the past).
func (t *Tunnel) open(body int64) {
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

// relay copies a response body of limit bytes (-1: until the backend
// closes) to the client in the owner's goroutine, after the owner has
// written the response head; the tunnel then stops with a goodbye. The
// owner's goroutine is the way down from here on. A body whose end its
// framing says (a chunked one) has end: it sees the bytes as they come and
// says how many of them are the body's, and whether it ended within them.
// The bytes go on unchanged; nothing past the end does.
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

// upgrade starts the way up and runs the way down of an upgraded
// connection in the owner's goroutine, after the owner has written the 101
// to the client (and sent the backend whatever the client sent before it).
// It returns when the way down has ended or parked. An upgrade request has
// no body (open(0)).
func (t *Tunnel) upgrade() {
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

// abandon says the owner's goroutine ends without running the way down
// (no request was forwarded, or its exchange failed). A way up still
// running is stopped gracefully, and the session may end before abandon
// returns.
func (t *Tunnel) abandon() {
	t.mu.Lock()
	t.step(evStop, nil, nil)
	act := t.step(evAbandon, nil, nil)
	t.mu.Unlock()
	t.after(act, nil)
}
