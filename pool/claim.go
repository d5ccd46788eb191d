package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Claim covers the connections that use one runtime through this replica:
// the session that took it and the native further connections that joined
// it. Each of them calls Release once when it ends; the last one releases
// the runtime.
//
// A claim is kept by renewing its hold every third of the lease (Run). It
// has a deadline in this process's own clock: the end of the lease it last
// wrote, counted from before the write, less a margin. Another replica
// counts the same lease from when it saw the write, later, so once the
// deadline passes without a renewal the claim is lost — its connections
// are closed — before any other replica can hand the runtime out, whatever
// the API server does and whatever the clocks say.
type Claim struct {
	Runtime string
	Owner   string
	key     string // OwnerKey(Owner), what the Store keeps
	client  string // the address of the client whose session took it
	taken   time.Time
	ended   chan struct{} // closed once the claim is released or lost
	p       *Pool

	// Guarded by p.mu.
	refs     int       // connections using it
	earned   bool      // one of them reached its upgrade: the runtime stays its user's for the grace
	deadline time.Time // lost unless renewed by then
	next     time.Time // the next renewal
	renewing bool
	done     bool // released or lost: nothing more is written
	lost     bool
	lastErr  error // of the last failed renewal
}

// ErrClaimExpired is what a lost claim is reported with when its renewals
// failed until its deadline.
var ErrClaimExpired = errors.New("the claim's lease could not be renewed before it ran out")

// Ended is closed once the claim is released (its last connection ended)
// or lost.
func (c *Claim) Ended() <-chan struct{} { return c.ended }

// end marks the claim done; p.mu is held. A lost claim has ended now; a
// released one once its release is written.
func (c *Claim) end(lost bool) {
	c.done, c.lost = true, lost
	delete(c.p.claims, c)
	if lost {
		close(c.ended)
	}
}

// Lost reports whether the claim was lost: a connection that joins it
// after it was reported must not go on.
func (c *Claim) Lost() bool {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.lost
}

// Release ends one connection's use of the claim; upgraded says that the
// connection reached its upgrade. The last connection's Release releases
// the runtime: into its user's grace if any of the claim's connections
// reached its upgrade (and the client's address has graces to spare), else
// free at once. Calling it after the claim was lost writes nothing.
func (c *Claim) Release(ctx context.Context, upgraded bool) error {
	p := c.p
	p.mu.Lock()
	c.earned = c.earned || upgraded
	c.refs--
	if c.refs > 0 || c.done {
		p.mu.Unlock()
		return nil
	}
	c.end(false)
	now := p.o.Now()
	var graceUntil time.Time
	if c.earned && p.o.Grace > 0 && p.graceFor(c.client, now) {
		graceUntil = now.Add(p.o.Grace)
	}
	p.mu.Unlock()
	defer close(c.ended)
	return p.o.Store.Release(ctx, c.Runtime, c.key, p.o.Replica, now, graceUntil)
}

// maxGraceClients bounds the table of graces per client address.
const maxGraceClients = 4096

// graceFor reports whether client may leave one more runtime in grace,
// and counts it; p.mu is held.
func (p *Pool) graceFor(client string, now time.Time) bool {
	if p.o.GracesPerClient <= 0 {
		return true
	}
	live := p.graces[client][:0]
	for _, end := range p.graces[client] {
		if now.Before(end) {
			live = append(live, end)
		}
	}
	if len(live) == 0 {
		delete(p.graces, client)
	}
	if len(live) >= p.o.GracesPerClient {
		p.graces[client] = live
		return false
	}
	if len(live) == 0 && len(p.graces) >= maxGraceClients {
		for k, ends := range p.graces { // sweep the ended ones, then refuse if still full
			if !now.Before(ends[len(ends)-1]) {
				delete(p.graces, k)
			}
		}
		if len(p.graces) >= maxGraceClients {
			return false
		}
	}
	p.graces[client] = append(live, now.Add(p.o.Grace))
	return true
}

// margin is how long before the end of its last lease a claim is given
// up: more than a renewal tick, and room for the clocks of two machines
// running at slightly different rates.
func (p *Pool) margin() time.Duration { return p.o.Lease / 5 }

// tick is how often Run looks at the claims, and how soon a failed
// renewal is tried again.
func (p *Pool) tick() time.Duration {
	return min(max(p.o.Lease/15, 20*time.Millisecond), time.Second)
}

// Run keeps the live claims until ctx ends: each is renewed every third of
// the lease, on its own (a renewal that hangs holds up no other claim),
// each API call with a deadline inside the claim's; a failed renewal is
// tried again until the claim's deadline, so a short outage of the API
// server costs no session. A claim whose deadline passes, or whose hold
// is found taken, is reported to lost.
func (p *Pool) Run(ctx context.Context, lost func(*Claim, error)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(p.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.check(ctx, lost, &wg, false)
		}
	}
}

// Renew renews every live claim now and waits for the renewals; claims
// past their deadline are reported to lost without one.
func (p *Pool) Renew(ctx context.Context, lost func(*Claim, error)) {
	var wg sync.WaitGroup
	p.check(ctx, lost, &wg, true)
	wg.Wait()
}

// check reports the claims past their deadline and starts the renewals
// that are due (all of them with all).
func (p *Pool) check(ctx context.Context, lost func(*Claim, error), wg *sync.WaitGroup, all bool) {
	now := p.o.Now()
	type loss struct {
		c   *Claim
		err error
	}
	var expired []loss
	p.mu.Lock()
	for c := range p.claims {
		switch {
		case !now.Before(c.deadline):
			c.end(true)
			err := ErrClaimExpired
			if c.lastErr != nil {
				err = fmt.Errorf("%w: %w", ErrClaimExpired, c.lastErr)
			}
			expired = append(expired, loss{c, err})
		case !c.renewing && (all || !now.Before(c.next)):
			c.renewing = true
			wg.Go(func() { p.renew(ctx, c, lost) })
		}
	}
	p.mu.Unlock()
	for _, l := range expired {
		if lost != nil && ctx.Err() == nil {
			lost(l.c, l.err)
		}
	}
}

// renew renews one claim's hold.
func (p *Pool) renew(ctx context.Context, c *Claim, lost func(*Claim, error)) {
	start := p.o.Now()
	p.mu.Lock()
	left := c.deadline.Sub(start)
	p.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, min(p.o.Lease/4, max(left, 0)))
	err := p.o.Store.Renew(rctx, c.Runtime, c.key, p.o.Replica, start, start.Add(p.o.Lease))
	cancel()
	p.mu.Lock()
	c.renewing = false
	report := false
	switch {
	case c.done:
	case err == nil:
		c.deadline, c.next, c.lastErr = start.Add(p.o.Lease-p.margin()), start.Add(p.o.Lease/3), nil
	case errors.Is(err, ErrNotHeld):
		c.end(true)
		report = true
	default:
		c.next, c.lastErr = p.o.Now().Add(p.tick()), err
	}
	p.mu.Unlock()
	if report && lost != nil && ctx.Err() == nil {
		lost(c, err)
	}
}
