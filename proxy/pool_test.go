package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
)

// poolEnv is a proxy whose sessions take runtimes from a pool of three
// echo backends, with in-process claims.
type poolEnv struct {
	*env
	pool     *pool.Pool
	backends map[string]*wstest.Backend
	mu       sync.Mutex
	down     map[string]bool
}

func startPool(t *testing.T, grace time.Duration, tweak ...func(*Options)) *poolEnv {
	t.Helper()
	pe := &poolEnv{backends: map[string]*wstest.Backend{}, down: map[string]bool{}}
	var addrs []string
	for range 3 {
		b := backendOn(t)
		pe.backends[b.Addr()] = b
		addrs = append(addrs, b.Addr())
	}
	pe.pool = pool.New(pool.Options{Store: pool.NewMemory(), Grace: grace, Lease: time.Minute,
		Up: func(r string) bool { pe.mu.Lock(); defer pe.mu.Unlock(); return !pe.down[r] }}, addrs)
	pe.env = startWith(t, nil, "unused:1", append([]func(*Options){func(o *Options) { o.Pool = pe.pool }}, tweak...)...)
	return pe
}

// Three sessions get three runtimes, a fourth gets 503 with Retry-After;
// the pool cookie is set on each upgrade's response and never reaches the
// runtime; a session that ends leaves its runtime to its user for the
// grace: someone else is refused, its user reconnecting gets it back.
func TestPoolClaims(t *testing.T) {
	pe := startPool(t, time.Minute)
	var cookies []string
	seen := map[string]bool{}
	var clients []*wstest.Client
	for i := range 3 {
		c := pe.ws("/sign_in")
		clients = append(clients, c)
		set := c.Response.Header.Get("Set-Cookie")
		if !strings.HasPrefix(set, DefaultPoolCookie+"=") || !strings.Contains(set, "Secure") || !strings.Contains(set, "HttpOnly") {
			t.Fatalf("session %d: Set-Cookie %q", i, set)
		}
		cookies = append(cookies, strings.SplitN(set, ";", 2)[0])
		if err := c.Echo("hello", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for addr, b := range pe.backends {
		if b.OpenConns() != 1 {
			t.Errorf("runtime %s has %d sessions, want 1", addr, b.OpenConns())
		}
		seen[addr] = true
	}
	full, err := wstest.Upgrade(pe.dial(), "localhost", "/sign_in")
	if err == nil || full.Response.StatusCode != http.StatusServiceUnavailable || full.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("a fourth session: %v %+v", err, full)
	}
	body, _ := io.ReadAll(full.Response.Body)
	if !strings.Contains(string(body), "pool is in use: try again") {
		t.Errorf("the 503's body: %q", body)
	}
	pe.sessionLog("reason", "pool full")

	// The first user's session ends; its runtime stays theirs.
	var first string
	for addr, b := range pe.backends {
		for _, r := range b.Requests() {
			if strings.Contains(r.Header.Get("Cookie"), DefaultPoolCookie) {
				t.Errorf("the pool cookie reached runtime %s: %q", addr, r.Header.Get("Cookie"))
			}
		}
	}
	clients[0].Conn.Close()
	l := pe.sessionLog("reason", "client closed")
	first, _ = l["backend"].(string)
	if pe.backends[first] == nil {
		t.Fatalf("the session log names no pooled runtime: %v", l)
	}
	other, err := wstest.Upgrade(pe.dial(), "localhost", "/sign_in", "Cookie: "+DefaultPoolCookie+"=AAAAAAAAAAAAAAAAAAAAAA")
	if err == nil || other.Response.StatusCode != http.StatusServiceUnavailable || other.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("another user during the grace: %v", err)
	}
	if body, _ := io.ReadAll(other.Response.Body); !strings.Contains(string(body), "in use or kept for a user who may reconnect within 60 s") {
		t.Errorf("the 503's body during the grace: %q", body)
	}
	back := pe.ws("/sign_in", "Cookie: theme=dark; "+cookies[0])
	if err := back.Echo("again", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if back.Response.Header.Get("Set-Cookie") != "" {
		t.Error("a known user got a new cookie")
	}
	waitFor(t, 5*time.Second, "the reconnect on its old runtime", func() bool { return pe.backends[first].OpenConns() == 1 })
	last := pe.backends[first].Requests()
	if got := last[len(last)-1].Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("the runtime got Cookie %q, want only the page's own", got)
	}
}

// With no grace, an ended session's runtime is free for anyone; a runtime
// marked down is never handed out.
func TestPoolDownAndFree(t *testing.T) {
	pe := startPool(t, 0)
	pe.mu.Lock()
	for addr := range pe.backends {
		pe.down[addr] = true
	}
	pe.mu.Unlock()
	c, err := wstest.Upgrade(pe.dial(), "localhost", "/sign_in")
	if err == nil || c.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("every runtime down: %v", err)
	}
	if body, _ := io.ReadAll(c.Response.Body); !strings.Contains(string(body), "pool is down: try again") {
		t.Errorf("the 503's body, every runtime down: %q", body)
	}
	var up string
	for addr := range pe.backends {
		up = addr
		break
	}
	pe.mu.Lock()
	delete(pe.down, up)
	pe.mu.Unlock()
	for i := range 3 {
		c := pe.ws("/sign_in")
		if err := c.Echo("x", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if n := pe.backends[up].OpenConns(); n != 1 {
			t.Fatalf("session %d: the one runtime up has %d sessions", i, n)
		}
		c.Conn.Close()
		waitFor(t, 5*time.Second, "the runtime freed", func() bool { return pe.backends[up].OpenConns() == 0 })
		waitFor(t, 5*time.Second, "the claim released", func() bool {
			st, _ := pe.pool.Status(t.Context())
			for _, r := range st {
				if r.Runtime == up {
					return r.State == pool.Free
				}
			}
			return false
		})
	}
}

// A native client's connections: its first upgrade claims a runtime and
// goes to the runtime's native port; further ones from the same user
// (here: the same address, as a native client keeps no cookies) go to the
// same runtime, through this replica or another, without a second claim.
func TestPoolNativeClient(t *testing.T) {
	addrs, nativePort, native := nativeRuntimes(t, "127.0.0.2", "127.0.0.3")
	// Two replicas sharing one store: the further connection reaches the
	// other one, which finds the claim in the store.
	store := pool.NewMemory()
	p := pool.New(pool.Options{Store: store, Grace: time.Minute, Lease: time.Minute}, addrs)
	p2 := pool.New(pool.Options{Store: store, Grace: time.Minute, Lease: time.Minute}, addrs)
	e := startWith(t, nil, "unused:1", func(o *Options) { o.Pool, o.NativeBackendPort = p, nativePort })
	e2 := startWith(t, nil, "unused:1", func(o *Options) { o.Pool, o.NativeBackendPort = p2, nativePort })
	first := e.ws("/sign_in", "x-cloudxr-device-type: native")
	first.Echo("one", 5*time.Second)
	second := e2.ws("/sign_in", "x-cloudxr-device-type: native")
	second.Echo("two", 5*time.Second)
	third := e.ws("/sign_in", "x-cloudxr-device-type: native")
	third.Echo("three", 5*time.Second)
	var on []string
	for ip, n := range native {
		if c := n.OpenConns(); c > 0 {
			on = append(on, fmt.Sprintf("%s:%d", ip, c))
		}
	}
	if len(on) != 1 || !strings.HasSuffix(on[0], ":3") {
		t.Errorf("native connections on %v, want all three on one runtime's native port", on)
	}
	st, _ := p.Status(t.Context())
	busy := 0
	for _, r := range st {
		if r.State == pool.Busy {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("%d runtimes busy, want the one claim: %+v", busy, st)
	}
}

// With authentication on, the user is the token's subject: no cookie is
// set, and the same subject reconnecting gets its runtime back whatever
// else the client sends; the subject is what PoolUsers names.
func TestPoolOwnerIsTheTokenSubject(t *testing.T) {
	prov := oidctest.Started(t)
	v := auth.NewOIDC(auth.OIDCOptions{Issuer: prov.Issuer, Audience: oidctest.ClientID})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { v.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); http.DefaultClient.CloseIdleConnections() })
	waitFor(t, 10*time.Second, "the provider's keys", func() bool { ok, _ := v.Ready(); return ok })
	pe := startPool(t, time.Minute, func(o *Options) { o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token" })
	token := func(sub string) string {
		c := prov.Claims()
		c["sub"] = sub
		tok, err := prov.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice := pe.ws("/sign_in?token=" + token("alice"))
	if alice.Response.Header.Get("Set-Cookie") != "" {
		t.Error("a pool cookie was set although the token says who the user is")
	}
	alice.Echo("hi", 5*time.Second)
	var mine string
	for r, u := range pe.srv.PoolUsers() {
		if u != "alice" {
			t.Errorf("PoolUsers: %s held by %q", r, u)
		}
		mine = r
	}
	alice.Conn.Close()
	waitFor(t, 5*time.Second, "alice's session over", func() bool { return pe.backends[mine].OpenConns() == 0 })
	bob := pe.ws("/sign_in?token=" + token("bob"))
	bob.Echo("hi", 5*time.Second)
	again := pe.ws("/sign_in", "Authorization: Bearer "+token("alice"))
	again.Echo("back", 5*time.Second)
	waitFor(t, 5*time.Second, "alice back on her runtime", func() bool { return pe.backends[mine].OpenConns() == 1 })
	if u := pe.srv.PoolUsers()[mine]; u != "alice" {
		t.Errorf("alice's runtime is %q's", u)
	}
}

// takenStore is a store in which another replica has taken every runtime
// since: renewals find the hold gone.
type takenStore struct{ *pool.Memory }

func (takenStore) Renew(context.Context, string, string, string, time.Time, time.Time) error {
	return pool.ErrNotHeld
}

// A claim that cannot be kept (another replica holds the runtime now)
// closes the session that holds it.
func TestPoolLostClaimClosesItsSession(t *testing.T) {
	b := backendOn(t)
	p := pool.New(pool.Options{Store: takenStore{pool.NewMemory()}, Lease: time.Minute}, []string{b.Addr()})
	e := startWith(t, nil, "unused:1", func(o *Options) { o.Pool = p })
	c := e.ws("/sign_in")
	if err := c.Echo("hello", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Renew(t.Context(), e.srv.ClaimLost)
	e.sessionLog("reason", "pool claim lost")
	waitFor(t, 5*time.Second, "the runtime's side closed", func() bool { return b.OpenConns() == 0 })
}
