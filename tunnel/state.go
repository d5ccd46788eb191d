package tunnel

import (
	"errors"
	"syscall"
	"time"
)

// The tunnel's state machine: its states, the events that move it, and the
// one transition function, step; the deadlines each state means; and,
// when the last goroutine is done, finish.

// state is the session's; it only moves forward (accepted → awaiting →
// relaying or open → halfClosed → closing or cut → done), except that
// closing may still become cut.
type state uint8

const (
	accepted   state = iota // the owner handshakes and reads request heads
	awaiting                // a request went to the backend: its body goes up; no response relayed yet
	relaying                // a response body goes down; the tunnel stops after it
	open                    // upgraded: bytes both ways
	halfClosed              // upgraded, one way ended cleanly: the other has until lingerAt
	closing                 // stopping; the client gets a goodbye
	cut                     // stopping at once; no goodbye
	done                    // both ways ended
)

var stateNames = [...]string{"accepted", "awaiting", "relaying", "open", "half-closed", "closing", "cut", "done"}

func (s state) String() string { return stateNames[s] }

// event is what happened to a tunnel; step decides what it means.
type event uint8

const (
	evRelay        event = iota // the response head was relayed; its body follows
	evUpgrade                   // the 101 was relayed; bytes flow both ways
	evStop                      // Stop(Graceful), or abandon
	evCut                       // Stop(Cut)
	evAbandon                   // the owner's goroutine ends without running the way down
	evEOF                       // w's source ended cleanly
	evComplete                  // w copied all it may: the response (down), the request's body (up)
	evClientBroke               // a read from or a write to the client failed
	evBackendBroke              // a read from or a write to the backend failed
	evIdle                      // no byte either way for the idle time
	evLingerOver                // the open way of a half-closed tunnel stayed quiet for Options.Linger
	evWayExited                 // w's goroutine is done with it
)

// action is what step leaves to its caller, to do without the lock.
type action uint8

const (
	actPassEOF action = 1 << iota // pass w's end on to its destination
	actFinish                     // the tunnel is done: close and report
)

// step is the tunnel's transition function: every change of its state
// happens here, with t.mu held, and the deadlines are set to match.
func (t *Tunnel) step(ev event, w *way, err error) action {
	before := t.state
	var act action
	switch ev {
	case evRelay:
		t.moveTo(relaying)
	case evUpgrade:
		t.moveTo(open)
	case evStop:
		t.moveTo(closing)
	case evCut:
		t.moveTo(cut)
	case evEOF, evComplete:
		act = t.wayEnded(ev, w)
	case evClientBroke:
		t.resetAfterEOF(err)
		t.settle(ClientLost, "", err)
		t.moveTo(cut)
	case evBackendBroke:
		// The client is fine: it gets a goodbye rather than a reset
		// that could destroy what it has not read yet.
		t.settle(BackendLost, "", err)
		t.moveTo(closing)
	case evIdle:
		t.settle(IdleTimeout, "", nil)
		t.moveTo(closing)
	case evLingerOver:
		t.moveTo(closing)
	case evAbandon, evWayExited:
		if w != nil {
			w.phase = exited
		}
		if t.left--; t.left == 0 {
			t.goodbye = t.state != cut && !(t.clientEOF && t.notified)
			t.state = done
			return actFinish
		}
	}
	if t.state != before {
		t.applyDeadlines()
	}
	return act
}

// wayEnded handles a clean end of w's source.
func (t *Tunnel) wayEnded(ev event, w *way) action {
	if w.up && ev == evComplete {
		// The request's body has gone on whole. The client is not done,
		// and what it sends next is not the backend's: nothing to pass on.
		return 0
	}
	switch {
	case w.up:
		t.clientEOF = true
		t.settle(ClientClosed, "", nil)
	case ev == evComplete:
		t.settle(ResponseComplete, "", nil)
	default:
		t.settle(BackendClosed, "", nil)
	}
	switch t.state {
	case awaiting:
		return actPassEOF // the request's end goes on; the response is still to come
	case relaying:
		if w.up {
			return actPassEOF
		}
		t.moveTo(closing) // the response is over
	case open:
		t.state = halfClosed
		t.lingerAt = time.Now().Add(t.opts.Linger)
		return actPassEOF
	case halfClosed:
		return actPassEOF // both halves closed: tell the client all the same
	}
	return 0
}

// resetAfterEOF turns a clean end of the client's half into a lost client
// when err shows it was a reset. The kernel reports a reset once, to the
// first read or write on the socket: when the way down's write takes it,
// the way up's read after it sees a plain end, and may take the lock
// first. A reset that follows the client's FIN is EPIPE, not ECONNRESET
// (Linux's tcp_reset), so a client that did close its half stays closed.
func (t *Tunnel) resetAfterEOF(err error) {
	if t.end == ClientClosed && errors.Is(err, syscall.ECONNRESET) {
		t.end, t.endErr = ClientLost, err
	}
}

// moveTo changes the state; stops never go back, and done is final.
func (t *Tunnel) moveTo(s state) {
	switch {
	case t.state == done || t.state == cut:
	case t.state == closing && s != cut:
	case s >= closing || s > t.state:
		t.state = s
	}
}

// settle records what ended the session; the first end stays.
func (t *Tunnel) settle(e End, detail string, err error) {
	if t.end == Unknown {
		t.end, t.detail, t.endErr = e, detail, err
	}
}

// applyDeadlines sets every socket's deadlines for the state just
// entered, and wakes parked ways that must see it.
func (t *Tunnel) applyDeadlines() {
	switch t.state {
	case cut:
		t.raw.SetDeadline(past)
		if t.backend != nil {
			t.backend.SetDeadline(past)
		}
	case closing:
		// A response being written may finish (writeGrace), or the
		// goodbye after it would land inside a torn record.
		t.raw.SetReadDeadline(past)
		t.raw.SetWriteDeadline(time.Now().Add(writeGrace))
		if t.backend != nil {
			t.backend.SetDeadline(past)
		}
	default:
		for _, w := range t.ways {
			if w != nil && (w.phase == running || w.phase == parkAsked) {
				w.src.SetReadDeadline(t.readDeadline(w))
			}
		}
		return
	}
	for _, w := range t.ways {
		if w != nil && w.phase == parked {
			t.wake(w)
		}
	}
}

// idle is the quiet a tunnel in its current state may have.
func (t *Tunnel) idle() time.Duration {
	switch t.state {
	case awaiting:
		return max(t.opts.Idle, t.opts.ResponseIdle)
	case relaying:
		return t.opts.ResponseIdle
	}
	return t.opts.Idle
}

// readDeadline is when a wait on w's source must end: now when stopping
// or asked to park, at lingerAt when half-closed, else when the idle
// time since the last byte is up.
func (t *Tunnel) readDeadline(w *way) time.Time {
	switch {
	case t.state >= closing || w.phase == parkAsked:
		return past
	case t.state == halfClosed:
		return t.lingerAt
	}
	return time.Unix(0, t.lastActive.Load()).Add(t.idle())
}

// waitOver decides what a read deadline on w's source means, now that it
// has passed: pump again (the deadline moved), or the way parks (parked)
// or ends with the event to step with (0: nothing new, it is stopping).
func (t *Tunnel) waitOver(w *way) (again, parkedNow bool, ev event) {
	now := time.Now()
	switch {
	case t.state >= closing:
		return false, false, 0
	case w.phase == parkAsked:
		if t.park(w) {
			return false, true, 0
		}
	case t.state == halfClosed && !now.Before(t.lingerAt):
		return false, false, evLingerOver
	case t.state != halfClosed && !now.Before(time.Unix(0, t.lastActive.Load()).Add(t.idle())):
		return false, false, evIdle
	}
	w.src.SetReadDeadline(t.readDeadline(w))
	return true, false, 0
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

// finish closes both connections, the client's with a goodbye when it is
// owed one, and tells the policy the result.
func (t *Tunnel) finish() {
	if t.backend != nil {
		t.backend.Close()
	}
	if p := t.opts.Parker; p != nil {
		p.untrack(t)
	}
	if t.goodbye && t.tls != nil && t.tls.ConnectionState().HandshakeComplete {
		t.tls.CloseWrite() // close_notify; Drain sends the FIN
		Drain(t.raw)
	}
	t.raw.Close()
	r := Result{End: t.end, Detail: t.detail, Err: t.endErr, Goodbye: t.goodbye, Up: t.ownUp, Down: t.ownDown}
	if w := t.ways[0]; w != nil {
		r.Up += w.n
	}
	if w := t.ways[1]; w != nil {
		r.Down += w.n
	}
	t.pol.Ended(r)
}
