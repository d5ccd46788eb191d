package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/allow"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
)

// Nothing a client sends, in a request or inside a token, reaches one of
// the proxy's answers unescaped (issue 18, finding 1: a JWT whose alg held
// CR LF split the 401 and planted a cookie and a script).

// hostile are values an attacker puts wherever a refusal might repeat them.
var hostile = []string{
	"\r\nSet-Cookie: cxr_token=attacker; Path=/\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>",
	"\n<script>document.title='pwned'</script>",
	"nul\x00byte",
	`a "quoted" value`,
	`back\slash\`,
	"<script>alert(document.cookie)</script>",
	strings.Repeat("8KiB", 2<<10),
}

// unsignedJWT is a token with any header, as an attacker writes one.
func unsignedJWT(header map[string]any) string {
	h, _ := json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + ".c2ln"
}

// answerFields are the header fields every refusal carries, besides the
// CORS set and "Connection: close" (which net/http takes out into Close).
var answerFields = []string{"Content-Type", "X-Content-Type-Options", "Content-Length"}

// checkAnswer reads one refusal from br and asserts it is exactly what the
// proxy meant to send: status, the fields it adds and no other, text/plain
// with nosniff, no byte after the body, and in neither head nor body any
// of the words in leak (the token's own values).
func checkAnswer(t *testing.T, what string, br *bufio.Reader, status int, hs *headerSet, extra []string, leak ...string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: the answer does not parse: %v", what, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || !resp.Close {
		t.Errorf("%s: status %d, want %d; closing %v", what, resp.StatusCode, status, resp.Close)
	}
	want := append(append(slices.Clone(answerFields), blockNames(hs)...), extra...)
	for i := range want {
		want[i] = http.CanonicalHeaderKey(want[i])
	}
	var got []string
	for k, v := range resp.Header {
		got = append(got, k)
		if len(v) != 1 {
			t.Errorf("%s: %s sent %d times", what, k, len(v))
		}
		for _, s := range v {
			if !printableASCII(s) {
				t.Errorf("%s: %s holds %q", what, k, s)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: header fields %v, want exactly %v", what, got, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: Content-Type %q, nosniff %q", what, ct, resp.Header.Get("X-Content-Type-Options"))
	}
	if len(body) > 1024 || strings.Count(string(body), "\n") != 1 || strings.ContainsAny(string(body), "\r\x00") {
		t.Errorf("%s: body %q", what, body)
	}
	if rest, _ := io.ReadAll(br); len(rest) > 0 {
		t.Errorf("%s: %d bytes after the answer: %q", what, len(rest), rest)
	}
	for _, l := range leak {
		if l == "" {
			continue
		}
		if strings.Contains(string(body), l) || strings.Contains(fmt.Sprint(resp.Header), l) {
			t.Errorf("%s: the answer repeats %q: %q %v", what, l, body, resp.Header)
		}
	}
}

// blockNames are the field names in a header set's lines.
func blockNames(hs *headerSet) []string {
	var names []string
	for _, line := range strings.Split(strings.TrimSuffix(string(hs.block), "\r\n"), "\r\n") {
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
	return names
}

// refusedWith sends one request with a token and returns the reader.
func refusedWith(e *env, target, header string) *bufio.Reader {
	c := e.dial()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n%sUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", target, header)
	return bufio.NewReader(c)
}

func TestRefusalsRepeatNoTokenValue(t *testing.T) {
	p := oidctest.Started(t)
	v := auth.NewOIDC(auth.OIDCOptions{Issuer: p.Issuer, Audience: oidctest.ClientID,
		Claims: []auth.Claim{{Name: "groups", Value: "cloudxr"}}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { v.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait(); http.DefaultClient.CloseIdleConnections() })
	waitFor(t, 10*time.Second, "the provider's keys", func() bool { ok, _ := v.Ready(); return ok })
	e := start(t, func(o *Options) { o.Auth, o.AuthQueryParam, o.AuthCookie = v, "token", "cxr_token" })
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	for i, h := range hostile {
		claims := func(change func(map[string]any)) string {
			c := p.Claims()
			c["groups"] = []string{"cloudxr"}
			change(c)
			tok, err := p.Sign(c)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		kid, err := oidctest.SignWith(other, h, jose.ES256, p.Claims())
		if err != nil {
			t.Fatal(err)
		}
		tokens := map[string]string{
			"alg":         unsignedJWT(map[string]any{"alg": h, "typ": "JWT"}),
			"kid":         kid,
			"iss":         claims(func(c map[string]any) { c["iss"] = h }),
			"aud":         claims(func(c map[string]any) { c["aud"] = h; delete(c, "client_id") }),
			"claim name":  claims(func(c map[string]any) { delete(c, "groups"); c[h] = "cloudxr" }),
			"claim value": claims(func(c map[string]any) { c["groups"] = []string{h} }),
			"sub":         claims(func(c map[string]any) { c["sub"], c["exp"] = h, time.Now().Add(-time.Hour).Unix() }),
		}
		for field, tok := range tokens {
			what := fmt.Sprintf("hostile %d in %s", i, field)
			checkAnswer(t, what+" (header)", refusedWith(e, "/sign_in", "Authorization: Bearer "+tok+"\r\n"),
				http.StatusUnauthorized, anyOrigin, []string{"WWW-Authenticate"}, h, "<script", "8KiB8KiB")
			checkAnswer(t, what+" (query)", refusedWith(e, "/x?token="+url.QueryEscape(tok), ""),
				http.StatusUnauthorized, anyOrigin, []string{"WWW-Authenticate"}, h, "<script", "8KiB8KiB")
		}
	}
	if n := e.backend.Accepted(); n != 0 {
		t.Errorf("the backend was contacted %d times", n)
	}
}

// The tokens file's path: an unknown token, whatever it holds, gets the
// same fixed words.
func TestStaticRefusalRepeatsNoToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("headset-1\n"), 0o600)
	s, err := auth.NewStatic(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(o *Options) { o.Auth, o.AuthQueryParam, o.AuthCookie = s, "token", "cxr_token" })
	for i, h := range hostile {
		what := fmt.Sprintf("hostile %d", i)
		checkAnswer(t, what+" (query)", refusedWith(e, "/sign_in?token="+url.QueryEscape(h), ""),
			http.StatusUnauthorized, anyOrigin, []string{"WWW-Authenticate"}, h, "<script", "8KiB8KiB")
		if printableASCII(h) && len(h) < 4096 {
			checkAnswer(t, what+" (cookie)", refusedWith(e, "/sign_in", "Cookie: cxr_token="+h+"\r\n"),
				http.StatusUnauthorized, anyOrigin, []string{"WWW-Authenticate"}, h, "<script")
		}
	}
}

// Values the proxy does repeat, from the request itself (the routed
// runtime, a refused origin), come back Go-quoted, clipped and in
// text/plain.
func TestRequestValuesQuotedInRefusals(t *testing.T) {
	rt, err := allow.NewRuntimes([]string{"10.0.3.0/24"}, 49100)
	if err != nil {
		t.Fatal(err)
	}
	origins, _ := allow.NewOrigins([]string{"https://app.example"})
	e := start(t, func(o *Options) { o.Router, o.AllowedOrigins = NewRouter(rt, 0), origins })
	for i, h := range hostile {
		what := fmt.Sprintf("hostile %d", i)
		status := http.StatusForbidden
		if _, err := rt.Target(h); errors.Is(err, allow.ErrBadTarget) {
			status = http.StatusBadRequest
		}
		checkAnswer(t, what+" (route)", refusedWith(e, "/"+url.PathEscape(h)+"/sign_in", ""), status, e.srv.corsFor(""), nil)
		if printableASCII(h) && len(h) < 4096 {
			checkAnswer(t, what+" (origin)", refusedWith(e, "/10.0.3.1/sign_in", "Origin: "+h+"\r\n"), http.StatusForbidden,
				e.srv.corsFor(h), nil)
		}
	}
}

// FuzzRefusal: whatever words and values a refusal is made of, its answer
// parses to exactly the fields the proxy sends, with a body of the length
// it declares and nothing after it.
func FuzzRefusal(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, h)
	}
	f.Fuzz(func(t *testing.T, detail, msg string) {
		fail := &auth.Failure{Why: auth.BadSignature, Detail: detail}
		raw := localResponse(anyOrigin, http.StatusUnauthorized, false, []field{bearerChallenge(fail), {"Retry-After", detail}},
			"unauthorized: "+msg+"\n")
		br := bufio.NewReader(strings.NewReader(string(raw)))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("does not parse: %v\n%q", err, raw)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.ContentLength != int64(len(body)) {
			t.Fatalf("body %d bytes of %d: %v", len(body), resp.ContentLength, err)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("bytes after the body: %q", rest)
		}
		want := len(answerFields) + len(corsNames) + 2
		if len(resp.Header) != want || !resp.Close || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("fields %v", resp.Header)
		}
		ch := resp.Header.Get("WWW-Authenticate")
		prefix := `Bearer error="invalid_token", error_description="`
		if !strings.HasPrefix(ch, prefix) || !strings.HasSuffix(ch, `"`) || !printableASCII(ch) {
			t.Fatalf("challenge %q", ch)
		}
		// The quoted-string holds no unescaped quote: it ends where it should.
		inner := ch[len(prefix) : len(ch)-1]
		for i := 0; i < len(inner); i++ {
			if inner[i] == '\\' {
				i++
			} else if inner[i] == '"' {
				t.Fatalf("unescaped quote in %q", ch)
			}
		}
	})
}
