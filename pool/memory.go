package pool

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Memory is the Store of a single replica: the holds in this process. The
// map has one entry per runtime that was ever held, so it is bounded by
// the pool.
type Memory struct {
	mu    sync.Mutex
	holds map[string]Hold
}

// NewMemory makes an empty in-process store.
func NewMemory() *Memory { return &Memory{holds: map[string]Hold{}} }

// Take implements Store.
func (m *Memory) Take(_ context.Context, runtime, owner, replica string, join bool, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, held := m.holds[runtime]
	held = held && h.Held(now)
	switch {
	case join:
		if !held || !h.Busy || h.Owner != owner {
			return false, nil
		}
		if !h.heldBy(replica) {
			h.Holders = append(slices.Clone(h.Holders), replica)
		}
		h.Until = maxTime(h.Until, until)
		m.holds[runtime] = h
		return true, nil
	case held && (h.Busy || h.Owner != owner):
		return false, nil
	}
	m.holds[runtime] = Hold{Owner: owner, Busy: true, Since: now, Until: until, Holders: []string{replica}}
	return true, nil
}

// Renew implements Store.
func (m *Memory) Renew(_ context.Context, runtime, owner, replica string, _, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[runtime]
	if !ok || !h.busyFor(owner, replica) {
		return ErrNotHeld
	}
	h.Until = maxTime(h.Until, until)
	m.holds[runtime] = h
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, runtime, owner, replica string, now, graceUntil time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[runtime]
	if !ok || !h.busyFor(owner, replica) {
		return ErrNotHeld
	}
	h.Holders = slices.DeleteFunc(slices.Clone(h.Holders), func(r string) bool { return r == replica })
	switch {
	case len(h.Holders) > 0:
		m.holds[runtime] = h // another replica's sessions still use it
	case graceUntil.IsZero():
		delete(m.holds, runtime)
	default:
		m.holds[runtime] = Hold{Owner: owner, Since: now, Until: graceUntil}
	}
	return nil
}

// Holds implements Store.
func (m *Memory) Holds(context.Context, time.Time) (map[string]Hold, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.holds), nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
