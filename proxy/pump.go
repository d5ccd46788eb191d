package proxy

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// The pump's life: two directions, each a task that runs in a goroutine,
// or waits parked with none. The last task to end finishes the session.

// parkAfter is how long a tunnel must be quiet before its directions park.
const parkAfter = 3 * time.Second

// newDirection makes one way of the pump. srcConn is the socket the
// direction reads (the client's for the way up, the backend's for the way
// down); its raw form serves both the reader and the parker.
func (s *session) newDirection(up bool, dst, srcConn net.Conn, limit int64) *direction {
	d := &direction{s: s, up: up, dst: dst, srcConn: srcConn, limit: limit, fd: -1}
	if sc, ok := srcConn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			d.rc = rc
			if p := s.srv.parker; p != nil {
				rc.Control(func(fd uintptr) { d.fd = int(fd) })
				d.key = p.key()
			}
		}
	}
	s.mu.Lock()
	if up {
		s.dirs[0] = d
	} else {
		s.dirs[1] = d
	}
	s.mu.Unlock()
	return d
}

// startUpstream starts copying the client's bytes to the backend, before
// the response head is read: a request body must reach the backend before it
// can answer. From here on the session ends when both its tasks have: the
// upstream direction, and the session goroutine's part (the response, then
// the downstream direction).
func (s *session) startUpstream(backend net.Conn) {
	// Until the response head arrives, the response timeout guards the
	// exchange; a client waiting quietly for it is not idle.
	wait := max(s.srv.opts.TunnelTimeout, s.srv.opts.ResponseTimeout)
	s.idle.Store(int64(wait))
	now := time.Now()
	s.lastActive.Store(now.UnixNano())
	s.tc.SetReadDeadline(now.Add(wait))
	d := s.newDirection(true, backend, s.conn, -1)
	s.tasks.Store(2)
	go s.runDirection(d)
}

// relayDown copies the backend's bytes to the client, starting in the
// session's goroutine. In a tunnel (after a 101) the session lasts until
// both sides have closed; otherwise it ends once the response (respLimit
// bytes, or up to the backend's close when -1) has been relayed.
func (s *session) relayDown(backend net.Conn, respLimit int64) {
	idle := s.srv.opts.ResponseTimeout
	if s.tunnel.Load() {
		idle = s.srv.opts.TunnelTimeout
	}
	s.idle.Store(int64(idle))
	deadline := time.Now().Add(idle)
	s.tc.SetReadDeadline(deadline)
	backend.SetReadDeadline(deadline)
	// The client side may have ended, been stopped or parked meanwhile:
	// keep its deadline, which the lines above replaced.
	if s.halted.Load() {
		s.halt()
	} else if s.lingerUntil.Load() != 0 {
		s.linger()
	}
	s.runDirection(s.newDirection(false, s.tc, backend, respLimit))
}

// runDirection copies until the direction ends or parks.
func (s *session) runDirection(d *direction) {
	for {
		var err error
		if d.up {
			err = s.copyClientToBackend(d)
		} else {
			err = s.copyBackendToClient(d)
		}
		if !errors.Is(err, errPark) {
			d.state.Store(ended)
			s.directionEnded(d, d.up, err)
			s.taskDone()
			return
		}
		if s.srv.parker.park(d) == nil {
			return // a fresh goroutine resumes it
		}
		// Could not park: wait here as before.
		d.parkReq.Store(false)
		s.restoreDeadline(d.srcConn)
	}
}

// resume carries on a parked direction in a new goroutine.
func (s *session) resume(d *direction) {
	d.parkReq.Store(false)
	d.state.Store(running)
	s.restoreDeadline(d.srcConn)
	s.runDirection(d)
}

// restoreDeadline sets c's read deadline to the idle deadline, keeping a
// halt or a linger.
func (s *session) restoreDeadline(c net.Conn) {
	c.SetReadDeadline(time.Unix(0, s.lastActive.Load()).Add(time.Duration(s.idle.Load())))
	if s.halted.Load() {
		c.SetReadDeadline(time.Unix(1, 0))
	} else if l := s.lingerUntil.Load(); l != 0 {
		c.SetReadDeadline(time.Unix(0, l))
	}
}

// taskDone ends one of the session's tasks; the last one finishes it.
func (s *session) taskDone() {
	if s.tasks.Add(-1) == 0 {
		s.finish()
	}
}

// unparkAll resumes the parked directions, so that they see a halt.
func (s *session) unparkAll() {
	p := s.srv.parker
	if p == nil {
		return
	}
	for _, d := range s.dirs {
		if d != nil && d.state.Load() == parked && p.unpark(d) {
			go s.resume(d)
		}
	}
}

// sweep asks a quiet tunnel's directions to park, and resumes parked ones
// whose idle or linger time is over, so that they end.
func (s *session) sweep(now time.Time) {
	if !s.tunnel.Load() {
		return
	}
	p := s.srv.parker
	last := s.lastActive.Load()
	expired := now.UnixNano() >= last+s.idle.Load()
	if l := s.lingerUntil.Load(); l != 0 && now.UnixNano() >= l {
		expired = true
	}
	s.mu.Lock()
	dirs := s.dirs
	s.mu.Unlock()
	for _, d := range dirs {
		if d == nil || d.fd < 0 {
			continue
		}
		switch d.state.Load() {
		case parked:
			if expired && p.unpark(d) {
				go s.resume(d)
			}
		case running:
			if now.UnixNano()-last >= int64(s.srv.parkAfter) && !d.parkReq.Load() {
				d.parkReq.Store(true)
				d.srcConn.SetReadDeadline(time.Unix(1, 0))
			}
		}
	}
}

// directionEnded records why one direction ended and acts on it.
func (s *session) directionEnded(d *direction, up bool, err error) {
	if s.halted.Load() {
		return // whoever halted the session has set the reason
	}
	tunnel := s.tunnel.Load()
	switch {
	case errors.Is(err, errIdle):
		s.setReason("idle timeout")
	case err != nil && up == d.readErr:
		// Reading from the client or writing to it failed.
		s.setReason("client connection lost")
	case err != nil:
		s.setReason("backend connection lost")
	case up:
		s.setReason("client closed")
	case !tunnel && d.limit == 0:
		s.setReason("response complete")
	default:
		s.setReason("backend closed")
	}
	switch {
	case err != nil && up == d.readErr:
		// The client's side broke: stop the other direction; there is no
		// one to say goodbye to.
		s.abort()
	case err != nil:
		// The backend's side broke: stop the other direction, and still
		// give the client a goodbye (close_notify, FIN, a short drain)
		// rather than a reset that could destroy what it has not read.
		s.halt()
	case up:
		s.clientDone.Store(true)
		// Pass the end on, unless the other direction has ended too: then
		// the session finishes now, and closing the socket sends the FIN.
		if !s.otherEnded(d) {
			closeWrite(d.dst)
			if tunnel {
				s.linger()
			}
		}
	case tunnel:
		s.tc.CloseWrite() // close_notify, always
		s.closeSent.Store(true)
		if !s.otherEnded(d) {
			closeWrite(s.conn)
			s.linger()
		}
	default:
		// The response is complete; the request side has nothing more to
		// say that the backend would read.
		s.halt()
	}
}

// otherEnded reports whether the direction opposite d has ended.
func (s *session) otherEnded(d *direction) bool {
	s.mu.Lock()
	o := s.dirs[0]
	if d.up {
		o = s.dirs[1]
	}
	s.mu.Unlock()
	return o != nil && o.state.Load() == ended
}

// linger gives the open direction lingerTimeout to finish.
func (s *session) linger() {
	t := time.Now().Add(lingerTimeout)
	s.lingerUntil.Store(t.UnixNano())
	s.tc.SetReadDeadline(t)
	s.mu.Lock()
	if s.backend != nil {
		s.backend.SetReadDeadline(t)
	}
	s.mu.Unlock()
}
