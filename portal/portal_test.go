package portal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/auth"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newPortal(t *testing.T, webRoot string) (*Portal, *certs.Served, *httptest.Server) {
	t.Helper()
	m, err := certs.NewManager(certs.Options{Dir: t.TempDir(), Names: []string{"localhost", "127.0.0.1"}, Label: "box", Mode: certs.ModeLocalCA})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	p, err := New(Options{
		Version:     "v-test",
		Backend:     func() Backend { return Backend{Address: "10.0.0.9:49100", Up: false, State: "down", Since: since} },
		Certificate: m.Current,
		WebRoot:     webRoot,
		WebPath:     "/app/",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, m.Current(), srv
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestOwns(t *testing.T) {
	p, _, _ := newPortal(t, t.TempDir())
	for _, c := range []struct {
		method, target string
		want           bool
	}{
		{"GET", "/", true}, {"HEAD", "/", true}, {"GET", "/?x=1", true}, {"GET", "/status.json", true},
		{"GET", "/ca.crt", true}, {"GET", "/ca.cer", true}, {"GET", "/ca.mobileconfig", true},
		{"GET", "/app/", true}, {"GET", "/app", true}, {"GET", "/app/js/x.js", true},
		{"POST", "/", false}, {"OPTIONS", "/status.json", false}, {"GET", "/sign_in", false},
		{"GET", "/application", false}, {"GET", "/10.0.3.17/sign_in", false},
	} {
		if got := p.Owns(c.method, c.target); got != c.want {
			t.Errorf("Owns(%s %s) = %v", c.method, c.target, got)
		}
	}
	noWeb, _, _ := newPortal(t, "")
	if noWeb.Owns("GET", "/app/") {
		t.Error("owns /app/ without WEB_ROOT")
	}
}

func TestHomeAndStatus(t *testing.T) {
	_, served, srv := newPortal(t, "")
	resp, body := get(t, srv.URL+"/")
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"certificate is accepted", "10.0.0.9:49100", "not reachable", served.Fingerprint(),
		"Meta Quest 3", "Pico 4 Ultra", "Apple Vision Pro", "Windows 10/11", "Desktop Chrome", "/ca.crt", "/ca.cer", "/ca.mobileconfig", "/status.json"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The Windows steps name the file /ca.cer downloads as, and the
	// subject certutil removes it by.
	cer, _ := get(t, srv.URL+"/ca.cer")
	_, params, err := mime.ParseMediaType(cer.Header.Get("Content-Disposition"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"certutil -addstore -f Root " + params["filename"],
		`certutil -delstore Root "` + template.HTMLEscapeString(served.Anchor.Subject.CommonName) + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the Windows steps lack %q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", "<script src", "<link"} {
		if strings.Contains(page, banned) {
			t.Errorf("page refers to an external asset (%q)", banned)
		}
	}

	resp, body = get(t, srv.URL+"/status.json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("status content type %q", ct)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Backend.Up || st.Backend.Address != "10.0.0.9:49100" || st.Certificate.SHA256 != served.Fingerprint() ||
		st.Certificate.NotAfter.IsZero() || st.Version != "v-test" || !st.TrustAnchor.IsCA || st.Certificate.Mode != "local-ca" {
		t.Errorf("status %+v", st)
	}
}

func TestDownloads(t *testing.T) {
	_, served, srv := newPortal(t, "")
	_, body := get(t, srv.URL+"/ca.crt")
	block, _ := pem.Decode(body)
	if block == nil || !bytes.Equal(block.Bytes, served.Anchor.Raw) {
		t.Error("/ca.crt is not the CA in PEM")
	}
	resp, body := get(t, srv.URL+"/ca.cer")
	if !bytes.Equal(body, served.Anchor.Raw) || resp.Header.Get("Content-Type") != "application/pkix-cert" {
		t.Error("/ca.cer is not the CA in DER")
	}
	resp, body = get(t, srv.URL+"/ca.mobileconfig")
	if resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" {
		t.Errorf("type %s", resp.Header.Get("Content-Type"))
	}
	// A well-formed plist whose root payload is the CA.
	dec := xml.NewDecoder(bytes.NewReader(body))
	var datas []string
	var inData bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("profile is not XML: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			inData = v.Name.Local == "data"
		case xml.CharData:
			if inData {
				datas = append(datas, string(v))
			}
		case xml.EndElement:
			inData = false
		}
	}
	if len(datas) != 1 {
		t.Fatalf("%d data elements", len(datas))
	}
	der, err := base64.StdEncoding.DecodeString(datas[0])
	if err != nil || !bytes.Equal(der, served.Anchor.Raw) {
		t.Error("profile payload is not the CA")
	}
	for _, want := range []string{"com.apple.security.root", "<key>PayloadType</key>", "Configuration"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("profile lacks %s", want)
		}
	}
	if !bytes.Equal(Profile(served.Anchor), body) {
		t.Error("profile not stable for one CA")
	}
}

func TestWebRoot(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>client</h1>"), 0o644)
	os.MkdirAll(filepath.Join(root, "assets"), 0o755)
	os.WriteFile(filepath.Join(root, "assets", "app.js"), []byte("console.log(1)"), 0o644)
	os.WriteFile(filepath.Join(root, "assets", "app.wasm"), []byte("\x00asm"), 0o644)
	os.MkdirAll(filepath.Join(root, "sub"), 0o755)
	os.WriteFile(filepath.Join(root, "sub", "index.html"), []byte("sub"), 0o644)
	secret := filepath.Join(t.TempDir(), "secret.txt")
	os.WriteFile(secret, []byte("secret"), 0o644)
	os.Symlink(secret, filepath.Join(root, "escape.txt"))

	_, _, srv := newPortal(t, root)
	cases := []struct {
		path, body, ctype, cache string
		status                   int
	}{
		{"/app/", "<h1>client</h1>", "text/html; charset=utf-8", "no-cache", 200},
		{"/app/assets/app.js", "console.log(1)", "text/javascript; charset=utf-8", "public, max-age=3600", 200},
		{"/app/assets/app.wasm", "\x00asm", "application/wasm", "public, max-age=3600", 200},
		{"/app/sub/", "sub", "text/html; charset=utf-8", "no-cache", 200},
		{"/app/assets/", "", "", "", 404},                // no index.html: never listed
		{"/app/escape.txt", "", "", "", 404},             // a symlink out of the root
		{"/app/../../../../etc/passwd", "", "", "", 404}, // cleaned, stays inside
		{"/app/nope.js", "", "", "", 404},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		req.URL.Opaque = c.path // keep the dots as sent
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.status)
			continue
		}
		if c.status != 200 {
			if strings.Contains(string(body), "secret") || strings.Contains(string(body), "root:") {
				t.Errorf("%s leaked %q", c.path, body)
			}
			continue
		}
		if string(body) != c.body || resp.Header.Get("Content-Type") != c.ctype || resp.Header.Get("Cache-Control") != c.cache {
			t.Errorf("%s: %q %q %q", c.path, body, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
		}
	}
	// /app redirects to /app/.
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(srv.URL + "/app")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/app/" {
		t.Errorf("/app: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Routing by path has no single runtime: the page and the status say how
// runtimes are chosen, which are checked, and each checked one's state,
// instead of a made-up "up".
func TestRoutingStatusIsHonest(t *testing.T) {
	m, err := certs.NewManager(certs.Options{Dir: t.TempDir(), Names: []string{"localhost"}, Label: "box", Mode: certs.ModeLocalCA})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	var routes []Backend
	p, err := New(Options{Version: "v-test", Certificate: m.Current, Routes: func() []Backend { return routes }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()

	_, body := get(t, srv.URL+"/status.json")
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Backend != nil || st.Routing == nil || !strings.Contains(st.Routing.Checked, "no runtime is health-checked") {
		t.Errorf("without ROUTE_CHECK: %s", body)
	}
	routes = []Backend{{Address: "10.0.3.17:49100", Up: true, State: "up", Since: since},
		{Address: "10.0.3.18:49100", State: "down", Since: since}}
	_, body = get(t, srv.URL+"/status.json")
	st = Status{}
	json.Unmarshal(body, &st)
	if st.Backend != nil || len(st.RoutedBackends) != 2 || st.RoutedBackends[1].Up || !strings.Contains(st.Routing.Checked, "the 2 runtimes on ROUTE_CHECK") {
		t.Errorf("with ROUTE_CHECK: %s", body)
	}
	_, page := get(t, srv.URL+"/")
	for _, want := range []string{"Routing by path", "10.0.3.18:49100</span> down", "the 2 runtimes on ROUTE_CHECK are health-checked"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(string(page), "CloudXR runtime is up") {
		t.Error("page claims a single runtime is up")
	}
}

// With authentication on, a caller without an accepted credential learns
// whether the runtime is up, not where it is.
func TestPrivateStatusWithholdsTheBackend(t *testing.T) {
	m, err := certs.NewManager(certs.Options{Dir: t.TempDir(), Names: []string{"localhost"}, Label: "box", Mode: certs.ModeLocalCA})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Private: true, TokenParam: "token", TokenCookie: "cxr_token", Version: "v-test", Certificate: m.Current,
		Backend: func() Backend { return Backend{Address: "10.0.0.9:49100", Up: true, State: "up"} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ctx      context.Context
		revealed bool
	}{{context.Background(), false}, {auth.WithAuthenticated(context.Background()), true}} {
		for _, path := range []string{"/status.json", "/"} {
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil).WithContext(c.ctx))
			body := rec.Body.String()
			if strings.Contains(body, "10.0.0.9") != c.revealed {
				t.Errorf("%s, authenticated %v: address shown %v", path, c.revealed, !c.revealed)
			}
			if path == "/status.json" && !strings.Contains(body, `"up": true`) {
				t.Errorf("%s: the runtime's state is hidden too: %s", path, body)
			}
			// Either way the visitor is told a token is needed, and
			// where a client sends it (issue 20).
			wants := map[string][]string{
				"/status.json": {`"required": true`, `"query_parameter": "token"`, `"cookie": "cxr_token"`, fmt.Sprintf(`"accepted": %v`, c.revealed)},
				"/":            {"signalingQueryParameters: { token: &lt;token&gt; }", "Authorization: Bearer &lt;token&gt;", "cxr_token"},
			}
			for _, w := range wants[path] {
				if !strings.Contains(body, w) {
					t.Errorf("%s, authenticated %v: %q missing", path, c.revealed, w)
				}
			}
			if path == "/" && strings.Contains(body, "This proxy requires a token.") == c.revealed {
				t.Errorf("/, authenticated %v: the notice is wrong", c.revealed)
			}
		}
	}
}

// An ACME certificate is publicly trusted: the page says so and shows no
// trust steps. Before the CA's first certificate (none in service) the
// status says so and the downloads answer 503.
func TestACMECertificatePage(t *testing.T) {
	m, err := certs.NewManager(certs.Options{Dir: t.TempDir(), Names: []string{"localhost"}, Label: "box", Mode: certs.ModeLocalCA})
	if err != nil {
		t.Fatal(err)
	}
	acme := *m.Current()
	acme.Mode, acme.Source = certs.ModeACME, "ACME CA https://ca.example/directory"
	var current atomic.Pointer[certs.Served]
	p, err := New(Options{Version: "v-test", Certificate: current.Load})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)

	resp, body := get(t, srv.URL+"/status.json")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"source": "none yet"`) {
		t.Errorf("status before a certificate: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, srv.URL+"/ca.crt"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ca.crt before a certificate: %d", resp.StatusCode)
	}

	current.Store(&acme)
	_, page := get(t, srv.URL+"/")
	if !strings.Contains(string(page), `id="publicly-trusted"`) || strings.Contains(string(page), "Trust it on your device") ||
		strings.Contains(string(page), "certutil") {
		t.Error("the page shows trust steps for a publicly trusted certificate")
	}
	if _, body := get(t, srv.URL+"/status.json"); !strings.Contains(string(body), `"mode": "acme"`) {
		t.Errorf("status: %s", body)
	}
}

// The pool on the page and in the status: runtimes, states and counts for
// everyone; addresses, problems and users only for an authenticated caller
// (a user's identity is a token subject, never shown to a visitor).
func TestPoolStatus(t *testing.T) {
	m, err := certs.NewManager(certs.Options{Dir: t.TempDir(), Names: []string{"localhost"}, Label: "box", Mode: certs.ModeLocalCA})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	p, err := New(Options{Private: true, TokenParam: "token", TokenCookie: "cxr_token", Version: "v-test", Certificate: m.Current,
		Pool: func() (PoolStatus, error) {
			return PoolStatus{Claims: "kubernetes", Grace: time.Minute, Runtimes: []PoolRuntime{
				{Address: "10.0.3.1:49100", Up: true, State: "busy", Since: since, Health: "up", User: "alice@lab"},
				{Address: "10.0.3.2:49100", Up: true, State: "free", Health: "up"},
				{Address: "10.0.3.3:49100", Up: false, State: "down", Health: "down", Problem: "an HTTP server that is not the runtime"},
			}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ctx      context.Context
		revealed bool
	}{{context.Background(), false}, {auth.WithAuthenticated(context.Background()), true}} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status.json", nil).WithContext(c.ctx))
		var st Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.Pool == nil || len(st.Pool.Runtimes) != 3 || st.Pool.Counts["busy"] != 1 || st.Pool.Counts["free"] != 1 || st.Pool.Counts["down"] != 1 ||
			st.Pool.GraceText != "1m0s" || st.Pool.Claims != "kubernetes" {
			t.Fatalf("authenticated %v: pool %+v", c.revealed, st.Pool)
		}
		for _, r := range []string{rec.Body.String(), page(t, p, c.ctx)} {
			for _, secret := range []string{"10.0.3.1", "alice@lab", "not the runtime"} {
				if strings.Contains(r, secret) != c.revealed {
					t.Errorf("authenticated %v: %q shown %v", c.revealed, secret, !c.revealed)
				}
			}
			if !strings.Contains(r, "busy") {
				t.Errorf("authenticated %v: the states are hidden too", c.revealed)
			}
		}
	}
}

func page(t *testing.T, p *Portal, ctx context.Context) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	return rec.Body.String()
}
