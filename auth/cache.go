package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// passed remembers tokens that were verified, by SHA-256, until their exp:
// a headset reconnects with the same token for its whole life, and a
// signature check costs more than a quarter of a TLS handshake. Only
// accepted tokens are kept (failures are limited per client instead), never
// beyond exp, and the set is bounded.
type passed struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]time.Time // until
	max int
}

func (p *passed) has(d [sha256.Size]byte, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.m[d]
	if ok && !now.Before(until) {
		delete(p.m, d)
		return false
	}
	return ok
}

func (p *passed) add(d [sha256.Size]byte, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[[sha256.Size]byte]time.Time{}
	}
	if len(p.m) >= p.max {
		now := time.Now()
		for k, u := range p.m {
			if !now.Before(u) {
				delete(p.m, k)
			}
		}
		for k := range p.m { // still full: any one goes
			if len(p.m) < p.max {
				break
			}
			delete(p.m, k)
		}
	}
	p.m[d] = until
}
