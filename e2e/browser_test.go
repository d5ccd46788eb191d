//go:build e2e

package e2e

// A real browser: Debian's Chromium, headless, trusting the proxy's local CA
// through an NSS database made for the test (certificate errors are not
// ignored), loads the acceptance page and a same-origin web client that
// opens a wss:// WebSocket through the proxy to the echo backend.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

const clientPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>test client</title></head>
<body><p id="result">pending</p>
<script>
const out = document.getElementById('result');
fetch('/status.json').then(r => r.json()).then(st => {
  const ws = new WebSocket('wss://' + location.host + '/sign_in?peer_id=chromium');
  ws.onopen = () => ws.send('hello from chromium');
  ws.onmessage = (e) => { out.textContent = 'echo:' + e.data + ';backend_up:' + st.backend.up; ws.close(); };
  ws.onerror = () => { out.textContent = 'websocket error'; };
}).catch(e => { out.textContent = 'fetch error: ' + e; });
</script></body></html>`

func TestChromiumTrustsCAAndEchoes(t *testing.T) {
	b := backend(t)
	dir, web, home := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(web, "index.html"), []byte(clientPage), 0o644)
	p := startProc(t, "CERT_DIR="+dir, "WEB_ROOT="+web, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	_, port, _ := strings.Cut(p.addr(), "127.0.0.1:")
	origin := "https://localhost:" + port

	trustInNSS(t, home, filepath.Join(dir, "ca.crt"))
	ctx := newChromium(t, home)

	// Navigate fails on a certificate error: the CA must really be trusted.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("loading the acceptance page: %v", err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('h1').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	fingerprint, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('fingerprint').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/app/")); err != nil {
		t.Fatalf("loading the web client: %v", err)
	}
	result, err := chromedp.Run(ctx, chromedp.Poll[string](
		`(() => { const t = document.getElementById('result').textContent; return t !== 'pending' && t; })()`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("waiting for the page's result: %v", err)
	}
	if !strings.Contains(heading, "The certificate is accepted") {
		t.Errorf("acceptance page heading %q", heading)
	}
	if want := p.waitLog("generated a certificate")["sha256"]; strings.TrimSpace(fingerprint) != want {
		t.Errorf("page shows fingerprint %q, proxy serves %v", fingerprint, want)
	}
	if result != "echo:hello from chromium;backend_up:true" {
		t.Fatalf("page reports %q", result)
	}
	if l := p.waitLog("session ended"); l == nil {
		t.Error("no session log")
	}
}

// trustInNSS makes the NSS database under home (where Chromium on Linux
// reads trust) trust the CA in caPath.
func trustInNSS(t *testing.T, home, caPath string) {
	t.Helper()
	certutil, err := exec.LookPath("certutil")
	if err != nil {
		t.Fatal("certutil is needed for this test (apt-get install libnss3-tools; .ci/run installs it)")
	}
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700)
	for _, args := range [][]string{
		{"-N", "-d", nssdb, "--empty-password"},
		{"-A", "-d", nssdb, "-n", "cloudxr-wss-proxy test CA", "-t", "C,,", "-i", caPath},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
}

// newChromium starts the real headless Chromium with home as $HOME and a
// fresh profile, for at most a minute; it is stopped when the test ends.
func newChromium(t *testing.T, home string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed for this test (apt-get install chromium; .ci/run installs it)")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Env("HOME=" + home),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// A page without the cookie: its script reads the 401 and why.
const noCookiePage = `<!doctype html>
<html><head><meta charset="utf-8"></head><body><p id="result">pending</p>
<script>
fetch('/sign_in?peer_id=anonymous').then(r => {
  document.getElementById('result').textContent = r.status + ';' + r.headers.get('WWW-Authenticate');
}).catch(e => { document.getElementById('result').textContent = 'fetch error: ' + e; });
</script></body></html>`

// The web client after its login: it sets the cookie and opens the
// signaling WebSocket to its own origin, which sends the cookie along.
const loginPage = `<!doctype html>
<html><head><meta charset="utf-8"></head><body><p id="result">pending</p>
<script>
const out = document.getElementById('result');
document.cookie = 'cxr_token=headset-token; path=/; Secure; SameSite=Strict';
const ws = new WebSocket('wss://' + location.host + '/sign_in?peer_id=chromium');
ws.onopen = () => ws.send('hello with a cookie');
ws.onmessage = (e) => { out.textContent = 'echo:' + e.data; ws.close(); };
ws.onerror = () => { out.textContent = 'websocket error'; };
</script></body></html>`

func TestChromiumCookieAuthentication(t *testing.T) {
	b := backend(t)
	dir, web, home := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(web, "anonymous.html"), []byte(noCookiePage), 0o644)
	os.WriteFile(filepath.Join(web, "login.html"), []byte(loginPage), 0o644)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("headset-token\n"), 0o600)
	p := startProc(t, "CERT_DIR="+dir, "WEB_ROOT="+web, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1",
		"AUTH_TOKENS_FILE="+tokens)
	_, port, _ := strings.Cut(p.addr(), "127.0.0.1:")
	origin := "https://localhost:" + port
	trustInNSS(t, home, filepath.Join(dir, "ca.crt"))
	ctx := newChromium(t, home)

	result := func(page string) string {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/app/"+page)); err != nil {
			t.Fatalf("loading %s: %v", page, err)
		}
		r, err := chromedp.Run(ctx, chromedp.Poll[string](
			`(() => { const t = document.getElementById('result').textContent; return t !== 'pending' && t; })()`,
			chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("%s: waiting for the result: %v", page, err)
		}
		return r
	}
	// First, with no cookie in the browser yet.
	if got := result("anonymous.html"); got != `401;Bearer error="invalid_token", error_description="missing: send the token as Authorization: Bearer, the token query parameter or the cxr_token cookie"` {
		t.Errorf("the page without the cookie read %q", got)
	}
	if got := result("login.html"); got != "echo:hello with a cookie" {
		t.Errorf("the page with the cookie: %q", got)
	}
	reqs := b.Requests()
	if len(reqs) != 1 || strings.Contains(string(reqs[0].Raw), "headset-token") {
		t.Errorf("the runtime saw %d requests, or the cookie: %v", len(reqs), reqs)
	}
}

// The link an attacker sends (issue 18, finding 1): a token whose JWT
// header's alg holds CR LF, a cookie and a script. Opened in Chromium, the
// proxy's 401 must stay one plain-text answer: no cookie planted, no script
// run in the proxy's origin.
func TestChromiumHostileTokenLink(t *testing.T) {
	provider, caFile := tlsProvider(t)
	if err := provider.Start(); err != nil {
		t.Fatal(err)
	}
	b := backend(t)
	dir, home := t.TempDir(), t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"AUTH_OIDC_ISSUER="+provider.Issuer, "AUTH_AUDIENCE="+oidctest.ClientID, "SSL_CERT_FILE="+caFile)
	_, port, _ := strings.Cut(p.addr(), "127.0.0.1:")
	p.waitLine(40*time.Second, "keys loaded", func(l map[string]any) bool { return l["msg"] == "authentication ready: the provider's keys loaded" })
	origin := "https://localhost:" + port
	trustInNSS(t, home, filepath.Join(dir, "ca.crt"))
	ctx := newChromium(t, home)

	header, _ := json.Marshal(map[string]string{"typ": "JWT",
		"alg": "\r\nSet-Cookie: cxr_token=attacker; Path=/\r\nContent-Type: text/html\r\n\r\n<script>document.title='pwned'</script>"})
	token := base64.RawURLEncoding.EncodeToString(header) + ".e30.c2ln"
	if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/x?token="+url.QueryEscape(token))); err != nil {
		t.Fatalf("opening the link: %v", err)
	}
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title + '|' + document.cookie + '|' + document.contentType + '|' + document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(state, "|", 4)
	if len(parts) != 4 || parts[0] == "pwned" || strings.Contains(parts[1], "cxr_token") || parts[2] != "text/plain" ||
		!strings.HasPrefix(parts[3], "unauthorized: bad signature") {
		t.Errorf("after the link: title, cookie, type, text = %q", parts)
	}
	if reqs := b.Requests(); len(reqs) != 0 {
		t.Errorf("the runtime saw %d requests", len(reqs))
	}
}

// A CloudXR.js-like page that opens the signaling WebSocket, echoes once
// and closes it.
const poolPage = `<!doctype html>
<html><head><meta charset="utf-8"></head><body><p id="result">pending</p>
<script>
const out = document.getElementById('result');
const ws = new WebSocket('wss://' + location.host + '/sign_in?peer_id=' + location.search.slice(1));
ws.onopen = () => ws.send('hello from the pool');
ws.onmessage = (e) => { out.textContent = 'echo:' + e.data; ws.close(); };
ws.onerror = () => { out.textContent = 'websocket error'; };
</script></body></html>`

// The pool cookie in the real browser: Chromium keeps the cookie the proxy
// sets on the WebSocket's 101 and sends it on its reconnect, which gets the
// same runtime back within the grace, while another user, meanwhile, got
// the other one. Without the cookie the reconnect would find the pool full.
func TestChromiumPoolCookie(t *testing.T) {
	b1, b2 := backend(t), backend(t)
	dir, web, home := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(web, "pool.html"), []byte(poolPage), 0o644)
	p := startProc(t, "CERT_DIR="+dir, "WEB_ROOT="+web, "BACKEND_POOL="+b1.Addr()+","+b2.Addr(), "POOL_RECONNECT_GRACE=60s")
	addr := p.addr()
	_, port, _ := strings.Cut(addr, "127.0.0.1:")
	origin := "https://localhost:" + port
	trustInNSS(t, home, filepath.Join(dir, "ca.crt"))
	ctx := newChromium(t, home)
	session := func(peer string) string {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/app/pool.html?"+peer)); err != nil {
			t.Fatalf("loading the page: %v", err)
		}
		r, err := chromedp.Run(ctx, chromedp.Poll[string](
			`(() => { const t = document.getElementById('result').textContent; return t !== 'pending' && t; })()`,
			chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			t.Fatalf("waiting for the result: %v", err)
		}
		return r
	}
	ended := func(peer string) any {
		t.Helper()
		return p.waitLine(10*time.Second, peer+"'s session line", func(m map[string]any) bool {
			return m["msg"] == "session ended" && m["path"] == "/sign_in?peer_id="+peer
		})["backend"]
	}
	if got := session("first"); got != "echo:hello from the pool" {
		t.Fatalf("the first session: %q", got)
	}
	first := ended("first")
	other, err := wstest.Dial(addr, "/sign_in?peer_id=someone-else", trustPEM(t, filepath.Join(dir, "ca.crt")))
	if err != nil {
		t.Fatalf("another user while the browser's runtime is in grace: %v", err)
	}
	defer other.Conn.Close()
	if got := session("again"); got != "echo:hello from the pool" {
		t.Fatalf("the browser reconnecting within the grace: %q", got)
	}
	if again := ended("again"); again != first {
		t.Errorf("the browser's sessions were on %v and then %v", first, again)
	}
}
