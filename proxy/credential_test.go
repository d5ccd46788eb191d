package proxy

import (
	"strings"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

var names = credentialNames{param: "token", cookie: "cxr_token"}

func head(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n") }

func TestCredentialSources(t *testing.T) {
	for _, c := range []struct {
		name   string
		head   []byte
		want   string
		absent bool
	}{
		{"bearer first", head("GET /s?token=q HTTP/1.1", "Host: h", "Authorization: Bearer abc.def.ghi", "Cookie: cxr_token=c"), "abc.def.ghi", false},
		{"bearer, any case", head("GET / HTTP/1.1", "Host: h", "authorization: bearer  t1 "), "t1", false},
		{"query next", head("GET /sign_in?peer_id=1&token=q%2Bv&x=2 HTTP/1.1", "Host: h", "Cookie: cxr_token=c"), "q+v", false},
		{"cookie last", head("GET / HTTP/1.1", "Host: h", "Cookie: a=1; cxr_token=c; b=2"), "c", false},
		{"two Cookie fields", head("GET / HTTP/1.1", "Host: h", "Cookie: a=1", "Cookie: cxr_token=c2"), "c2", false},
		{"basic is not a bearer token", head("GET / HTTP/1.1", "Host: h", "Authorization: Basic dXNlcjpwYXNz"), "", true},
		{"empty query value", head("GET /?token= HTTP/1.1", "Host: h"), "", true},
		{"other names", head("GET /?tokens=x HTTP/1.1", "Host: h", "Cookie: cxr_token_old=y"), "", true},
		{"none", head("GET / HTTP/1.1", "Host: h"), "", true},
	} {
		req, err := parseRequestHead(c.head)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, ok := names.credential(req)
		if ok == c.absent || got != c.want {
			t.Errorf("%s: %q %v, want %q", c.name, got, ok, c.want)
		}
	}
}

// What reaches the runtime: no credential in any of its places, the rest of
// the head byte for byte.
func TestStripCredentials(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{head("GET /sign_in?peer_id=1&token=abc&x=%2F HTTP/1.1", "Host: h", "Authorization: Bearer abc", "Cookie: a=1; cxr_token=abc; b=2", "Upgrade: websocket"),
			head("GET /sign_in?peer_id=1&x=%2F HTTP/1.1", "Host: h", "Cookie: a=1; b=2", "Upgrade: websocket")},
		{head("GET /sign_in?token=abc HTTP/1.1", "Host: h", "Cookie: cxr_token=abc"),
			head("GET /sign_in HTTP/1.1", "Host: h")},
		{head("GET /x?a=1&token=1&token=2&b HTTP/1.1", "Host: h"), head("GET /x?a=1&b HTTP/1.1", "Host: h")},
		{head("GET /plain HTTP/1.1", "Host: h", "X-Other: 1"), head("GET /plain HTTP/1.1", "Host: h", "X-Other: 1")},
	} {
		if got := names.strip(c.in); string(got) != string(c.want) {
			t.Errorf("strip(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func FuzzStripCredentials(f *testing.F) {
	f.Add([]byte("GET /s?token=abc&p=1 HTTP/1.1\r\nHost: h\r\nCookie: cxr_token=abc; x=1\r\nAuthorization: Bearer abc\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		hl := tunnel.HeadEnd(in)
		if hl < 0 {
			return
		}
		req, err := parseRequestHead(in[:hl])
		if err != nil {
			return
		}
		out := names.strip(in[:hl])
		again, err := parseRequestHead(out)
		if err != nil {
			t.Fatalf("stripped head no longer parses: %v\n%q", err, out)
		}
		if tok, ok := names.credential(again); ok {
			t.Fatalf("a credential %q is left in %q", tok, out)
		}
		if again.method != req.method || again.upgrade != req.upgrade || again.host != req.host {
			t.Fatalf("strip changed the request: %+v -> %+v", req, again)
		}
	})
}

func TestRedactTarget(t *testing.T) {
	for in, want := range map[string]string{
		"/sign_in?peer_id=1&token=abc": "/sign_in?peer_id=1",
		"/sign_in?token=abc":           "/sign_in",
		"/plain":                       "/plain",
		"/a?b=1":                       "/a?b=1",
	} {
		if got := names.redactTarget(in); got != want {
			t.Errorf("redactTarget(%q) = %q, want %q", in, got, want)
		}
	}
}
