package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// whoLocal is a page that says whether its request was authenticated.
type whoLocal struct{}

func (whoLocal) Owns(method, target string) bool { return strings.HasPrefix(target, "/who") }

func (whoLocal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if auth.Authenticated(r.Context()) {
		io.WriteString(w, "authenticated")
	} else {
		io.WriteString(w, "anonymous")
	}
}

// budgetCounts counts what the observer is told about credentials.
type budgetCounts struct {
	nopObserver
	refused, limited atomic.Int64
}

func (b *budgetCounts) AuthRefused(string)   { b.refused.Add(1) }
func (b *budgetCounts) ClientLimited(string) { b.limited.Add(1) }

func tokensVerifier(t *testing.T, tokens string) *countingVerifier {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte(tokens), 0o600)
	s, err := auth.NewStatic(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &countingVerifier{Verifier: s}
}

// The proxy's own pages are no token oracle (issue 18, finding 3): 500
// guesses pipelined on one connection cost 10 verifications (the budget),
// each refusal is counted and logged, and once over budget even the right
// token is not verified on any path.
func TestPagesVerifyWithinTheBudget(t *testing.T) {
	v := tokensVerifier(t, "right\n")
	obs := &budgetCounts{}
	e := start(t, func(o *Options) {
		o.ProxyProtocol, o.Local, o.Observer = true, whoLocal{}, obs
		o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token"
		o.Limits = limit.New(limit.Options{AuthFailures: 10, TableSize: 1024})
	})
	c := viaLB(t, e, "198.51.100.9")
	var reqs strings.Builder
	const guesses = 500
	for i := range guesses {
		fmt.Fprintf(&reqs, "GET /who?token=guess%d HTTP/1.1\r\nHost: localhost\r\n\r\n", i)
	}
	fmt.Fprintf(&reqs, "GET /who?token=right HTTP/1.1\r\nHost: localhost\r\n\r\n")
	go io.WriteString(c, reqs.String())
	br := bufio.NewReader(c)
	var last string
	for i := range guesses + 1 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if last = string(b); last != "anonymous" && i < guesses {
			t.Fatalf("guess %d: %q", i, last)
		}
	}
	if last != "anonymous" {
		t.Errorf("the right token after the budget was verified: %q", last)
	}
	if n := v.calls.Load(); n != 10 {
		t.Errorf("%d verifications for %d guesses, want the budget of 10", n, guesses+1)
	}
	if r, l := obs.refused.Load(), obs.limited.Load(); r != 10 || l != guesses+1-10 {
		t.Errorf("counted %d refusals and %d over-budget requests", r, l)
	}
	if n := e.logs.FilterMessage("credential refused on the proxy's page").Len(); n == 0 || n > 10 {
		t.Errorf("%d log lines for the refused credentials", n)
	}
	// The upgrade path shares the budget.
	cl, _ := wstest.Upgrade(viaLB(t, e, "198.51.100.9"), "localhost", "/sign_in?token=right")
	if cl == nil || cl.Response.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an upgrade from the blocked client: %v", cl)
	}
	// Another client with the right token sees the page as a user.
	c2 := viaLB(t, e, "198.51.100.10")
	fmt.Fprint(c2, "GET /who?token=right HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "authenticated" {
		t.Errorf("another client with the right token: %q", b)
	}
}

// With the client table full of clients that each hold a connection, a
// new client is limited all the same (issue 18, finding 4): its failures
// count, and it gets 429 once over the budget, never unlimited 401s.
func TestFullClientTableStillLimits(t *testing.T) {
	v := tokensVerifier(t, "right\n")
	e := start(t, func(o *Options) {
		o.ProxyProtocol = true
		o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token"
		o.Limits = limit.New(limit.Options{MaxConns: 50, AuthFailures: 5, TableSize: 8})
	})
	for i := range 8 {
		c := viaLB(t, e, fmt.Sprintf("10.9.0.%d", i+1))
		if err := c.Handshake(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "8 live clients", func() bool { return e.srv.opts.Limits.Len() == 8 })
	codes := map[int]int{}
	for i := range 25 {
		cl, _ := wstest.Upgrade(viaLB(t, e, fmt.Sprintf("10.10.0.%d", i+1)), "localhost", "/sign_in?token=bad")
		if cl == nil {
			t.Fatalf("attempt %d: no answer", i)
		}
		codes[cl.Response.StatusCode]++
	}
	if codes[http.StatusUnauthorized] != 5 || codes[http.StatusTooManyRequests] != 20 {
		t.Errorf("answers to 25 bad tokens from new clients with the table full: %v, want 5×401 and 20×429", codes)
	}
}

// A PROXY v2 header whose source is a Unix socket does not switch the
// limits off (issue 18, finding 5): such sources are one client.
func TestNonIPSourceIsLimited(t *testing.T) {
	e := start(t, func(o *Options) {
		o.ProxyProtocol = true
		o.Limits = limit.New(limit.Options{MaxConns: 2, TableSize: 1024})
	})
	unixSource := func() *tls.Conn {
		raw, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UnixStream,
			SourceAddr: &net.UnixAddr{Net: "unix", Name: "/run/attacker.sock"}, DestinationAddr: &net.UnixAddr{Net: "unix", Name: "/run/proxy.sock"}}
		if _, err := h.WriteTo(raw); err != nil {
			t.Fatal(err)
		}
		return tls.Client(raw, e.tls)
	}
	var errs int
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := unixSource().HandshakeContext(ctx); err != nil {
			errs++
		}
		cancel()
	}
	if errs != 3 {
		t.Errorf("%d of 5 connections from a Unix-socket source refused, want 3 (a limit of 2)", errs)
	}
}
