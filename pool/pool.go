// Package pool hands each new signaling session a runtime of its own: one
// that is up and free. A CloudXR Runtime serves one stream, so two sessions
// must never share one.
//
// A runtime is free, busy (a session holds it, from the upgrade until the
// session ends) or in grace (its last user's, for the reconnect grace after
// the session ended; only that user may take it back); and separately up or
// down, as its health checks say. Acquire gives the caller's own runtime in
// grace if there is one and it is up, else a free one that is up, else
// ErrFull.
//
// Who holds what lives in a Store: in this process (Memory) for a single
// replica, or in Kubernetes Leases, one per runtime, so several replicas
// share the claims. A Store takes a runtime atomically (a mutex here, the
// Lease's resourceVersion there), so two sessions never get one runtime,
// whichever replica they reach.
package pool

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrFull is Acquire's answer when no runtime is up and free.
var ErrFull = errors.New("every runtime in the pool is busy or down")

// Hold is who holds a runtime and until when.
type Hold struct {
	Owner string    // the user's OwnerKey (of a token's subject, or of the pool cookie)
	Busy  bool      // a session holds it; false: the owner's reconnect grace
	Since time.Time // when this hold began
	Until time.Time // a busy hold's lease end (renewed while the session lives), or the grace's end
}

// Held reports whether the hold still counts at now.
func (h Hold) Held(now time.Time) bool { return now.Before(h.Until) }

// Store keeps the holds. Its methods are safe for concurrent use.
type Store interface {
	// Take makes runtime busy for owner until until, if it is free or
	// held in grace by owner at now; it reports whether it did.
	Take(ctx context.Context, runtime, owner string, now, until time.Time) (bool, error)
	// Renew extends owner's busy hold on runtime to until.
	Renew(ctx context.Context, runtime, owner string, until time.Time) error
	// Release ends owner's busy hold: the runtime is in owner's grace
	// until until, then free.
	Release(ctx context.Context, runtime, owner string, now, until time.Time) error
	// Holds returns every runtime's hold, current or not.
	Holds(ctx context.Context) (map[string]Hold, error)
}

// Options configure a Pool.
type Options struct {
	Store Store
	// Up reports whether a runtime's health checks consider it up.
	Up func(runtime string) bool
	// Grace is how long an ended session's runtime stays its user's.
	Grace time.Duration
	// Lease is how long a busy hold lasts unless renewed (a replica that
	// dies without releasing loses its holds after it); renewed every third
	// of it while the session lives.
	Lease time.Duration
	Now   func() time.Time // nil: time.Now
}

// Pool hands out runtimes.
type Pool struct {
	o Options

	mu       sync.Mutex
	runtimes []string // as discovered, in a stable order
	next     int      // where the search for a free runtime starts: sessions spread over the pool
	claims   map[*Claim]struct{}

	status statusCache
}

// statusCache is the claims as Status last read them. The page,
// /status.json and /metrics show the pool to anyone who asks; read through
// this, they cost the claims' store (the Kubernetes API server, which the
// renewals need) at most one read a second, one at a time, however many
// ask.
type statusCache struct {
	mu    sync.Mutex // held across the read: callers meanwhile wait for it
	at    time.Time
	holds map[string]Hold
	err   error
}

// statusMaxAge is how old the claims Status shows may be.
const statusMaxAge = time.Second

// New makes a pool of runtimes (more can be set with SetRuntimes).
func New(o Options, runtimes []string) *Pool {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Lease <= 0 {
		o.Lease = 15 * time.Second
	}
	p := &Pool{o: o, claims: map[*Claim]struct{}{}}
	p.SetRuntimes(runtimes)
	return p
}

// SetRuntimes replaces the set of runtimes (discovery saw them change).
// Sessions on a runtime that left keep it until they end.
func (p *Pool) SetRuntimes(runtimes []string) {
	r := slices.Clone(runtimes)
	slices.Sort(r)
	r = slices.Compact(r)
	p.mu.Lock()
	p.runtimes = r
	p.mu.Unlock()
}

// Runtimes returns the runtimes in the pool.
func (p *Pool) Runtimes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.runtimes)
}

// Claim is a session's hold on its runtime; Release ends it.
type Claim struct {
	Runtime string
	Owner   string
	key     string // OwnerKey(Owner), what the Store keeps
	p       *Pool
	once    sync.Once
}

// OwnerKey is what a Store keeps of an owner: a hash, so that neither a
// token's subject nor the pool cookie (which lets its bearer take the
// runtime back) is written into Leases or shown in a status.
func OwnerKey(owner string) string {
	sum := sha256.Sum256([]byte("cloudxr-wss-proxy pool owner\x00" + owner))
	return hex.EncodeToString(sum[:16])
}

// Acquire takes a runtime for owner: owner's own runtime in grace first
// (a reconnect), then a free one, each only if it is up. It returns ErrFull
// when there is none.
func (p *Pool) Acquire(ctx context.Context, owner string) (*Claim, error) {
	holds, err := p.o.Store.Holds(ctx)
	if err != nil {
		return nil, err
	}
	now, key := p.o.Now(), OwnerKey(owner)
	p.mu.Lock()
	runtimes, start := p.runtimes, p.next
	p.next++
	p.mu.Unlock()
	var order []string
	for _, r := range runtimes { // the owner's own, in grace
		if h, ok := holds[r]; ok && h.Held(now) && !h.Busy && h.Owner == key {
			order = append(order, r)
		}
	}
	for i := range runtimes {
		r := runtimes[(start+i)%len(runtimes)]
		if h, ok := holds[r]; !ok || !h.Held(now) {
			order = append(order, r)
		}
	}
	for _, r := range order {
		if !p.up(r) {
			continue
		}
		ok, err := p.o.Store.Take(ctx, r, key, now, now.Add(p.o.Lease))
		if err != nil {
			return nil, err
		}
		if ok {
			c := &Claim{Runtime: r, Owner: owner, key: key, p: p}
			p.mu.Lock()
			p.claims[c] = struct{}{}
			p.mu.Unlock()
			return c, nil
		}
	}
	return nil, ErrFull
}

// Busy names the runtime owner's session holds, on whichever replica,
// if there is one that is up: a native client's further connection goes
// there instead of claiming a second runtime.
func (p *Pool) Busy(ctx context.Context, owner string) (string, bool, error) {
	holds, err := p.o.Store.Holds(ctx)
	if err != nil {
		return "", false, err
	}
	now, key := p.o.Now(), OwnerKey(owner)
	for _, r := range p.Runtimes() {
		if h, ok := holds[r]; ok && h.Held(now) && h.Busy && h.Owner == key && p.up(r) {
			return r, true, nil
		}
	}
	return "", false, nil
}

// Pick names a runtime for a request that needs no claim (anything but a
// session's upgrade): owner's own, busy or in grace, if it is up, else the
// first that is up and free. It returns ErrFull when there is none.
func (p *Pool) Pick(ctx context.Context, owner string) (string, error) {
	holds, err := p.o.Store.Holds(ctx)
	if err != nil {
		return "", err
	}
	now, key := p.o.Now(), OwnerKey(owner)
	runtimes := p.Runtimes()
	for _, r := range runtimes {
		if h, ok := holds[r]; ok && h.Held(now) && h.Owner == key && p.up(r) {
			return r, nil
		}
	}
	for _, r := range runtimes {
		if h, ok := holds[r]; (!ok || !h.Held(now)) && p.up(r) {
			return r, nil
		}
	}
	return "", ErrFull
}

// Release ends the claim: its runtime is the owner's for the grace, then
// free. It is safe to call more than once.
func (c *Claim) Release(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		p := c.p
		p.mu.Lock()
		delete(p.claims, c)
		p.mu.Unlock()
		now := p.o.Now()
		err = p.o.Store.Release(ctx, c.Runtime, c.key, now, now.Add(p.o.Grace))
	})
	return err
}

// Renew extends every live claim's lease; Run calls it every third of the
// lease. A claim that cannot be renewed is reported to lost.
func (p *Pool) Renew(ctx context.Context, lost func(*Claim, error)) {
	p.mu.Lock()
	claims := make([]*Claim, 0, len(p.claims))
	for c := range p.claims {
		claims = append(claims, c)
	}
	p.mu.Unlock()
	until := p.o.Now().Add(p.o.Lease)
	for _, c := range claims {
		if err := p.o.Store.Renew(ctx, c.Runtime, c.key, until); err != nil && lost != nil && ctx.Err() == nil {
			lost(c, err)
		}
	}
}

// Run renews the live claims until ctx ends.
func (p *Pool) Run(ctx context.Context, lost func(*Claim, error)) {
	t := time.NewTicker(p.o.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.Renew(ctx, lost)
		}
	}
}

// State is a runtime's place in the pool, for the page, the status and the
// metrics.
type State string

const (
	Free  State = "free"
	Busy  State = "busy"
	Grace State = "grace" // its last user's, for the reconnect grace
	Down  State = "down"
)

// RuntimeStatus is one runtime as the status shows it.
type RuntimeStatus struct {
	Runtime string
	Up      bool
	State   State
	Owner   string    // OwnerKey of the holder; empty when free
	Since   time.Time // of the hold; zero when free
}

// up reports whether a runtime's health checks consider it up.
func (p *Pool) up(r string) bool { return p.o.Up == nil || p.o.Up(r) }

// Status lists the runtimes and their states.
// The claims it shows may be up to statusMaxAge old (see statusCache).
func (p *Pool) Status(ctx context.Context) ([]RuntimeStatus, error) {
	holds, err := p.statusHolds(ctx)
	if err != nil {
		return nil, err
	}
	now := p.o.Now()
	var out []RuntimeStatus
	for _, r := range p.Runtimes() {
		st := RuntimeStatus{Runtime: r, Up: p.up(r), State: Free}
		if h, ok := holds[r]; ok && h.Held(now) {
			st.Owner, st.Since, st.State = h.Owner, h.Since, Grace
			if h.Busy {
				st.State = Busy
			}
		}
		if !st.Up && st.State == Free {
			st.State = Down
		}
		out = append(out, st)
	}
	return out, nil
}

// statusHolds is the claims for Status: the last read if it is recent,
// or a new one.
func (p *Pool) statusHolds(ctx context.Context) (map[string]Hold, error) {
	c := &p.status
	c.mu.Lock()
	defer c.mu.Unlock()
	now := p.o.Now()
	if !c.at.IsZero() && !now.Before(c.at) && now.Sub(c.at) < statusMaxAge {
		return c.holds, c.err
	}
	c.holds, c.err = p.o.Store.Holds(ctx)
	c.at = p.o.Now()
	return c.holds, c.err
}
