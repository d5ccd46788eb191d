package pool

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// conn is a connection in the property test: a user's use of a runtime
// through a claim of one replica.
type conn struct {
	user  string
	claim *Claim
}

// world is two replicas on one store, each with its own clock and its own
// way to the store that can be cut, and the connections their sessions
// hold; a lost claim closes every connection it covers, as the proxy does.
type world struct {
	t        *testing.T
	rng      *rand.Rand
	replicas []*Pool
	clocks   []*clock
	ways     []*flaky
	mu       sync.Mutex
	conns    []conn
	log      []string
}

func (w *world) lost(c *Claim, _ error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, fmt.Sprintf("lost %s's claim on %s", c.Owner, c.Runtime))
	kept := w.conns[:0]
	for _, k := range w.conns {
		if k.claim != c {
			kept = append(kept, k)
		}
	}
	w.conns = kept
}

// step does one random thing.
func (w *world) step(ctx context.Context) {
	users := []string{"ann", "bob", "cy", "dee"}
	i := w.rng.IntN(len(w.replicas))
	p, user := w.replicas[i], users[w.rng.IntN(len(users))]
	switch n := w.rng.IntN(10); {
	case n < 3:
		if c, err := p.Acquire(ctx, user, "192.0.2."+user); err == nil {
			w.add(conn{user, c}, fmt.Sprintf("%s acquires %s via %d", user, c.Runtime, i))
		}
	case n < 5:
		if c, err := p.Join(ctx, user); err == nil && c != nil {
			w.add(conn{user, c}, fmt.Sprintf("%s joins %s via %d", user, c.Runtime, i))
		}
	case n < 7:
		w.mu.Lock()
		if len(w.conns) == 0 {
			w.mu.Unlock()
			return
		}
		k := w.rng.IntN(len(w.conns))
		c := w.conns[k]
		w.conns = append(w.conns[:k], w.conns[k+1:]...)
		w.log = append(w.log, fmt.Sprintf("%s's connection to %s ends", c.user, c.claim.Runtime))
		w.mu.Unlock()
		c.claim.Release(ctx, w.rng.IntN(2) == 0)
	case n < 8:
		cut := w.rng.IntN(3) == 0
		w.ways[i].set(cut)
		w.note(fmt.Sprintf("replica %d cut: %v", i, cut))
	default:
		d := time.Duration(w.rng.IntN(3000)) * time.Millisecond
		for _, c := range w.clocks {
			c.add(d)
		}
		w.note(fmt.Sprintf("%v pass", d))
		for _, r := range w.replicas { // each replica's renewal tick
			var wg sync.WaitGroup
			r.check(ctx, w.lost, &wg, false)
			wg.Wait()
		}
	}
}

func (w *world) add(c conn, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns = append(w.conns, c)
	w.log = append(w.log, what)
}

func (w *world) note(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, what)
}

// check fails when two users' connections are on one runtime.
func (w *world) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	on := map[string]string{}
	for _, c := range w.conns {
		if u, ok := on[c.claim.Runtime]; ok && u != c.user {
			tail := w.log[max(0, len(w.log)-25):]
			w.t.Fatalf("%s and %s both on %s; the last steps:\n%v", u, c.user, c.claim.Runtime, tail)
		}
		on[c.claim.Runtime] = c.user
	}
}

// Random interleavings of sessions, native joins, ends, cut-off replicas,
// lost claims and time passing (grace and leases running out) over three
// runtimes never leave two users' connections on one runtime: with the
// in-process store, and with Leases whose replicas' clocks are 30 s apart.
func TestNeverTwoUsersOnARuntime(t *testing.T) {
	runtimes := []string{"r:1", "r:2", "r:3"}
	for _, kind := range stores() {
		t.Run(kind.name, func(t *testing.T) {
			for seed := range uint64(60) {
				w := &world{t: t, rng: rand.New(rand.NewPCG(seed, 7))}
				base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
				skews := []time.Duration{0, 0}
				if kind.name == "leases" {
					skews[1] = 30 * time.Second
				}
				for i, make := range []func() Store{kind.make, kind.shared} {
					clk := &clock{t: base.Add(skews[i])}
					way := &flaky{Store: make()}
					o := Options{Store: way, Replica: fmt.Sprint("replica-", i), Now: clk.now, Grace: 10 * time.Second, Lease: 15 * time.Second, GracesPerClient: 2}
					w.replicas, w.clocks, w.ways = append(w.replicas, New(o, runtimes)), append(w.clocks, clk), append(w.ways, way)
				}
				ctx := context.Background()
				for range 400 {
					w.step(ctx)
					w.check()
				}
			}
		})
	}
}
