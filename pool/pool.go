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
// Lease's resourceVersion there), so two users never get one runtime,
// whichever replica they reach.
//
// Every connection that uses a runtime is covered by a Claim: the session
// that took it and a native client's further connections that joined it.
// The runtime is released (or goes into grace) only when the last of them
// ends, and a claim that cannot be kept (see Run) is reported so that all
// of them are closed.
package pool

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"
	"time"
)

// Options configure a Pool.
type Options struct {
	Store Store
	// Replica names this process among the holders of a runtime; "": a
	// random name.
	Replica string
	// Up reports whether a runtime's health checks consider it up.
	Up func(runtime string) bool
	// Grace is how long an ended session's runtime stays its user's.
	Grace time.Duration
	// GracesPerClient bounds how many runtimes the sessions of one client
	// address can leave in grace at once (a session beyond it releases
	// its runtime at once); 0: no bound.
	GracesPerClient int
	// MaxPerUser bounds how many runtimes one user holds busy at once;
	// 0: no bound. A native client's further connections join the
	// runtime their session holds and do not count.
	MaxPerUser int
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
	graces   map[string][]time.Time // by client address: when the graces its sessions earned end

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
	if o.Replica == "" {
		o.Replica = "replica-" + rand.Text()[:10]
	}
	p := &Pool{o: o, claims: map[*Claim]struct{}{}, graces: map[string][]time.Time{}}
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

// OwnerKey is what a Store keeps of an owner: a hash, so that neither a
// token's subject nor the pool cookie (which lets its bearer take the
// runtime back) is written into Leases or shown in a status.
func OwnerKey(owner string) string {
	sum := sha256.Sum256([]byte("cloudxr-wss-proxy pool owner\x00" + owner))
	return hex.EncodeToString(sum[:16])
}

// Acquire takes a runtime for owner, whose connection comes from client
// (an address, for the bound on graces): owner's own runtime in grace
// first (a reconnect), then a free one, each only if it is up. It returns
// ErrFull (a *FullError saying why) when there is none, ErrUserLimit when
// owner already holds MaxPerUser runtimes.
func (p *Pool) Acquire(ctx context.Context, owner, client string) (*Claim, error) {
	holds, err := p.o.Store.Holds(ctx, p.o.Now())
	if err != nil {
		return nil, err
	}
	now, key := p.o.Now(), OwnerKey(owner)
	p.mu.Lock()
	runtimes, start := p.runtimes, p.next
	p.next++
	p.mu.Unlock()
	var order []string
	busy := 0
	for r, h := range holds {
		if h.Held(now) && h.Busy && h.Owner == key {
			busy++
		}
		if h.Held(now) && !h.Busy && h.Owner == key && slices.Contains(runtimes, r) {
			order = append(order, r) // the owner's own, in grace
		}
	}
	if p.o.MaxPerUser > 0 && busy >= p.o.MaxPerUser {
		return nil, ErrUserLimit
	}
	slices.Sort(order)
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
		if c, err := p.take(ctx, r, owner, key, false); c != nil || err != nil {
			if c != nil {
				c.client = client
			}
			return c, err
		}
	}
	return nil, p.full(runtimes, holds, now)
}

// Join adds a native client's further connection to the claim of owner's
// session: the one held here, or one that owner's session holds through
// another replica (this replica then holds the runtime beside it). It
// returns nil when owner's sessions hold no runtime that is up.
func (p *Pool) Join(ctx context.Context, owner string) (*Claim, error) {
	p.mu.Lock() // up takes the health checks' own locks, never p.mu
	for c := range p.claims {
		if c.Owner == owner && p.up(c.Runtime) {
			c.refs++
			p.mu.Unlock()
			return c, nil
		}
	}
	p.mu.Unlock()
	holds, err := p.o.Store.Holds(ctx, p.o.Now())
	if err != nil {
		return nil, err
	}
	now, key := p.o.Now(), OwnerKey(owner)
	for _, r := range p.Runtimes() {
		if h, ok := holds[r]; ok && h.Held(now) && h.Busy && h.Owner == key && p.up(r) {
			if c, err := p.take(ctx, r, owner, key, true); c != nil || err != nil {
				return c, err
			}
		}
	}
	return nil, nil
}

// take asks the store for runtime and, when it is granted, makes the claim
// that covers it, with its deadline counted from before the write.
func (p *Pool) take(ctx context.Context, r, owner, key string, join bool) (*Claim, error) {
	start := p.o.Now()
	ok, err := p.o.Store.Take(ctx, r, key, p.o.Replica, join, start, start.Add(p.o.Lease))
	if err != nil || !ok {
		return nil, err
	}
	c := &Claim{Runtime: r, Owner: owner, key: key, p: p, refs: 1, taken: start, ended: make(chan struct{}),
		deadline: start.Add(p.o.Lease - p.margin()), next: start.Add(p.o.Lease / 3)}
	p.mu.Lock()
	p.claims[c] = struct{}{}
	p.mu.Unlock()
	return c, nil
}

// Pick names a runtime for a request that needs no claim (anything but a
// session's upgrade): owner's own, busy or in grace, if it is up, else the
// first that is up and free. It returns ErrFull (a *FullError) when there
// is none.
func (p *Pool) Pick(ctx context.Context, owner string) (string, error) {
	holds, err := p.o.Store.Holds(ctx, p.o.Now())
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
	return "", p.full(runtimes, holds, now)
}

// Holding returns the oldest claim owner's sessions hold through this
// replica, or nil.
func (p *Pool) Holding(owner string) *Claim {
	p.mu.Lock()
	defer p.mu.Unlock()
	var oldest *Claim
	for c := range p.claims {
		if c.Owner == owner && (oldest == nil || c.taken.Before(oldest.taken)) {
			oldest = c
		}
	}
	return oldest
}

// Users names the owner of each runtime a claim of this replica holds.
func (p *Pool) Users() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.claims))
	for c := range p.claims {
		out[c.Runtime] = c.Owner
	}
	return out
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
	c.holds, c.err = p.o.Store.Holds(ctx, now)
	c.at = p.o.Now()
	return c.holds, c.err
}
