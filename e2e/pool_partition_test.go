//go:build e2e

package e2e

// The pool's claims when the API server cannot be reached. A replica holds
// a runtime only until the end of the Lease it last wrote: cut off from the
// API server, it closes its session by then, before another replica may
// hand the runtime out; an outage shorter than that costs nobody their
// session.

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
)

// TestPoolReplicaPartitionedFromAPI cuts one replica off from the API
// server (its traffic held, nothing refused or reset) while its user holds
// the pool's only runtime, and has a second user try for it through the
// other replica: the second user may have it only once the first user's
// session is closed, and that within about a lease of the cut.
func TestPoolReplicaPartitionedFromAPI(t *testing.T) {
	const lease = 6 * time.Second
	sc := newPoolSceneOn(t, "127.0.0.2")
	link := startRelay(t, strings.TrimPrefix(sc.cp.url, "https://"))
	leaseEnv := "POOL_LEASE_DURATION=" + lease.String()
	r1 := sc.replica("proxy-1", leaseEnv, "KUBECONFIG="+sc.kubeconfigVia(link.Addr()))
	r2 := sc.replica("proxy-2", leaseEnv)
	waitPool(t, r1.addr, r1.trust, 1, "free")
	waitPool(t, r2.addr, r2.trust, 1, "free")
	a, runtime := sc.holdTheRuntime(r1)

	link.Partition()
	cut := time.Now()
	since := func() time.Duration { return time.Since(cut).Round(100 * time.Millisecond) }
	// Each round: is A's session alive, does B get the runtime, do the
	// runtime's own sessions show two users. Until A's is closed and B
	// has the runtime.
	const never = time.Duration(-1)
	aClosed, bGot, shared := never, never, never
	var b *wstest.Client
	for deadline := cut.Add(60 * time.Second); (aClosed == never || bGot == never) && time.Now().Before(deadline); {
		if aClosed == never && a.Echo("a", time.Second) != nil {
			aClosed = since()
		}
		if bGot == never {
			if c, status := (&poolClient{src: freshSource()}).upgrade(t, r2.addr, r2.trust); status == http.StatusSwitchingProtocols {
				b, bGot = c, since()
			}
		}
		if shared == never && sc.rs.holding()[runtime] > 1 {
			shared = since()
		}
		time.Sleep(50 * time.Millisecond) // polling, with the deadline above
	}
	at := func(d time.Duration) string {
		if d == never {
			return "never"
		}
		return "+" + d.String()
	}
	t.Logf("lease %v; after the cut: A's session (replica 1) closed at %s, B got %s (replica 2) at %s, two sessions on it first seen at %s",
		lease, at(aClosed), runtime, at(bGot), at(shared))
	if shared != never {
		t.Errorf("two users on %s: B got it at %s through replica 2 while A's session through the cut-off replica 1 was open until %s",
			runtime, at(bGot), at(aClosed))
	}
	switch {
	case aClosed == never:
		t.Errorf("A's session through the cut-off replica still open 60 s after the cut")
	case aClosed > lease+time.Second:
		t.Errorf("A's session through the cut-off replica closed at %s, later than a lease (%v) after the cut", at(aClosed), lease)
	}
	if bGot == never {
		t.Fatalf("the cut-off replica's runtime was never handed to B")
	}

	// Healed, replica 1 knows the runtime is B's.
	link.Heal()
	if _, status := (&poolClient{src: freshSource()}).upgrade(t, r1.addr, r1.trust); status == http.StatusSwitchingProtocols {
		t.Errorf("a third user got %s through the healed replica 1 while B held it", runtime)
	}
	if err := b.Echo("b", 5*time.Second); err != nil {
		t.Errorf("B's session once replica 1 was healed: %v", err)
	}
}

// TestPoolAPIRestartShorterThanALease restarts the API server (same port,
// same etcd) while a user holds the pool's only runtime, down for less
// than a lease but long enough to miss a renewal: the session lives on,
// its claim is renewed once the API is back, and no other user gets the
// runtime meanwhile.
func TestPoolAPIRestartShorterThanALease(t *testing.T) {
	const lease = 30 * time.Second
	sc := newPoolSceneOn(t, "127.0.0.2")
	leaseEnv := "POOL_LEASE_DURATION=" + lease.String()
	r1 := sc.replica("proxy-1", leaseEnv)
	r2 := sc.replica("proxy-2", leaseEnv)
	waitPool(t, r1.addr, r1.trust, 1, "free")
	waitPool(t, r2.addr, r2.trust, 1, "free")
	a, runtime := sc.holdTheRuntime(r1)
	renewals := sc.leaseRenewals(runtime)

	// Stop right after a renewal, so that the outage is measured from the
	// last Lease the replica wrote; sample all through it.
	renewals(lease)
	stopped := time.Now()
	since := func() time.Duration { return time.Since(stopped).Round(100 * time.Millisecond) }
	sc.cp.stopAPIServer()
	check := func(when string) {
		t.Helper()
		if err := a.Echo("a", time.Second); err != nil {
			t.Fatalf("A's session closed %s, +%v after the API server stopped: %v", when, since(), err)
		}
		if _, status := (&poolClient{src: freshSource()}).upgrade(t, r2.addr, r2.trust); status == http.StatusSwitchingProtocols {
			t.Fatalf("B got %s through replica 2 %s, +%v after the API server stopped, while A held it", runtime, when, since())
		}
		if n := sc.rs.holding()[runtime]; n != 1 {
			t.Fatalf("%d sessions on %s %s, +%v after the API server stopped", n, runtime, when, since())
		}
	}
	// Down past the next renewal (due a third of a lease after the last),
	// then restarted: its start takes some seconds more.
	for end := stopped.Add(lease/3 + time.Second); time.Now().Before(end); {
		check("during the outage")
		time.Sleep(200 * time.Millisecond) // sampling the outage, until end
	}
	sc.cp.launchAPIServer(t)
	for !sc.cp.ready() {
		check("while the API server restarted")
		if since() > lease*2/3 {
			t.Fatalf("the API server not back within %v: not an outage well inside a lease of %v", since(), lease)
		}
		time.Sleep(200 * time.Millisecond) // sampling the outage, until the API server is ready
	}
	t.Logf("the API server was down %v (lease %v)", since(), lease)
	check("once the API server was back")
	for range 2 {
		renewals(lease)
		check("after a renewal")
	}
}

// holdTheRuntime is user A's session through replica r on the scene's
// only runtime, echoing.
func (sc *poolScene) holdTheRuntime(r poolReplica) (*wstest.Client, string) {
	t := sc.t
	t.Helper()
	a, status := (&poolClient{src: freshSource()}).upgrade(t, r.addr, r.trust)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("user A: %d", status)
	}
	if err := a.Echo("a", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h := sc.rs.holding()
	if len(h) != 1 {
		t.Fatalf("sessions on %v, want A's on the one runtime", h)
	}
	for runtime := range h {
		return a, runtime
	}
	return nil, ""
}

// leaseRenewals returns a function that waits, up to d, until runtime's
// Lease is renewed (its renewTime changes).
func (sc *poolScene) leaseRenewals(runtime string) func(d time.Duration) {
	leases := sc.cp.clientset(sc.t, sc.cp.adminToken).CoordinationV1().Leases(sc.ns)
	renewed := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		l, err := leases.Get(ctx, pool.LeaseName(runtime), metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil {
			return ""
		}
		return l.Spec.RenewTime.String()
	}
	return func(d time.Duration) {
		sc.t.Helper()
		deadline := time.Now().Add(d)
		last := renewed()
		for now := last; last == "" || now == "" || now == last; now = renewed() {
			if last == "" {
				last = now
			}
			if time.Now().After(deadline) {
				sc.t.Fatalf("the Lease of %s not renewed within %v", runtime, d)
			}
			time.Sleep(100 * time.Millisecond) // polling the API server, with the deadline above
		}
	}
}

// kubeconfigVia is the scene's kubeconfig with the API server reached at
// addr (a relay's).
func (sc *poolScene) kubeconfigVia(addr string) string {
	b, err := os.ReadFile(sc.kubeconfig)
	if err != nil {
		sc.t.Fatal(err)
	}
	path := filepath.Join(sc.t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), sc.cp.url, "https://"+addr)), 0o600); err != nil {
		sc.t.Fatal(err)
	}
	return path
}
