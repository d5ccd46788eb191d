package tunnel

import (
	"errors"
	"time"
)

// ErrNoParking is NewParker's answer where quiet ways cannot park: a
// system without epoll (park_other.go).
var ErrNoParking = errors.New("parking quiet ways needs Linux's epoll")

// Parking, as seen from the tunnel: a way is running, asked to park (its
// read deadline is in the past), parked (no goroutine), or exited.
type phase uint8

const (
	running phase = iota
	parkAsked
	parked
	exited
)

// sweep asks the quiet ways of an upgraded tunnel to park, and wakes
// parked ones whose idle or linger time is over, so that they end.
func (t *Tunnel) sweep(now time.Time, quietFor time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.state != open && t.state != halfClosed {
		return
	}
	last := time.Unix(0, t.lastActive.Load())
	over := (t.state == open && !now.Before(last.Add(t.opts.Idle))) || (t.state == halfClosed && !now.Before(t.lingerAt))
	for _, w := range t.ways {
		switch {
		case w == nil || w.fd < 0:
		case w.phase == parked && over:
			t.wake(w)
		case w.phase == running && now.Sub(last) >= quietFor:
			w.phase = parkAsked
			w.src.SetReadDeadline(past)
		}
	}
}

// park hands w's socket to the parker; false leaves w running.
func (t *Tunnel) park(w *way) bool {
	if err := t.opts.Parker.add(w); err != nil {
		w.phase = running
		return false
	}
	w.phase = parked
	return true
}

// woken is the parker's call when a parked way's socket is readable.
func (t *Tunnel) woken(w *way) {
	t.mu.Lock()
	if w.phase == parked {
		t.wake(w)
	}
	t.mu.Unlock()
}

// wake carries a parked way on in a fresh goroutine.
func (t *Tunnel) wake(w *way) {
	t.opts.Parker.remove(w)
	w.phase = running
	w.src.SetReadDeadline(t.readDeadline(w))
	go w.run()
}
