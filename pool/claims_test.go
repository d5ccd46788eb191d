package pool

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// replicaOn is a pool on store as replica, with its own clock.
func replicaOn(store Store, name string, clk *clock, o Options, runtimes ...string) *Pool {
	o.Store, o.Replica, o.Now = store, name, clk.now
	if o.Lease == 0 {
		o.Lease = 15 * time.Second
	}
	return New(o, runtimes)
}

func mustFull(t *testing.T, p *Pool, owner, why string) {
	t.Helper()
	if c, err := p.Acquire(context.Background(), owner, "192.0.2.9"); !errors.Is(err, ErrFull) {
		t.Fatalf("%s: %s got %v, %v; want ErrFull", why, owner, c, err)
	}
}

// Every connection on a runtime is covered by its claim: a native client's
// further connections, here and through another replica, keep the runtime
// busy after the session that took it ends; only when the last of them
// ends does it go into grace, and only then can another user have it
// after the grace.
func TestJoinedConnectionsKeepTheRuntime(t *testing.T) {
	for _, s := range stores() {
		t.Run(s.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
			a := replicaOn(s.make(), "a", clk, Options{Grace: 10 * time.Second})
			b := replicaOn(s.shared(), "b", clk, Options{Grace: 10 * time.Second})
			a.SetRuntimes([]string{"r:1"})
			b.SetRuntimes([]string{"r:1"})
			ctx := context.Background()
			main := acquire(t, a, "ann")
			here, err := a.Join(ctx, "ann")
			if err != nil || here != main {
				t.Fatalf("a further connection here: %v, %v; want the session's claim", here, err)
			}
			there, err := b.Join(ctx, "ann")
			if err != nil || there == nil || there.Runtime != main.Runtime {
				t.Fatalf("a further connection through b: %v, %v", there, err)
			}
			if c, err := b.Join(ctx, "bob"); c != nil || err != nil {
				t.Fatalf("bob joined ann's runtime: %v, %v", c, err)
			}
			main.Release(ctx, true)
			for range 4 { // well past the grace and the lease, renewed all along
				clk.add(5 * time.Second)
				a.Renew(ctx, func(c *Claim, err error) { t.Errorf("a lost %s: %v", c.Runtime, err) })
				b.Renew(ctx, func(c *Claim, err error) { t.Errorf("b lost %s: %v", c.Runtime, err) })
				mustFull(t, b, "bob", "while ann's further connections live")
			}
			here.Release(ctx, false)
			mustFull(t, b, "bob", "while ann's connection through b lives")
			there.Release(ctx, true)
			mustFull(t, a, "bob", "in ann's grace")
			clk.add(11 * time.Second)
			if c := acquire(t, a, "bob"); c.Runtime != "r:1" {
				t.Errorf("after the grace bob got %s", c.Runtime)
			}
		})
	}
}

// A runtime goes into grace only for a user who had a session: a claim
// none of whose connections reached its upgrade (a refused upgrade, a
// client gone before the 101) frees its runtime at once; and one client
// address leaves at most GracesPerClient runtimes in grace.
func TestGraceIsEarned(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	p := replicaOn(NewMemory(), "a", clk, Options{Grace: time.Minute, GracesPerClient: 2}, "r:1", "r:2", "r:3")
	ctx := context.Background()
	for i := range 3 {
		c, err := p.Acquire(ctx, "never-upgraded", "192.0.2.1")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		c.Release(ctx, false)
	}
	for _, u := range []string{"u1", "u2", "u3"} {
		c, err := p.Acquire(ctx, u, "192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		c.Release(ctx, true)
	}
	st, _ := p.Status(ctx)
	grace := 0
	for _, r := range st {
		if r.State == Grace {
			grace++
		}
	}
	if grace != 2 {
		t.Errorf("one address's three sessions left %d runtimes in grace, want 2: %+v", grace, st)
	}
	if c, err := p.Acquire(ctx, "someone", "192.0.2.8"); err != nil {
		t.Errorf("the runtime beyond the bound was not free: %v %v", c, err)
	}
}

// One user holds at most MaxPerUser runtimes; a native client's further
// connections join and do not count; a user's own runtime in grace comes
// back to it.
func TestMaxPerUser(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)}
	p := replicaOn(NewMemory(), "a", clk, Options{Grace: time.Minute, MaxPerUser: 1}, "r:1", "r:2", "r:3")
	ctx := context.Background()
	ann := acquire(t, p, "ann")
	if c, err := p.Acquire(ctx, "ann", "192.0.2.1"); !errors.Is(err, ErrUserLimit) {
		t.Fatalf("ann's second runtime: %v, %v; want ErrUserLimit", c, err)
	}
	if c, err := p.Join(ctx, "ann"); c != ann || err != nil {
		t.Fatalf("ann's further connection: %v, %v", c, err)
	}
	ann.Release(ctx, true)
	ann.Release(ctx, true)
	if again := acquire(t, p, "ann"); again.Runtime != ann.Runtime {
		t.Errorf("ann came back to %s, had %s", again.Runtime, ann.Runtime)
	}
}

// Clocks apart: a replica whose clock runs 30 s behind writes renewals
// that look expired by the other's clock, and one 30 s ahead writes ones
// that look good for long after it died. Judged from when each replica saw
// the Lease change, neither double-books nor holds a dead replica's
// runtime beyond a lease.
func TestLeasesWithClocksApart(t *testing.T) {
	for _, skew := range []time.Duration{-30 * time.Second, 30 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			api := newFakeAPI()
			base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
			ca, cb := &clock{t: base.Add(skew)}, &clock{t: base}
			a := replicaOn(NewLeases(api, "a"), "a", ca, Options{Grace: time.Minute}, "r:1")
			b := replicaOn(NewLeases(api, "b"), "b", cb, Options{Grace: time.Minute}, "r:1")
			ctx := context.Background()
			acquire(t, a, "ann")
			mustFull(t, b, "bob", "at once")
			for range 3 { // a renews every 5 s; b never sees it expired
				ca.add(5 * time.Second)
				cb.add(5 * time.Second)
				a.Renew(ctx, func(c *Claim, err error) { t.Fatalf("a lost its claim: %v", err) })
				mustFull(t, b, "bob", "while a renews")
			}
			// a dies: b may have the runtime one lease after it last saw a write.
			cb.add(14 * time.Second)
			mustFull(t, b, "bob", "within the lease of a's last renewal")
			cb.add(2 * time.Second)
			if c := acquire(t, b, "bob"); c.Runtime != "r:1" {
				t.Errorf("bob got %s", c.Runtime)
			}
		})
	}
}

// store kinds for the tests that run on both: make is the first replica's
// store, shared the second's (the same holds).
type storeKind struct {
	name         string
	make, shared func() Store
}

func stores() []storeKind {
	var m *Memory
	var api *fakeAPI
	return []storeKind{
		{"memory", func() Store { m = NewMemory(); return m }, func() Store { return m }},
		{"leases", func() Store { api = newFakeAPI(); return NewLeases(api, "a") }, func() Store { return NewLeases(api, "b") }},
	}
}

// lossLog records lost claims and when.
type lossLog struct {
	mu   sync.Mutex
	lost map[*Claim]time.Time
}

func (l *lossLog) record(c *Claim, _ error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = map[*Claim]time.Time{}
	}
	l.lost[c] = time.Now()
}

func (l *lossLog) when(c *Claim) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.lost[c]
	return at, ok
}

// runReplica runs p's renewals until the test ends.
func runReplica(t *testing.T, p *Pool, lost func(*Claim, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.Run(ctx, lost) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// A replica cut off from the API server (its calls hang: a partition)
// gives its claims up by their own deadline, before the other replica can
// hand the runtime to someone else; real time, a lease of 1 s.
func TestPartitionedReplicaGivesUpFirst(t *testing.T) {
	api := newFakeAPI()
	cut := &cutAPI{LeaseClient: api}
	o := Options{Lease: time.Second}
	a := New(Options{Store: NewLeases(cut, "a"), Replica: "a", Lease: o.Lease}, []string{"r:1"})
	b := New(Options{Store: NewLeases(api, "b"), Replica: "b", Lease: o.Lease}, []string{"r:1"})
	var lost lossLog
	runReplica(t, a, lost.record)
	runReplica(t, b, func(c *Claim, err error) { t.Errorf("b lost %s: %v", c.Runtime, err) })
	ctx := context.Background()
	ann, err := a.Acquire(ctx, "ann", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	cut.cut.Store(true)
	var bob *Claim
	deadline := time.Now().Add(10 * time.Second)
	for bob == nil && time.Now().Before(deadline) {
		if bob, err = b.Acquire(ctx, "bob", "192.0.2.2"); err != nil && !errors.Is(err, ErrFull) {
			t.Fatal(err)
		}
		if bob == nil {
			time.Sleep(10 * time.Millisecond) // polling the other replica, as a user retrying
		}
	}
	gotAt := time.Now()
	lostAt, ok := lost.when(ann)
	switch {
	case bob == nil:
		t.Fatal("bob never got the runtime")
	case !ok:
		t.Fatalf("bob got the runtime %v after the cut while ann's claim was still kept", gotAt.Sub(cutAt))
	case !lostAt.Before(gotAt):
		t.Fatalf("ann's claim lost at +%v, bob had the runtime at +%v", lostAt.Sub(cutAt), gotAt.Sub(cutAt))
	}
	t.Logf("ann's claim lost at +%v, bob's at +%v", lostAt.Sub(cutAt).Round(time.Millisecond), gotAt.Sub(cutAt).Round(time.Millisecond))
}

// slowRuntime is a store whose renewals of one runtime hang.
type slowRuntime struct {
	Store
	runtime string
}

func (s slowRuntime) Renew(ctx context.Context, runtime, owner, replica string, now, until time.Time) error {
	if runtime == s.runtime {
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Store.Renew(ctx, runtime, owner, replica, now, until)
}

// flaky fails every call while off is set.
type flaky struct {
	Store
	mu  sync.Mutex
	off bool
}

func (f *flaky) down() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.off }

func (f *flaky) set(off bool) { f.mu.Lock(); f.off = off; f.mu.Unlock() }

func (f *flaky) Renew(ctx context.Context, runtime, owner, replica string, now, until time.Time) error {
	if f.down() {
		return errRefused
	}
	return f.Store.Renew(ctx, runtime, owner, replica, now, until)
}

func (f *flaky) Take(ctx context.Context, runtime, owner, replica string, join bool, now, until time.Time) (bool, error) {
	if f.down() {
		return false, errRefused
	}
	return f.Store.Take(ctx, runtime, owner, replica, join, now, until)
}

func (f *flaky) Release(ctx context.Context, runtime, owner, replica string, now, graceUntil time.Time) error {
	if f.down() {
		return errRefused
	}
	return f.Store.Release(ctx, runtime, owner, replica, now, graceUntil)
}

func (f *flaky) Holds(ctx context.Context, now time.Time) (map[string]Hold, error) {
	if f.down() {
		return nil, errRefused
	}
	return f.Store.Holds(ctx, now)
}

// Renewals do not wait on each other: one claim's hanging renewal costs
// only that claim; and an outage shorter than what the lease leaves costs
// no claim at all.
func TestRenewalsEachOnTheirOwn(t *testing.T) {
	f := &flaky{Store: NewMemory()}
	p := New(Options{Store: slowRuntime{Store: f, runtime: "r:1"}, Lease: 900 * time.Millisecond}, []string{"r:1", "r:2"})
	var lost lossLog
	runReplica(t, p, lost.record)
	ctx := context.Background()
	stuck, err := p.Acquire(ctx, "ann", "192.0.2.1")
	if err != nil || stuck.Runtime != "r:1" {
		t.Fatalf("%v %v", stuck, err)
	}
	fine, err := p.Acquire(ctx, "bob", "192.0.2.2")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := lost.when(stuck); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := lost.when(stuck); !ok {
		t.Fatal("the claim whose renewals hang was never given up")
	}
	f.set(true) // an outage of a third of the lease
	time.Sleep(300 * time.Millisecond)
	f.set(false)
	end := time.Now().Add(2 * time.Second) // two leases more
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
	}
	if at, ok := lost.when(fine); ok {
		t.Errorf("the other claim was lost at %v: a hanging renewal or a short outage cost it", at)
	}
}
