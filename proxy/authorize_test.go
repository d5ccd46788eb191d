package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// recorder keeps what an observer under test was told, in order.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
}

func (r *recorder) list() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, ",")
}

// refusals records the observer's auth refusals.
type refusals struct {
	nopObserver
	recorder
}

func (r *refusals) AuthRefused(why string) { r.add(why) }

// oidcVerifier starts a real provider and a verifier of its tokens, ready.
func oidcVerifier(t *testing.T) (*oidctest.Provider, *auth.OIDC) {
	t.Helper()
	p := oidctest.Started(t)
	v := auth.NewOIDC(auth.OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { v.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); http.DefaultClient.CloseIdleConnections() })
	waitFor(t, 10*time.Second, "the provider's keys", func() bool { ok, _ := v.Ready(); return ok })
	return p, v
}

// withOIDC starts a real provider and a proxy that requires its tokens.
func withOIDC(t *testing.T, obs Observer) (*env, *oidctest.Provider) {
	t.Helper()
	p, v := oidcVerifier(t)
	e := start(t, func(o *Options) {
		o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token"
		if obs != nil {
			o.Observer = obs
		}
	})
	return e, p
}

// Each place a credential may be in is accepted, and the runtime never
// sees the credential: the head it gets is the client's without it.
func TestAuthCredentialSourcesAndStripping(t *testing.T) {
	e, p := withOIDC(t, nil)
	tok, err := p.Token() // a real client-credentials grant
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, target string
		header       []string
	}{
		{"bearer", "/sign_in?peer_id=1", []string{"Authorization: Bearer " + tok}},
		{"query", "/sign_in?peer_id=2&token=" + tok + "&v=%2F", nil},
		{"cookie", "/sign_in?peer_id=3", []string{"Cookie: theme=dark; cxr_token=" + tok + "; lang=en"}},
	} {
		cl := e.ws(c.target, c.header...)
		if err := cl.Echo("signed in by "+c.name, 5*time.Second); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cl.Close()
	}
	reqs := e.backend.Requests()
	if len(reqs) != 3 {
		t.Fatalf("the backend saw %d requests", len(reqs))
	}
	for _, r := range reqs {
		if strings.Contains(string(r.Raw), tok) || r.Header.Get("Authorization") != "" {
			t.Errorf("the runtime saw the credential:\n%s", r.Raw)
		}
	}
	if reqs[1].Target != "/sign_in?peer_id=2&v=%2F" {
		t.Errorf("query: the runtime got %q", reqs[1].Target)
	}
	if got := reqs[2].Header.Get("Cookie"); got != "theme=dark; lang=en" {
		t.Errorf("cookie: the runtime got Cookie %q", got)
	}
}

// A refused credential gets 401 with the header set and a reason the page
// can read; the runtime is never contacted; the log says why and never
// holds the token; the metric counts it.
func TestAuthRefusals(t *testing.T) {
	obs := &refusals{}
	e, p := withOIDC(t, obs)
	expired := p.Claims()
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	stale, err := p.Sign(expired)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, why string
		header    []string
	}{
		{"missing", "missing", nil},
		{"expired", "expired", []string{"Authorization: Bearer " + stale}},
	} {
		cl, _ := wstest.Upgrade(e.dial(), "localhost", "/sign_in?peer_id="+c.name, c.header...)
		if cl == nil || cl.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: %v, want 401", c.name, cl)
		}
		io.Copy(io.Discard, cl.Response.Body)
		wantCORS(t, cl.Response.Header)
		if h := cl.Response.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, `Bearer error="invalid_token", error_description="`+c.why) {
			t.Errorf("%s: WWW-Authenticate %q", c.name, h)
		}
		l := e.sessionLog("path", "/sign_in?peer_id="+c.name)
		if l["reason"] != "unauthorized: "+c.why || l["status"] != int64(401) {
			t.Errorf("%s: log %v", c.name, l)
		}
	}
	for _, entry := range e.logs.All() {
		if strings.Contains(fmt.Sprint(entry.ContextMap()), stale) {
			t.Fatalf("the token is in the log: %v", entry.ContextMap())
		}
	}
	if n := e.backend.Accepted(); n != 0 {
		t.Errorf("the backend was contacted %d times for refused requests", n)
	}
	if got := obs.list(); got != "missing,expired" {
		t.Errorf("refusals counted: %q", got)
	}

	// Preflights need no credential: browsers never send one on them.
	c := e.dial()
	fmt.Fprint(c, "OPTIONS /sign_in HTTP/1.1\r\nHost: localhost\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("preflight: %v %v", resp, err)
	}
}

// Before the provider's keys have ever loaded, upgrades get 503.
func TestAuthNotReady(t *testing.T) {
	p, err := oidctest.New() // never started
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewOIDC(auth.OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID})
	e := start(t, func(o *Options) { o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token" })
	cl, _ := wstest.Upgrade(e.dial(), "localhost", "/sign_in", "Authorization: Bearer a.b.c")
	if cl == nil || cl.Response.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%v, want 503", cl)
	}
	body, _ := io.ReadAll(cl.Response.Body)
	if !strings.Contains(string(body), "authentication not ready") {
		t.Errorf("body %q", body)
	}
	if l := e.sessionLog("path", "/sign_in"); l["reason"] != "authentication not ready" {
		t.Errorf("log %v", l)
	}
}

func TestAuthStaticTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# lab\nheadset-1\n"), 0o600)
	s, err := auth.NewStatic(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(o *Options) { o.Auth, o.AuthQueryParam, o.AuthCookie = s, "token", "cxr_token" })
	cl := e.ws("/sign_in?token=headset-1")
	if err := cl.Echo("ok", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	bad, _ := wstest.Upgrade(e.dial(), "localhost", "/refused?token=headset-2")
	if bad == nil || bad.Response.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%v, want 401", bad)
	}
	if l := e.sessionLog("path", "/refused"); l["reason"] != "unauthorized: unknown token" {
		t.Errorf("log %v", l)
	}
}
