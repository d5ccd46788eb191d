package pool

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"
)

// ErrNotHeld is Renew's or Release's answer when owner no longer holds the
// runtime (its lease expired and someone took it).
var ErrNotHeld = errors.New("the runtime is no longer this session's")

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
func (m *Memory) Take(_ context.Context, runtime, owner string, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[runtime]
	if ok && h.Held(now) && (h.Busy || h.Owner != owner) {
		return false, nil
	}
	m.holds[runtime] = Hold{Owner: owner, Busy: true, Since: now, Until: until}
	return true, nil
}

// Renew implements Store.
func (m *Memory) Renew(_ context.Context, runtime, owner string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[runtime]
	if !ok || !h.Busy || h.Owner != owner {
		return ErrNotHeld
	}
	h.Until = until
	m.holds[runtime] = h
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, runtime, owner string, now, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.holds[runtime]
	if !ok || !h.Busy || h.Owner != owner {
		return ErrNotHeld
	}
	m.holds[runtime] = Hold{Owner: owner, Since: now, Until: until}
	return nil
}

// Holds implements Store.
func (m *Memory) Holds(context.Context) (map[string]Hold, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.holds), nil
}
