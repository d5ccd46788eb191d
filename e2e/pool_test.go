//go:build e2e

package e2e

// The runtime pool's claims in Kubernetes Leases, against the real API
// server: two replicas (two pools sharing the Leases) never put two
// sessions on one runtime; a reconnect within the grace gets its runtime
// back through either replica; a replica that dies loses its claims when
// their Leases expire.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
)

func TestPoolLeasesTwoReplicas(t *testing.T) {
	cp := startControlPlane(t)
	leases := cp.clientset(t, cp.adminToken).CoordinationV1().Leases("default")
	runtimes := []string{"10.0.3.1:49100", "10.0.3.2:49100", "10.0.3.3:49100"}
	replica := func(name string) *pool.Pool {
		return pool.New(pool.Options{Store: pool.NewLeases(leases, name), Replica: name, Grace: 8 * time.Second, Lease: 6 * time.Second}, runtimes)
	}
	a, b := replica("proxy-a"), replica("proxy-b")
	ctx := context.Background()
	// Replica b renews its claims all along; replica a never does, as if
	// it had died right after taking them.
	bctx, stopB := context.WithCancel(ctx)
	defer stopB()
	go b.Run(bctx, func(c *pool.Claim, err error) { t.Errorf("replica b lost %s: %v", c.Runtime, err) })

	claims, via := claimTwentyAtOnce(t, a, b)
	checkLeases(t, leases, claims)

	// A session ends on one replica; within the grace only its user gets
	// the runtime back, through the other replica too.
	var ended *pool.Claim
	for _, c := range claims {
		ended = c
		break
	}
	if err := ended.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Acquire(ctx, "someone-else", "192.0.2.2"); !errors.Is(err, pool.ErrFull) {
		t.Errorf("another user took a runtime in its user's grace: %v", err)
	}
	back, err := b.Acquire(ctx, ended.Owner, "192.0.2.1")
	if err != nil || back.Runtime != ended.Runtime {
		t.Fatalf("the user reconnecting within the grace got %v, %v; had %s", back, err, ended.Runtime)
	}

	// Replica a's claims (but the one released) expire with their Leases;
	// b's, renewed, do not.
	lost := 0
	for r := range claims {
		if via[r] == a && r != ended.Runtime {
			lost++
		}
	}
	taken := map[string]bool{}
	waitFor(t, 20*time.Second, "the dead replica's runtimes free again", func() bool {
		if c, err := b.Acquire(ctx, fmt.Sprintf("late%d", len(taken)), "192.0.2.3"); err == nil {
			taken[c.Runtime] = true
		}
		return len(taken) >= lost
	})
	for r := range taken {
		if via[r] != a {
			t.Errorf("%s, held through the live replica, was taken", r)
		}
	}
}

// claimTwentyAtOnce acquires for 20 users at once over both replicas:
// three get a runtime each, which through which replica (via).
func claimTwentyAtOnce(t *testing.T, a, b *pool.Pool) (claims map[string]*pool.Claim, via map[string]*pool.Pool) {
	claims, via = map[string]*pool.Claim{}, map[string]*pool.Pool{}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		full int
	)
	ctx := context.Background()
	for i := range 20 {
		p := []*pool.Pool{a, b}[i%2]
		wg.Go(func() {
			c, err := p.Acquire(ctx, fmt.Sprintf("user%d", i), "192.0.2.1")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, pool.ErrFull):
				full++
			case err != nil:
				t.Error(err)
			default:
				if other, ok := claims[c.Runtime]; ok {
					t.Errorf("%s given to %s and %s", c.Runtime, other.Owner, c.Owner)
				}
				claims[c.Runtime], via[c.Runtime] = c, p
			}
		})
	}
	wg.Wait()
	if len(claims) != 3 || full != 17 {
		t.Fatalf("%d runtimes claimed, %d refused; want 3 and 17", len(claims), full)
	}
	return claims, via
}

// checkLeases checks that the Leases say which runtime is busy, and keep
// no user's identity.
func checkLeases(t *testing.T, leases coordinationclient.LeaseInterface, claims map[string]*pool.Claim) {
	ctx := context.Background()
	for r, c := range claims {
		l, err := leases.Get(ctx, pool.LeaseName(r), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.Annotations["cloudxr-wss-proxy/runtime"] != r || l.Annotations["cloudxr-wss-proxy/state"] != "busy" ||
			*l.Spec.HolderIdentity != pool.OwnerKey(c.Owner) || *l.Spec.HolderIdentity == c.Owner {
			t.Errorf("Lease of %s: %v %s", r, l.Annotations, *l.Spec.HolderIdentity)
		}
	}
}
