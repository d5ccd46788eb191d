package soak

import (
	"sync"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// Backend is the stand-in runtime for a soak, stopped and started in turn:
// each Toggle either kills it (its listener and every connection, as a
// crashed runtime) or brings it back on the same address.
type Backend struct {
	mu   sync.Mutex
	addr string
	cur  *wstest.Backend // nil while stopped
}

// StartBackend starts the runtime on addr ("127.0.0.1:0" for any port).
func StartBackend(addr string) (*Backend, error) {
	wb, err := wstest.StartBackend(addr)
	if err != nil {
		return nil, err
	}
	return &Backend{addr: wb.Addr(), cur: wb}, nil
}

// Addr is the address it listens on whenever it runs.
func (b *Backend) Addr() string { return b.addr }

// Toggle stops the runtime if it runs, or starts it again.
func (b *Backend) Toggle() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.Close()
		b.cur = nil
		return nil
	}
	return b.startLocked()
}

// EnsureRunning starts the runtime if it is stopped.
func (b *Backend) EnsureRunning() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		return nil
	}
	return b.startLocked()
}

func (b *Backend) startLocked() error {
	wb, err := wstest.StartBackend(b.addr)
	if err != nil {
		return err
	}
	b.cur = wb
	return nil
}

// Close stops the runtime for good.
func (b *Backend) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.Close()
		b.cur = nil
	}
}
