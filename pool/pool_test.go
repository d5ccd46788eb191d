package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time for the pool's grace and leases.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newPool(t *testing.T, down map[string]bool, runtimes ...string) (*Pool, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	p := New(Options{Store: NewMemory(), Grace: time.Minute, Lease: 15 * time.Second, Now: c.now,
		Up: func(r string) bool { mu.Lock(); defer mu.Unlock(); return !down[r] }}, runtimes)
	return p, c
}

func acquire(t *testing.T, p *Pool, owner string) *Claim {
	t.Helper()
	c, err := p.Acquire(context.Background(), owner, "192.0.2.1")
	if err != nil {
		t.Fatalf("%s: %v", owner, err)
	}
	return c
}

// Three sessions get three runtimes; a fourth finds the pool full.
func TestEachSessionItsOwnRuntime(t *testing.T) {
	p, _ := newPool(t, nil, "10.0.0.3:49100", "10.0.0.1:49100", "10.0.0.2:49100", "10.0.0.1:49100")
	got := map[string]bool{}
	for _, user := range []string{"ann", "bob", "cy"} {
		got[acquire(t, p, user).Runtime] = true
	}
	if len(got) != 3 {
		t.Fatalf("three sessions on %d runtimes: %v", len(got), got)
	}
	if _, err := p.Acquire(context.Background(), "dee", "192.0.2.1"); !errors.Is(err, ErrFull) {
		t.Errorf("a fourth session: %v, want ErrFull", err)
	}
}

// An ended session's runtime stays its user's for the grace: another user
// cannot take it, the same user reconnecting gets it back; after the grace
// anyone can.
func TestReconnectGrace(t *testing.T) {
	p, clk := newPool(t, nil, "a:1", "b:1")
	ctx := context.Background()
	ann := acquire(t, p, "ann")
	bob := acquire(t, p, "bob")
	if err := ann.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	ann.Release(ctx, true) // twice is harmless
	if _, err := p.Acquire(ctx, "cy", "192.0.2.1"); !errors.Is(err, ErrFull) {
		t.Errorf("another user took a runtime in its user's grace: %v", err)
	}
	clk.add(30 * time.Second)
	again := acquire(t, p, "ann")
	if again.Runtime != ann.Runtime {
		t.Errorf("ann reconnected to %s, had %s", again.Runtime, ann.Runtime)
	}
	again.Release(ctx, true)
	bob.Release(ctx, true)
	clk.add(61 * time.Second)
	cy := acquire(t, p, "cy")
	dee := acquire(t, p, "dee")
	if cy.Runtime == dee.Runtime {
		t.Errorf("two sessions on %s", cy.Runtime)
	}
}

// A runtime marked down is never handed out, and the status says which
// runtime is in which state.
func TestDownRuntimeNotHandedOut(t *testing.T) {
	p, _ := newPool(t, map[string]bool{"b:1": true}, "a:1", "b:1", "c:1")
	ctx := context.Background()
	for _, u := range []string{"u1", "u2"} {
		if c := acquire(t, p, u); c.Runtime == "b:1" {
			t.Fatal("the down runtime was handed out")
		}
	}
	if _, err := p.Acquire(ctx, "u3", "192.0.2.1"); !errors.Is(err, ErrFull) {
		t.Errorf("with the only free runtime down: %v", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := fmt.Sprint(st[0].State, st[1].State, st[2].State)
	if states != "busydownbusy" || st[0].Owner == "" || st[1].Owner != "" {
		t.Errorf("status %+v", st)
	}
}

// A replica that dies holds nothing for long: a busy hold that is not
// renewed expires after the lease, and renewing keeps it.
func TestLeaseExpiresUnlessRenewed(t *testing.T) {
	p, clk := newPool(t, nil, "a:1")
	ctx := context.Background()
	acquire(t, p, "ann")
	clk.add(10 * time.Second)
	p.Renew(ctx, func(c *Claim, err error) { t.Errorf("renewing %s: %v", c.Runtime, err) })
	clk.add(10 * time.Second)
	if _, err := p.Acquire(ctx, "bob", "192.0.2.1"); !errors.Is(err, ErrFull) {
		t.Fatalf("a renewed hold was taken: %v", err)
	}
	clk.add(6 * time.Second) // 16 s after the renewal: expired
	if c := acquire(t, p, "bob"); c.Runtime != "a:1" {
		t.Errorf("got %s", c.Runtime)
	}
}

// Sessions arriving at once never share a runtime.
func TestConcurrentAcquiresNeverShare(t *testing.T) {
	runtimes := []string{"a:1", "b:1", "c:1", "d:1", "e:1"}
	p, _ := newPool(t, nil, runtimes...)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]string{}
		full int
	)
	for i := range 20 {
		wg.Go(func() {
			c, err := p.Acquire(context.Background(), fmt.Sprintf("user%d", i), "192.0.2.1")
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrFull) {
				full++
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			if other, ok := seen[c.Runtime]; ok {
				t.Errorf("%s given to %s and %s", c.Runtime, other, c.Owner)
			}
			seen[c.Runtime] = c.Owner
		})
	}
	wg.Wait()
	if len(seen) != len(runtimes) || full != 20-len(runtimes) {
		t.Errorf("%d runtimes taken, %d refused", len(seen), full)
	}
}

// countingStore counts reads of the claims.
type countingStore struct {
	Store
	reads atomic.Int64
}

func (s *countingStore) Holds(ctx context.Context, now time.Time) (map[string]Hold, error) {
	s.reads.Add(1)
	return s.Store.Holds(ctx, now)
}

// Anyone may ask for the pool's status (the page, /status.json, /metrics):
// however many ask at once, the claims' store is read once a second at
// most, so that nobody can drive calls to the Kubernetes API server.
func TestStatusReadsTheClaimsOnceASecond(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)}
	store := &countingStore{Store: NewMemory()}
	p := New(Options{Store: store, Grace: time.Minute, Now: c.now}, []string{"a:1", "b:1"})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if _, err := p.Status(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := store.reads.Load(); n != 1 {
		t.Errorf("100 status requests read the claims %d times, want once", n)
	}
	acquire(t, p, "ann")
	reads := store.reads.Load()
	c.add(statusMaxAge)
	st, _ := p.Status(t.Context())
	if store.reads.Load() != reads+1 || st[0].State != Busy {
		t.Errorf("a second later: %d reads, status %+v; want a new read showing the claim", store.reads.Load()-reads, st)
	}
}
