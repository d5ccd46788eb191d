package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// signedWith signs the provider's usual claims without "sub", with the
// members in extra (JSON text, such as `"sub":"a","Sub":"b"`) first.
func signedWith(t *testing.T, p *oidctest.Provider, extra string) string {
	t.Helper()
	c := p.Claims()
	delete(c, "sub")
	rest, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.SignPayload([]byte("{" + extra + "," + string(rest[1:])))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A token whose user could be read two ways (a "sub" and a "Sub", "sub"
// twice, a "ſub" that Unicode case folding makes "sub", or a "Sub" alone)
// is refused with a reason, and never gets the runtime that "bob" holds in
// his reconnect grace; a token that repeats a name in two different
// nested objects is an ordinary token.
func TestPoolSubjectReadExactly(t *testing.T) {
	prov, v := oidcVerifier(t)
	pe := startPool(t, time.Minute, func(o *Options) { o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token" })
	bob := pe.ws("/sign_in", "Authorization: Bearer "+signedWith(t, prov, `"sub":"bob"`))
	if err := bob.Echo("hi", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var bobs string
	for r, u := range pe.srv.PoolUsers() {
		if u == "bob" {
			bobs = r
		}
	}
	if pe.backends[bobs] == nil {
		t.Fatalf("no runtime is bob's: %v", pe.srv.PoolUsers())
	}
	bob.Conn.Close()
	waitFor(t, 5*time.Second, "bob's session over", func() bool { return pe.backends[bobs].OpenConns() == 0 })

	for _, claims := range []string{`"sub":"alice","Sub":"bob"`, `"sub":"alice","sub":"bob"`, `"sub":"alice","ſub":"bob"`, `"Sub":"bob"`} {
		c, err := wstest.Upgrade(pe.dial(), "localhost", "/sign_in", "Authorization: Bearer "+signedWith(t, prov, claims))
		if err == nil {
			t.Errorf("%s: a 101 (runtime %s has %d sessions, bob's)", claims, bobs, pe.backends[bobs].OpenConns())
			c.Conn.Close()
			continue
		}
		body, _ := io.ReadAll(c.Response.Body)
		if c.Response.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "malformed") {
			t.Errorf("%s: %d %q, want 401 malformed", claims, c.Response.StatusCode, body)
		}
	}

	nested := pe.ws("/sign_in", "Authorization: Bearer "+signedWith(t, prov, `"sub":"carol","a":{"x":1},"b":{"x":2}`))
	if err := nested.Echo("hi", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	again := pe.ws("/sign_in", "Authorization: Bearer "+signedWith(t, prov, `"sub":"bob"`))
	if err := again.Echo("back", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if u := pe.srv.PoolUsers()[bobs]; u != "bob" {
		t.Errorf("bob's runtime is %q's", u)
	}
}
