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

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func TestPoolTwoProxyReplicas(t *testing.T) {
	cp := startControlPlane(t)
	admin := cp.clientset(t, cp.adminToken)
	const ns = "xr"
	ctx := context.Background()
	kubeconfig := poolNamespace(t, cp, admin, ns)
	rs := startRuntimes(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	slices := admin.DiscoveryV1().EndpointSlices(ns)
	if _, err := slices.Create(ctx, runtimeSlice(ns, rs.port, "127.0.0.2", "127.0.0.3", "127.0.0.4"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Two replicas, with the per-client limits at their defaults: each
	// user below comes from its own address.
	replica := func(name string) (*proc, string, *tls.Config) {
		dir := t.TempDir()
		p := startProc(t, "KUBECONFIG="+kubeconfig, "POD_NAME="+name, "CERT_DIR="+dir,
			"BACKEND_POOL=kubernetes:runtimes:signaling", "POOL_CLAIMS=kubernetes", "POOL_RECONNECT_GRACE=4s", "POOL_LEASE_DURATION=3s",
			"CLIENT_MAX_CONNECTIONS", "CLIENT_HANDSHAKE_RATE", "CLIENT_AUTH_FAILURES")
		addr := p.addr()
		return p, addr, trustPEM(t, filepath.Join(dir, "ca.crt"))
	}
	p1, addr1, trust1 := replica("proxy-1")
	p2, addr2, trust2 := replica("proxy-2")
	waitPool(t, addr1, trust1, 3, "free")
	waitPool(t, addr2, trust2, 3, "free")
	if v := poolStatus(t, addr1, trust1); v.Claims != "kubernetes" {
		t.Errorf("claims kept in %q", v.Claims)
	}

	// Three users on three runtimes, over both replicas; a fourth: 503.
	users := []*poolClient{{src: "127.1.0.1"}, {src: "127.1.0.2"}, {src: "127.1.0.3"}, {src: "127.1.0.4"}}
	at := []struct {
		addr  string
		trust *tls.Config
	}{{addr1, trust1}, {addr2, trust2}, {addr1, trust1}, {addr2, trust2}}
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
	if h := rs.holding(); len(h) != 3 {
		t.Fatalf("three sessions on %v, want one on each runtime", h)
	}
	full, status := users[3].upgrade(t, addr2, trust2)
	body, _ := io.ReadAll(full.Response.Body)
	if status != http.StatusServiceUnavailable || full.Response.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "busy or down") {
		t.Fatalf("a fourth user: %d %q %q", status, full.Response.Header.Get("Retry-After"), body)
	}
	p2.waitLine(5*time.Second, "the pool-full line", func(m map[string]any) bool { return m["reason"] == "pool full" })
	resp, err := http.Get("http://" + p2.waitLog("admin listener")["address"].(string) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`cloudxr_wss_proxy_pool_runtimes{state="busy"} 3`, `cloudxr_wss_proxy_pool_runtimes{state="free"} 0`,
		"cloudxr_wss_proxy_pool_claims_refused_total 1", `cloudxr_wss_proxy_sessions_total{outcome="pool full"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("replica 2's metrics lack %s", want)
		}
	}

	// User 0's session ends; within the grace its runtime is theirs: the
	// fourth user is still refused, user 0 gets it back through replica 2.
	before := rs.holding()
	sessions[0].Conn.Close()
	ended := p1.waitLine(10*time.Second, "user 0's session line", func(m map[string]any) bool {
		return m["msg"] == "session ended" && m["reason"] == "client closed" && m["path"] == "/sign_in"
	})
	runtime0, _ := ended["backend"].(string)
	if before[runtime0] != 1 {
		t.Fatalf("the session line names %q, not one of the runtimes %v", runtime0, before)
	}
	if _, status := users[3].upgrade(t, addr2, trust2); status != http.StatusServiceUnavailable {
		t.Errorf("another user took a runtime in its user's grace: %d", status)
	}
	back, status := users[0].upgrade(t, addr2, trust2)
	if status != http.StatusSwitchingProtocols {
		t.Fatalf("user 0 reconnecting within the grace: %d", status)
	}
	back.Echo("again", 5*time.Second)
	waitFor(t, 5*time.Second, "user 0 back on "+runtime0, func() bool { return rs.holding()[runtime0] == 1 })

	// User 1 leaves; after the grace, the runtime is anyone's.
	sessions[1].Conn.Close()
	waitFor(t, 15*time.Second, "user 1's runtime free for someone else after the grace", func() bool {
		c, status := (&poolClient{src: freshSource()}).upgrade(t, addr1, trust1)
		if status == http.StatusSwitchingProtocols {
			c.Echo("late", 5*time.Second)
			return true
		}
		return false
	})
	if h := rs.holding(); len(h) != 3 {
		t.Fatalf("sessions on %v, want one on each runtime", h)
	}

	// Replica 1 dies holding user 2's and user 3's runtimes (killed, no
	// release): its Leases expire, and replica 2 hands them out again.
	p1.cmd.Process.Signal(syscall.SIGKILL)
	<-p1.done
	got := 0
	waitFor(t, 20*time.Second, "the dead replica's runtimes handed out again", func() bool {
		if _, status := (&poolClient{src: freshSource()}).upgrade(t, addr2, trust2); status == http.StatusSwitchingProtocols {
			got++
		}
		return got == 2
	})

	// A runtime marked down is not handed out: end everything, stop one
	// runtime, and every new session lands on the other two.
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	p3, addr3, trust3 := replica("proxy-3")
	_ = p3
	waitPool(t, addr3, trust3, 3, "")
	var gone string
	for a := range rs.backends {
		gone = a
		break
	}
	rs.backends[gone].Close()
	waitFor(t, 20*time.Second, gone+" marked down", func() bool {
		for _, r := range poolStatus(t, addr3, trust3).Runtimes {
			if r.Address == gone {
				return !r.Up && r.State == "down"
			}
		}
		return false
	})
	waitFor(t, 30*time.Second, "the other two runtimes free again", func() bool {
		n := 0
		for _, r := range poolStatus(t, addr3, trust3).Runtimes {
			if r.State == "free" {
				n++
			}
		}
		return n == 2
	})
	for i := range 3 {
		u := &poolClient{src: freshSource()}
		_, status := u.upgrade(t, addr3, trust3)
		if want := []int{101, 101, 503}[i]; status != want {
			t.Errorf("session %d with one runtime down: %d, want %d", i, status, want)
		}
	}

	// The EndpointSlice changes: a fourth runtime appears, the stopped one
	// goes.
	fourth := rs.add(t, "127.0.0.5")
	var ips []string
	for a := range rs.backends {
		if a != gone {
			host, _, _ := net.SplitHostPort(a)
			ips = append(ips, host)
		}
	}
	s := runtimeSlice(ns, rs.port, ips...)
	cur, err := slices.Get(ctx, s.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.ResourceVersion = cur.ResourceVersion
	if _, err := slices.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the pool following its EndpointSlice", func() bool {
		have := map[string]bool{}
		for _, r := range poolStatus(t, addr3, trust3).Runtimes {
			have[r.Address] = true
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
