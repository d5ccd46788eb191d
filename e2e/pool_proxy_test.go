//go:build e2e

package e2e

// The runtime pool through the proxy itself: two proxy processes, each
// talking to a real Kubernetes API server as the pool overlay's service
// account (so with exactly the rights deploy/kubernetes/pool/rbac.yaml
// grants), sharing their claims in Leases, over three test runtimes
// discovered through a Service's EndpointSlices. And discovery through DNS
// against a real BIND.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoveryclient "k8s.io/client-go/kubernetes/typed/discovery/v1"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// TestPoolTwoProxyReplicas runs two replicas sharing one pool's claims in
// a real API server, through the life of a lab: filled up, a user back
// within the grace, a replica killed, a runtime down, the EndpointSlice
// changed.
func TestPoolTwoProxyReplicas(t *testing.T) {
	sc := newPoolScene(t)
	r1 := sc.replica("proxy-1")
	r2 := sc.replica("proxy-2")
	waitPool(t, r1.addr, r1.trust, 3, "free")
	waitPool(t, r2.addr, r2.trust, 3, "free")
	if v := poolStatus(t, r1.addr, r1.trust); v.Claims != "kubernetes" {
		t.Errorf("claims kept in %q", v.Claims)
	}
	users := []*poolClient{{src: "127.1.0.1"}, {src: "127.1.0.2"}, {src: "127.1.0.3"}, {src: "127.1.0.4"}}
	sessions := sc.fill(users, []poolReplica{r1, r2, r1, r2})
	sc.graceKeepsARuntime(users, sessions, r1, r2)

	// Replica 1 dies holding user 2's and user 3's runtimes (killed, no
	// release): its Leases expire, and replica 2 hands them out again.
	r1.p.cmd.Process.Signal(syscall.SIGKILL)
	<-r1.p.done
	got := 0
	waitFor(t, 20*time.Second, "the dead replica's runtimes handed out again", func() bool {
		if _, status := (&poolClient{src: freshSource()}).upgrade(t, r2.addr, r2.trust); status == http.StatusSwitchingProtocols {
			got++
		}
		return got == 2
	})

	// End everything and start afresh on a third replica.
	r2.p.cmd.Process.Signal(syscall.SIGTERM)
	<-r2.p.done
	r3 := sc.replica("proxy-3")
	waitPool(t, r3.addr, r3.trust, 3, "")
	gone := sc.runtimeDown(r3)
	sc.sliceChanges(r3, gone)
}

// poolScene is TestPoolTwoProxyReplicas's world: a namespace with the
// pool's Role, three runtimes in an EndpointSlice.
type poolScene struct {
	t          *testing.T
	cp         *controlPlane
	ns         string
	kubeconfig string
	rs         *runtimeSet
	slices     discoveryclient.EndpointSliceInterface
}

// poolReplica is one proxy of the scene, with its address and the trust
// for its generated certificate.
type poolReplica struct {
	p     *proc
	addr  string
	trust *tls.Config
}

func newPoolScene(t *testing.T) *poolScene {
	return newPoolSceneOn(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
}

// newPoolSceneOn is the scene with a runtime on each of ips.
func newPoolSceneOn(t *testing.T, ips ...string) *poolScene {
	cp := startControlPlane(t)
	admin := cp.clientset(t, cp.adminToken)
	sc := &poolScene{t: t, cp: cp, ns: "xr"}
	sc.kubeconfig = poolNamespace(t, cp, admin, sc.ns)
	sc.rs = startRuntimes(t, ips...)
	sc.slices = admin.DiscoveryV1().EndpointSlices(sc.ns)
	if _, err := sc.slices.Create(context.Background(), runtimeSlice(sc.ns, sc.rs.port, ips...), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return sc
}

// replica starts a proxy on the pool, with the per-client limits at their
// defaults: each user of the test comes from its own address. env is
// added to (and overrides) the scene's settings.
func (sc *poolScene) replica(name string, env ...string) poolReplica {
	dir := sc.t.TempDir()
	p := startProc(sc.t, append([]string{"KUBECONFIG=" + sc.kubeconfig, "POD_NAME=" + name, "CERT_DIR=" + dir,
		"BACKEND_POOL=kubernetes:runtimes:signaling", "POOL_CLAIMS=kubernetes", "POOL_RECONNECT_GRACE=4s", "POOL_LEASE_DURATION=3s",
		"CLIENT_MAX_CONNECTIONS", "CLIENT_HANDSHAKE_RATE", "CLIENT_AUTH_FAILURES"}, env...)...)
	return poolReplica{p: p, addr: p.addr(), trust: trustPEM(sc.t, filepath.Join(dir, "ca.crt"))}
}

// fill puts three users on the three runtimes, over both replicas (at
// says where each user goes); the fourth is refused, and the replica that
// refused it says so in its log and metrics.
func (sc *poolScene) fill(users []*poolClient, at []poolReplica) []*wstest.Client {
	t := sc.t
	var sessions []*wstest.Client
	for i, u := range users[:3] {
		c, status := u.upgrade(t, at[i].addr, at[i].trust)
		if status != http.StatusSwitchingProtocols || u.cookie == "" {
			t.Fatalf("user %d: %d, cookie %q", i, status, u.cookie)
		}
		if err := c.Echo("hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, c)
	}
	if h := sc.rs.holding(); len(h) != 3 {
		t.Fatalf("three sessions on %v, want one on each runtime", h)
	}
	r := at[3]
	full, status := users[3].upgrade(t, r.addr, r.trust)
	body, _ := io.ReadAll(full.Response.Body)
	if status != http.StatusServiceUnavailable || full.Response.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "pool is in use: try again") {
		t.Fatalf("a fourth user: %d %q %q", status, full.Response.Header.Get("Retry-After"), body)
	}
	r.p.waitLine(5*time.Second, "the pool-full line", func(m map[string]any) bool { return m["reason"] == "pool full" })
	metricsURL := "http://" + r.p.waitLog("admin listener")["address"].(string) + "/metrics"
	want := []string{`cloudxr_wss_proxy_pool_runtimes{state="busy"} 3`, `cloudxr_wss_proxy_pool_runtimes{state="free"} 0`,
		"cloudxr_wss_proxy_pool_claims_refused_total 1", `cloudxr_wss_proxy_sessions_total{outcome="pool full"} 1`}
	deadline := time.Now().Add(5 * time.Second)
	for missing := missingLines(t, metricsURL, want); len(missing) > 0; missing = missingLines(t, metricsURL, want) {
		if time.Now().After(deadline) {
			t.Errorf("the refusing replica's metrics lack %q", missing)
			break
		}
		time.Sleep(50 * time.Millisecond) // polling, with the deadline above
	}
	return sessions
}

// missingLines is which of want the page at url does not hold.
func missingLines(t *testing.T, url string, want []string) []string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var missing []string
	for _, w := range want {
		if !strings.Contains(string(page), w) {
			missing = append(missing, w)
		}
	}
	return missing
}

// graceKeepsARuntime ends user 0's session: within the grace its runtime
// is theirs (the fourth user is still refused, user 0 gets it back through
// the other replica). Then user 1 leaves, and after the grace their
// runtime is anyone's.
func (sc *poolScene) graceKeepsARuntime(users []*poolClient, sessions []*wstest.Client, r1, r2 poolReplica) {
	t := sc.t
	before := sc.rs.holding()
	sessions[0].Conn.Close()
	ended := r1.p.waitLine(10*time.Second, "user 0's session line", func(m map[string]any) bool {
		return m["msg"] == "session ended" && m["reason"] == "client closed" && m["path"] == "/sign_in"
	})
	runtime0, _ := ended["backend"].(string)
	if before[runtime0] != 1 {
		t.Fatalf("the session line names %q, not one of the runtimes %v", runtime0, before)
	}
	if _, status := users[3].upgrade(t, r2.addr, r2.trust); status != http.StatusServiceUnavailable {
		t.Errorf("another user took a runtime in its user's grace: %d", status)
	}
	back, status := users[0].upgrade(t, r2.addr, r2.trust)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("user 0 reconnecting within the grace: %d", status)
	}
	back.Echo("again", 5*time.Second)
	waitFor(t, 5*time.Second, "user 0 back on "+runtime0, func() bool { return sc.rs.holding()[runtime0] == 1 })

	sessions[1].Conn.Close()
	waitFor(t, 15*time.Second, "user 1's runtime free for someone else after the grace", func() bool {
		c, status := (&poolClient{src: freshSource()}).upgrade(t, r1.addr, r1.trust)
		if status == http.StatusSwitchingProtocols {
			c.Echo("late", 5*time.Second)
			return true
		}
		return false
	})
	if h := sc.rs.holding(); len(h) != 3 {
		t.Fatalf("sessions on %v, want one on each runtime", h)
	}
}

// runtimeDown stops one runtime: once it is marked down it is not handed
// out, and every new session lands on the other two. It returns the
// stopped runtime's address.
func (sc *poolScene) runtimeDown(r poolReplica) string {
	t := sc.t
	var gone string
	for a := range sc.rs.backends {
		gone = a
		break
	}
	sc.rs.backends[gone].Close()
	waitFor(t, 20*time.Second, gone+" marked down", func() bool {
		for _, rt := range poolStatus(t, r.addr, r.trust).Runtimes {
			if rt.Address == gone {
				return !rt.Up && rt.State == "down"
			}
		}
		return false
	})
	waitFor(t, 30*time.Second, "the other two runtimes free again", func() bool {
		n := 0
		for _, rt := range poolStatus(t, r.addr, r.trust).Runtimes {
			if rt.State == "free" {
				n++
			}
		}
		return n == 2
	})
	for i := range 3 {
		u := &poolClient{src: freshSource()}
		_, status := u.upgrade(t, r.addr, r.trust)
		if want := []int{101, 101, 503}[i]; status != want {
			t.Errorf("session %d with one runtime down: %d, want %d", i, status, want)
		}
	}
	return gone
}

// sliceChanges changes the EndpointSlice: a fourth runtime appears, the
// stopped one (gone) goes, and the pool follows.
func (sc *poolScene) sliceChanges(r poolReplica, gone string) {
	t, ctx := sc.t, context.Background()
	fourth := sc.rs.add(t, "127.0.0.5")
	var ips []string
	for a := range sc.rs.backends {
		if a != gone {
			host, _, _ := net.SplitHostPort(a)
			ips = append(ips, host)
		}
	}
	s := runtimeSlice(sc.ns, sc.rs.port, ips...)
	cur, err := sc.slices.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.ResourceVersion = cur.ResourceVersion
	if _, err := sc.slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pool following its EndpointSlice", func() bool {
		have := map[string]bool{}
		for _, rt := range poolStatus(t, r.addr, r.trust).Runtimes {
			have[rt.Address] = true
		}
		return len(have) == 3 && have[fourth] && !have[gone]
	})
}

// Twenty sessions at once over two replicas never share a runtime: three
// get one each, the rest 503.
func TestPoolTwentyAtOnce(t *testing.T) {
	cp := startControlPlane(t)
	admin := cp.clientset(t, cp.adminToken)
	const ns = "burst"
	kubeconfig := poolNamespace(t, cp, admin, ns)
	rs := startRuntimes(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	if _, err := admin.DiscoveryV1().EndpointSlices(ns).Create(context.Background(),
		runtimeSlice(ns, rs.port, "127.0.0.2", "127.0.0.3", "127.0.0.4"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	var trusts []*tls.Config
	for i := range 2 {
		dir := t.TempDir()
		p := startProc(t, "KUBECONFIG="+kubeconfig, fmt.Sprintf("POD_NAME=proxy-%d", i), "CERT_DIR="+dir,
			"BACKEND_POOL=kubernetes:runtimes:signaling", "POOL_CLAIMS=kubernetes", "CLIENT_MAX_CONNECTIONS", "CLIENT_HANDSHAKE_RATE", "CLIENT_AUTH_FAILURES")
		addrs = append(addrs, p.addr())
		trusts = append(trusts, trustPEM(t, filepath.Join(dir, "ca.crt")))
		waitPool(t, addrs[i], trusts[i], 3, "free")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := make(chan struct{})
	for i := range 20 {
		wg.Go(func() {
			u := &poolClient{src: fmt.Sprintf("127.1.3.%d", i+1)}
			<-start
			c, status := u.upgrade(t, addrs[i%2], trusts[i%2])
			if status == http.StatusSwitchingProtocols {
				c.Echo("x", 5*time.Second)
			}
			mu.Lock()
			codes[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	if codes[101] != 3 || codes[503] != 17 {
		t.Errorf("20 upgrades at once: %v, want 3 upgraded and 17 refused", codes)
	}
	for a, n := range rs.holding() {
		if n != 1 {
			t.Errorf("runtime %s holds %d sessions", a, n)
		}
	}
}

// Runtimes found through DNS, from a real BIND: every A record of a name,
// and SRV records.
func TestPoolDNSDiscovery(t *testing.T) {
	rs := startRuntimes(t, "127.0.0.2", "127.0.0.3")
	ns := startBind(t, "pool.test",
		"runtimes IN A 127.0.0.2", "runtimes IN A 127.0.0.3",
		fmt.Sprintf("_cloudxr._tcp IN SRV 0 0 %d gpu1", rs.port), fmt.Sprintf("_cloudxr._tcp IN SRV 0 0 %d gpu2", rs.port),
		"gpu1 IN A 127.0.0.2", "gpu2 IN A 127.0.0.3")
	for _, entry := range []string{fmt.Sprintf("dns:runtimes.pool.test:%d", rs.port), "srv:_cloudxr._tcp.pool.test"} {
		t.Run(strings.SplitN(entry, ":", 2)[0], func(t *testing.T) {
			dir := t.TempDir()
			p := startProc(t, "CERT_DIR="+dir, "BACKEND_POOL="+entry, "POOL_DNS_SERVER="+ns.addr, "POOL_DNS_INTERVAL=1s")
			addr, trust := p.addr(), trustPEM(t, filepath.Join(dir, "ca.crt"))
			waitPool(t, addr, trust, 2, "free")
			for i := range 3 {
				u := &poolClient{src: freshSource()}
				_, status := u.upgrade(t, addr, trust)
				if want := []int{101, 101, 503}[i]; status != want {
					t.Errorf("session %d: %d, want %d", i, status, want)
				}
			}
			if v := poolStatus(t, addr, trust); v.Claims != "memory" {
				t.Errorf("claims outside Kubernetes kept in %q", v.Claims)
			}
		})
	}
}
