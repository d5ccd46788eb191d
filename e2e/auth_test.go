//go:build e2e

package e2e

// Authentication through the binary: an OpenID provider reached over HTTPS
// with a private CA (SSL_CERT_FILE), started after the proxy; a tokens file
// reloaded on SIGHUP.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/oidctest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// tlsProvider is an OpenID provider reached over HTTPS, as a real one is,
// with its own CA in caFile (the proxy's SSL_CERT_FILE); not yet serving.
func tlsProvider(t *testing.T) (provider *oidctest.Provider, caFile string) {
	t.Helper()
	g, err := certs.GenerateSelfSigned([]string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := certs.ParseKeyPair(g.PEM())
	caFile = filepath.Join(t.TempDir(), "provider-ca.pem")
	os.WriteFile(caFile, g.CertPEM, 0o644)
	provider, err = oidctest.NewTLS(&kp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(provider.Stop)
	return provider, caFile
}

func TestOIDCThroughTheBinary(t *testing.T) {
	provider, caFile := tlsProvider(t)

	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"AUTH_OIDC_ISSUER="+provider.Issuer, "AUTH_AUDIENCE="+oidctest.ClientID, "SSL_CERT_FILE="+caFile)
	addr := p.addr()
	if l := p.waitLog("authentication on: every session needs a JWT signed by the identity provider"); l["issuer"] != provider.Issuer || l["audience"] != oidctest.ClientID {
		t.Errorf("start line %v", l)
	}
	admin := "http://" + p.waitLog("admin listener")["address"].(string)
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))

	// The provider is not up yet: the proxy runs, says why it is not ready,
	// and answers upgrades 503.
	p.waitLog("authentication not ready: upgrades get 503 until the provider's keys load")
	if code, body := httpStatus(t, admin+"/readyz"); code != 503 || !strings.Contains(body, "authentication not ready") {
		t.Errorf("/readyz before the provider: %d %q", code, body)
	}
	if _, err := wstest.Dial(addr, "/sign_in?token=x.y.z", trust); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("upgrade before the provider: %v, want 503", err)
	}

	if err := provider.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitLine(40*time.Second, "keys loaded", func(l map[string]any) bool { return l["msg"] == "authentication ready: the provider's keys loaded" })
	waitFor(t, 10*time.Second, "ready", func() bool { code, _ := httpStatus(t, admin+"/readyz"); return code == 200 })

	tok, err := provider.Token() // a real client-credentials grant, over HTTPS
	if err != nil {
		t.Fatal(err)
	}
	c, err := wstest.Dial(addr, "/sign_in?peer_id=1&token="+tok, trust)
	if err != nil {
		t.Fatalf("with a token from the provider: %v", err)
	}
	if err := c.Echo("signed in", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := b.Requests()[0].Target; got != "/sign_in?peer_id=1" {
		t.Errorf("the runtime got %q", got)
	}
	if strings.Contains(p.output(), tok) {
		t.Error("the token is in the proxy's log")
	}
	if _, err := wstest.Dial(addr, "/sign_in?peer_id=2", trust); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without a token: %v, want 401", err)
	}
	if l := p.waitLine(10*time.Second, "the refusal's session line", func(l map[string]any) bool {
		return l["msg"] == "session ended" && l["path"] == "/sign_in?peer_id=2"
	}); l["reason"] != "unauthorized: missing" {
		t.Errorf("refusal logged as %v", l["reason"])
	}
	if m := scrape(t, admin); m[`cloudxr_wss_proxy_auth_refusals_total{why="missing"}`] != 1 {
		t.Errorf("refusals metric: %v", m[`cloudxr_wss_proxy_auth_refusals_total{why="missing"}`])
	}

	checkStatusWithheld(t, addr, trust, tok, b.Addr())
}

// checkStatusWithheld: the status page withholds the backend's address
// from a caller without a credential, and shows it to one with.
func checkStatusWithheld(t *testing.T, addr string, trust *tls.Config, tok, backend string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}}
	defer hc.CloseIdleConnections()
	for _, c := range []struct {
		header string
		shown  bool
	}{{"", false}, {"Bearer " + tok, true}} {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/status.json", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), backend) != c.shown {
			t.Errorf("status.json with %q shows the backend: %v", c.header, !c.shown)
		}
	}
}

func TestTokensFileThroughTheBinary(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("# lab headsets\nquest-a\n"), 0o600)
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"AUTH_TOKENS_FILE="+tokens, "CERT_WATCH_INTERVAL=1h")
	addr := p.addr()
	// The start says that authentication is on, how, and with how many
	// tokens (issue 20).
	if l := p.waitLog("authentication on: every session needs a token listed in the tokens file"); l["tokens"] != float64(1) || l["path"] != tokens {
		t.Errorf("start line %v", l)
	}
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))
	dial := func(tok string) error {
		c, err := wstest.Dial(addr, "/sign_in", trust, "Authorization: Bearer "+tok)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("quest-a"); err != nil {
		t.Fatalf("a listed token: %v", err)
	}
	if err := dial("quest-b"); err == nil {
		t.Fatal("an unlisted token accepted")
	}
	os.WriteFile(tokens, []byte("quest-b\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP) // an upgrade in place: the new process reads the file
	p.waitLog("the previous process has exited")
	if err := dial("quest-b"); err != nil {
		t.Errorf("after SIGHUP, the new token: %v", err)
	}
	if err := dial("quest-a"); err == nil {
		t.Error("after SIGHUP, the removed token still accepted")
	}
}

// A tokens file the service's user may not read (root's, mode 600, as a
// lab makes it with sudo) stops the program at start with a line naming
// the setting and the user who must be able to read it (issue 20).
func TestTokensFileUnreadableByTheService(t *testing.T) {
	// A directory every user may enter (t.TempDir's parents are root's
	// only), holding the binary and the root-owned tokens file.
	open, err := os.MkdirTemp("", "cloudxr-wss-proxy-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	os.Chmod(open, 0o755)
	tokens := filepath.Join(open, "tokens")
	os.WriteFile(tokens, []byte("quest-a\n"), 0o600) // owned by root: the test runs as root
	bin := filepath.Join(open, "cloudxr-wss-proxy")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bin, data, 0o755)
	cmd := exec.Command(bin)
	cmd.Env = []string{"CERT_DIR=" + t.TempDir(), "AUTH_TOKENS_FILE=" + tokens}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}} // nobody
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	want := `invalid AUTH_TOKENS_FILE="` + tokens + `": this process (`
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), want) ||
		!strings.Contains(stderr.String(), "uid 65534) may not read it: make that user its owner") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
