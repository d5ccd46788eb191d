package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// countingVerifier counts the verification work done.
type countingVerifier struct {
	auth.Verifier
	calls atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, tok string) error {
	c.calls.Add(1)
	return c.Verifier.Verify(ctx, tok)
}

// viaLB opens a TLS connection whose PROXY header names client, as a load
// balancer in front of the proxy would send it.
func viaLB(t *testing.T, e *env, client string) *tls.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	fmt.Fprintf(raw, "PROXY TCP4 %s 10.0.0.1 40000 48322\r\n", client)
	return tls.Client(raw, e.tls)
}

// A client hammering bad tokens gets 429 with Retry-After, and costs no
// more verification, while a client from another address is served.
func TestAuthFailuresLimitedPerClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("good\n"), 0o600)
	s, err := auth.NewStatic(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := &countingVerifier{Verifier: s}
	e := start(t, func(o *Options) {
		o.ProxyProtocol = true
		o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token"
		o.Limits = limit.New(limit.Options{AuthFailures: 3, TableSize: 1024})
	})
	status := func(client, token string) *http.Response {
		cl, _ := wstest.Upgrade(viaLB(t, e, client), "localhost", "/sign_in?token="+token)
		if cl == nil {
			t.Fatalf("%s: no answer", client)
		}
		io.Copy(io.Discard, cl.Response.Body)
		return cl.Response
	}
	for i := range 3 {
		if r := status("198.51.100.66", "guess"+strconv.Itoa(i)); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, r.StatusCode)
		}
	}
	r := status("198.51.100.66", "good") // even a right token: the address is blocked
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d, want 429", r.StatusCode)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 20 {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	wantCORS(t, r.Header)
	if n := v.calls.Load(); n != 3 {
		t.Errorf("%d verifications, want 3: the blocked attempt must cost none", n)
	}
	if r := status("198.51.100.77", "good"); r.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("a well-behaved client from another address: %d", r.StatusCode)
	}
}

// 100,000 distinct source addresses (PROXY headers make them cheap) never
// grow the per-client table past its size, and the proxy still serves.
func TestClientTableBoundedUnderManyAddresses(t *testing.T) {
	tbl := limit.New(limit.Options{MaxConns: 4, HandshakeRate: 5, TableSize: 1024})
	e := start(t, func(o *Options) { o.ProxyProtocol = true; o.Limits = tbl })
	const n = 20_000 // twenty times the table
	var next atomic.Int64
	var maxLen atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				c, err := net.Dial("tcp", e.addr)
				if err != nil {
					continue
				}
				c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT: 100,000 ports would run out
				fmt.Fprintf(c, "PROXY TCP4 10.%d.%d.%d 10.0.0.1 40000 48322\r\n", byte(i>>16), byte(i>>8), byte(i))
				c.(*net.TCPConn).CloseWrite() // no handshake follows: the proxy ends it at once
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
				if l := int64(tbl.Len()); l > maxLen.Load() {
					maxLen.Store(l)
				}
			}
		})
	}
	wg.Wait()
	if m := maxLen.Load(); m > 1024 {
		t.Errorf("the table held %d clients, bound 1024", m)
	}
	cl, err := wstest.Upgrade(viaLB(t, e, "192.0.2.1"), "localhost", "/after-the-flood")
	if err != nil {
		t.Fatalf("after the flood: %v", err)
	}
	cl.Close()
}

// Connections past a client's limits are closed before any TLS work, and
// counted; other clients are not affected.
func TestConnectionLimitsPerClient(t *testing.T) {
	obs := &limited{}
	e := start(t, func(o *Options) {
		o.ProxyProtocol = true
		o.Observer = obs
		o.Limits = limit.New(limit.Options{MaxConns: 2, TableSize: 1024})
	})
	var open []*wstest.Client
	for i := range 2 {
		cl, err := wstest.Upgrade(viaLB(t, e, "192.0.2.50"), "localhost", fmt.Sprintf("/held%d", i))
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, cl)
	}
	c := viaLB(t, e, "192.0.2.50")
	if err := c.Handshake(); err == nil {
		t.Error("a third connection from the same client completed TLS")
	}
	if cl, err := wstest.Upgrade(viaLB(t, e, "192.0.2.51"), "localhost", "/other"); err != nil {
		t.Errorf("another client: %v", err)
	} else {
		cl.Close()
	}
	open[0].Close()
	waitFor(t, 5*time.Second, "the first session's end", func() bool { return len(e.logs.FilterMessage("session ended").All()) >= 2 })
	if cl, err := wstest.Upgrade(viaLB(t, e, "192.0.2.50"), "localhost", "/again"); err != nil {
		t.Errorf("after one of its connections ended: %v", err)
	} else {
		cl.Close()
	}
	if got := obs.list(); got != limit.Connections {
		t.Errorf("limited: %q", got)
	}
	if e.logs.FilterMessage("client limit reached: connection closed").Len() != 1 {
		t.Error("the refusal was not logged")
	}
}

// limited records the observer's per-client limit refusals.
type limited struct {
	nopObserver
	recorder
}

func (l *limited) ClientLimited(which string) { l.add(which) }
