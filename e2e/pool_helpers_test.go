//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// The pool tests' parts: stand-in runtimes, a client that upgrades from its
// own source address, the proxy's pool status, and a namespace with the
// pool's Role.

// runtimeSet is test runtimes on one port of several loopback addresses,
// as a headless Service's pods are on one port of several IPs.
type runtimeSet struct {
	port     int
	backends map[string]*wstest.Backend // by host:port
}

func startRuntimes(t *testing.T, ips ...string) *runtimeSet {
	t.Helper()
	rs := &runtimeSet{backends: map[string]*wstest.Backend{}}
	for _, ip := range ips {
		rs.add(t, ip)
	}
	return rs
}

func (rs *runtimeSet) add(t *testing.T, ip string) string {
	t.Helper()
	b, err := wstest.StartBackend(net.JoinHostPort(ip, fmt.Sprint(rs.port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	rs.port = b.Port()
	rs.backends[b.Addr()] = b
	return b.Addr()
}

// holding is the runtimes with an open session, each with how many (the
// health checks' connections are not sessions).
func (rs *runtimeSet) holding() map[string]int {
	out := map[string]int{}
	for a, b := range rs.backends {
		if n := b.Sessions(); n > 0 {
			out[a] = n
		}
	}
	return out
}

// poolClient is a user: its own source address (as headsets have) and
// the pool cookie the proxy gave it.
type poolClient struct {
	src    string
	cookie string
}

// upgrade opens a session through the proxy at addr.
func (u *poolClient) upgrade(t *testing.T, addr string, trust *tls.Config) (*wstest.Client, int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(u.src)}, Timeout: 10 * time.Second}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, trust)
	var header []string
	if u.cookie != "" {
		header = append(header, "Cookie: "+u.cookie)
	}
	cl, err := wstest.Upgrade(c, "localhost", "/sign_in", header...)
	if cl == nil {
		t.Fatalf("upgrade from %s: %v", u.src, err)
	}
	if set := cl.Response.Header.Get("Set-Cookie"); set != "" {
		u.cookie = strings.SplitN(set, ";", 2)[0]
	}
	if cl.Response.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
	} else {
		t.Cleanup(func() { c.Close() })
	}
	return cl, cl.Response.StatusCode
}

// poolView is /status.json's pool.
type poolView struct {
	Claims   string
	Counts   map[string]int
	Runtimes []struct {
		Address, State string
		Up             bool
	}
}

// freshSource is a source address no test client has used yet: polling
// from one address would meet the per-client handshake rate.
func freshSource() string {
	return wstest.Source(2, int(sources.Add(1))).String()
}

var sources atomic.Int64

func poolStatus(t *testing.T, addr string, trust *tls.Config) poolView {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(freshSource())}}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: trust, DialContext: d.DialContext}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + addr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Pool poolView }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Pool
}

// waitPool waits until the proxy's pool has want runtimes, each up and in
// state (a state of "" is any).
func waitPool(t *testing.T, addr string, trust *tls.Config, want int, state string) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d runtimes %s in the pool of %s", want, state, addr), func() bool {
		p := poolStatus(t, addr, trust)
		if len(p.Runtimes) != want {
			return false
		}
		for _, r := range p.Runtimes {
			if !r.Up || (state != "" && r.State != state) {
				return false
			}
		}
		return true
	})
}

// poolNamespace makes the namespace with the pool overlay's RBAC objects,
// and returns a kubeconfig file for its service account.
func poolNamespace(t *testing.T, cp *controlPlane, cs *kubernetes.Clientset, ns string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("deploy/kubernetes/pool/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sa corev1.ServiceAccount
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	docs := strings.Split(string(b), "\n---\n")
	for i, into := range []any{&sa, &role, &binding} {
		if err := yaml.UnmarshalStrict([]byte(docs[i]), into); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The token can do what the Role grants and nothing more.
	limited := cp.clientset(t, tr.Status.Token)
	if _, err := limited.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); err == nil {
		t.Error("the pool's service account may list Secrets")
	}
	if err := limited.CoordinationV1().Leases(ns).Delete(ctx, "x", metav1.DeleteOptions{}); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("the pool's service account may delete Leases: %v", err)
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: pool
  user:
    token: %s
contexts:
- name: test
  context:
    cluster: test
    user: pool
    namespace: %s
current-context: test
`, cp.url, tr.Status.Token, ns)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runtimeSlice is the EndpointSlice of the Service "runtimes": the
// addresses, ready, on the port named "signaling". The API server refuses
// loopback addresses in an IPv4 slice, and the test's runtimes are on
// loopback: the slice lists them with addressType FQDN, which it takes (a
// slice a controller writes for runtimes outside the cluster looks so).
func runtimeSlice(ns string, port int, ips ...string) *discoveryv1.EndpointSlice {
	name, p, ready := "signaling", int32(port), true
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "runtimes-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "runtimes"}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &p}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}
