package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/pool"
)

// The pool's promise, through the proxy: a runtime is never shared by two
// users, and nobody can hold one without having had a session on it.

// nativeRuntimes starts runtimes on the given loopback addresses, each
// with its native signaling port (the same number on each).
func nativeRuntimes(t *testing.T, ips ...string) (addrs []string, nativePort int, native map[string]*wstest.Backend) {
	t.Helper()
	native = map[string]*wstest.Backend{}
	for _, ip := range ips {
		b, err := wstest.StartBackend(ip + ":0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		addrs = append(addrs, b.Addr())
		n, err := wstest.StartBackend(fmt.Sprintf("%s:%d", ip, nativePort))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		nativePort = n.Port()
		native[ip] = n
	}
	return addrs, nativePort, native
}

// upgradeStatus is the status of an upgrade through the proxy, its
// connection closed after.
func (e *env) upgradeStatus(header ...string) int {
	e.t.Helper()
	c := e.dial()
	defer c.Close()
	ws, err := wstest.Upgrade(c, "localhost", "/sign_in", header...)
	if ws == nil || ws.Response == nil {
		e.t.Fatalf("no answer to the upgrade: %v", err)
	}
	return ws.Response.StatusCode
}

// A native client's further connection is covered by its session's claim:
// when the session ends, the runtime is not handed to another user while
// the further connection still streams to it (here with no grace, which
// would free it at once); when that one ends too, it is free.
func TestPoolNativeConnectionKeepsItsRuntime(t *testing.T) {
	addrs, nativePort, native := nativeRuntimes(t, "127.0.0.2")
	p := pool.New(pool.Options{Store: pool.NewMemory(), Lease: time.Minute}, addrs)
	e := startWith(t, nil, "unused:1", func(o *Options) { o.Pool, o.NativeBackendPort = p, nativePort })
	first := e.ws("/sign_in", "x-cloudxr-device-type: native")
	further := e.ws("/sign_in", "x-cloudxr-device-type: native")
	for _, c := range []*wstest.Client{first, further} {
		if err := c.Echo("hi", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	first.Conn.Close()
	waitFor(t, 5*time.Second, "the session's end", func() bool { return native["127.0.0.2"].OpenConns() == 1 })
	e.sessionLog("reason", "client closed")
	if st := e.upgradeStatus(); st != http.StatusServiceUnavailable {
		t.Fatalf("another user's upgrade while the native connection streams: %d, want 503", st)
	}
	if err := further.Echo("still mine", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	further.Conn.Close()
	waitFor(t, 5*time.Second, "the runtime freed", func() bool { return e.upgradeStatus() == http.StatusSwitchingProtocols })
}

// A lost claim closes every connection it covers: the session and the
// native connection that joined it.
func TestPoolLostClaimClosesJoinedConnections(t *testing.T) {
	addrs, nativePort, native := nativeRuntimes(t, "127.0.0.2")
	p := pool.New(pool.Options{Store: takenStore{pool.NewMemory()}, Lease: time.Minute}, addrs)
	e := startWith(t, nil, "unused:1", func(o *Options) { o.Pool, o.NativeBackendPort = p, nativePort })
	for range 2 {
		if err := e.ws("/sign_in", "x-cloudxr-device-type: native").Echo("hi", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p.Renew(t.Context(), e.srv.ClaimLost)
	waitFor(t, 5*time.Second, "both connections closed", func() bool { return native["127.0.0.2"].OpenConns() == 0 })
	waitFor(t, 5*time.Second, "two sessions ended with 'pool claim lost'", func() bool {
		lost := 0
		for _, l := range e.logs.FilterMessage("session ended").All() {
			if l.ContextMap()["reason"] == "pool claim lost" {
				lost++
			}
		}
		return lost == 2
	})
}

// A runtime goes into its user's grace only after a session that reached
// its 101: an upgrade the runtime refused, or a client gone before the
// 101, leaves it free at once (it used to lock the runtime for the grace,
// for a cookie nobody had).
func TestPoolGraceOnlyAfterAnUpgrade(t *testing.T) {
	refuse := func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}
	}
	silent := func(c net.Conn) {
		http.ReadRequest(bufio.NewReader(c))
		io.Copy(io.Discard, c) // until the proxy gives up waiting: no answer
	}
	for name, serve := range map[string]func(net.Conn){"refused": refuse, "client gone": silent} {
		t.Run(name, func(t *testing.T) {
			runtime := testutil.ServeEach(t, serve)
			p := pool.New(pool.Options{Store: pool.NewMemory(), Grace: time.Minute, Lease: time.Minute}, []string{runtime})
			e := startWith(t, nil, "unused:1", func(o *Options) { o.Pool, o.ResponseTimeout = p, 300*time.Millisecond })
			c := e.dial()
			io.WriteString(c, wstest.UpgradeRequest("localhost", "/sign_in"))
			if name == "refused" {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("the runtime's refusal: %v %v", resp, err)
				}
			} else {
				waitFor(t, 5*time.Second, "the claim", func() bool { return len(p.Users()) == 1 })
			}
			c.Close()
			waitFor(t, 5*time.Second, "the session's end", func() bool { return len(e.logs.FilterMessage("session ended").All()) == 1 })
			waitFor(t, 5*time.Second, "the runtime free", func() bool {
				st, err := p.Status(t.Context())
				return err == nil && st[0].State == pool.Free
			})
		})
	}
}

// One client address leaves at most POOL_GRACES_PER_CLIENT runtimes in
// grace: two sessions from one address, each upgraded and ended, keep one
// runtime for their users and free the other.
func TestPoolGracesPerClientAddress(t *testing.T) {
	pe := startPool(t, time.Minute)
	pe.pool = pool.New(pool.Options{Store: pool.NewMemory(), Grace: time.Minute, GracesPerClient: 1, Lease: time.Minute}, pe.pool.Runtimes())
	e := startWith(t, nil, "unused:1", func(o *Options) { o.Pool = pe.pool })
	for range 3 {
		c := e.ws("/sign_in")
		if err := c.Echo("hi", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c.Conn.Close()
	}
	waitFor(t, 5*time.Second, "three sessions over", func() bool { return len(e.logs.FilterMessage("session ended").All()) == 3 })
	waitFor(t, 5*time.Second, "one runtime in grace, two free", func() bool {
		st, _ := pe.pool.Status(t.Context())
		n := map[pool.State]int{}
		for _, r := range st {
			n[r.State]++
		}
		return n[pool.Grace] == 1 && n[pool.Free] == 2
	})
}

// One user holds one runtime at once (POOL_MAX_PER_USER's default). The
// same cookie's new session through the same proxy replaces the old one —
// the newest wins: most often it is a reconnect from a connection the proxy
// has not yet seen die — and gets the user's runtime; through another
// replica, which cannot close the old one, it gets 429.
func TestPoolOneRuntimePerUser(t *testing.T) {
	var addrs []string
	backends := map[string]*wstest.Backend{}
	for range 3 {
		b := backendOn(t)
		addrs = append(addrs, b.Addr())
		backends[b.Addr()] = b
	}
	store := pool.NewMemory()
	replica := func() *env {
		p := pool.New(pool.Options{Store: store, Grace: time.Minute, MaxPerUser: 1, Lease: time.Minute}, addrs)
		return startWith(t, nil, "unused:1", func(o *Options) { o.Pool = p })
	}
	e1, e2 := replica(), replica()
	first := e1.ws("/sign_in")
	cookie := "Cookie: " + strings.SplitN(first.Response.Header.Get("Set-Cookie"), ";", 2)[0]
	elsewhere, err := wstest.Upgrade(e2.dial(), "localhost", "/sign_in", cookie)
	if err == nil || elsewhere.Response.StatusCode != http.StatusTooManyRequests || elsewhere.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("the same user through another replica: %v %+v; want 429 with Retry-After", err, elsewhere)
	}
	e2.sessionLog("reason", "pool user limit")
	again := e1.ws("/sign_in", cookie)
	if err := again.Echo("newest wins", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	old := e1.sessionLog("reason", "replaced by the user's new session")
	first.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := first.Receive(); err == nil {
		t.Error("the replaced session still reads")
	}
	if b := backends[old["backend"].(string)]; b == nil || b.OpenConns() != 1 {
		t.Errorf("the new session is not on the user's runtime %v", old["backend"])
	}
}
