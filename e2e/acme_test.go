//go:build e2e

package e2e

// CERT_MODE=acme against Pebble, the ACME test server Let's Encrypt
// publishes (a tool of this module, built here), with pebble-challtestsrv
// as its DNS: every name resolves to 127.0.0.1, where the proxy listens on
// the ports Pebble validates on. A client that trusts only Pebble's root
// (from Pebble's management API) checks the chain the proxy serves.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// TLS-ALPN-01 on the proxy's own port: the CA's validation handshakes are
// answered there and the certificate obtained is served, publicly trusted
// as far as Pebble's root goes; the page says so; a restart with the CA gone
// serves the stored certificate at once.
func TestACMETLSALPN(t *testing.T) {
	b := backend(t)
	tlsPort := freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: tlsPort, httpPort: freePort(t)})
	certDir := t.TempDir()
	env := append(pb.acmeEnv(certDir, tlsPort, "proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	p := startProc(t, env...)
	addr := p.addr()
	admin := p.waitLog("admin listener")["address"].(string)
	waitObtained(p, "proxy.test", 60*time.Second)
	if l := p.waitLog("trying to solve challenge"); l["challenge_type"] != "tls-alpn-01" {
		t.Errorf("challenge %v, want tls-alpn-01", l["challenge_type"])
	}
	waitServed(t, addr, "proxy.test", pb.roots)
	leaf := echoTrusting(t, addr, "proxy.test", pb.roots)

	// The page and the status say the certificate is publicly trusted.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "proxy.test", RootCAs: pb.roots}}}
	defer client.CloseIdleConnections()
	page := getBody(t, client, "https://"+addr+"/")
	if !strings.Contains(page, `id="publicly-trusted"`) || strings.Contains(page, "Trust it on your device") {
		t.Errorf("the page does not say the certificate is publicly trusted, or still shows trust steps")
	}
	if st := getBody(t, client, "https://"+addr+"/status.json"); !strings.Contains(st, `"mode": "acme"`) {
		t.Errorf("status.json: %s", st)
	}
	metrics := getBody(t, http.DefaultClient, "http://"+admin+"/metrics")
	if !strings.Contains(metrics, `cloudxr_wss_proxy_acme_orders_total{result="obtained"} 1`) {
		t.Errorf("no obtained order in the metrics")
	}
	// The validation's connections end as such (a session with no request
	// is logged at debug level only: the metric counts them).
	if !strings.Contains(metrics, `cloudxr_wss_proxy_sessions_total{outcome="acme challenge answered"}`) {
		t.Errorf("no session ended as an answered challenge in the metrics")
	}
	if code := p.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}

	// Restarted with the CA unreachable: the stored certificate is served.
	pb.stop()
	p2 := startProc(t, env...)
	addr2 := p2.addr()
	var again *x509.Certificate
	waitFor(t, 10*time.Second, "the stored certificate served with the CA down", func() bool {
		c, err := wstest.Dial(addr2, "/sign_in?peer_id=2", &tls.Config{ServerName: "proxy.test", RootCAs: pb.roots})
		if err != nil {
			return false
		}
		defer c.Close()
		again = c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		return c.Echo("stored", 5*time.Second) == nil
	})
	if !again.Equal(leaf) {
		t.Error("a different certificate after the restart")
	}
}

// HTTP-01 on ACME_HTTP_PORT: Pebble validates TLS-ALPN-01 on a port where
// nothing listens, so only HTTP-01 can succeed. The port redirects every
// other request to https://.
func TestACMEHTTP01(t *testing.T) {
	b := backend(t)
	tlsPort, httpPort := freePort(t), freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: freePort(t), httpPort: httpPort})
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "proxy.test,www.proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"BACKEND_HOST=127.0.0.1", fmt.Sprintf("ACME_HTTP_PORT=%d", httpPort))
	p := startProc(t, env...)
	addr := p.addr()
	for _, name := range []string{"proxy.test", "www.proxy.test"} {
		waitObtained(p, name, 90*time.Second)
	}
	p.waitLine(5*time.Second, "an HTTP-01 challenge answered", func(l map[string]any) bool {
		return l["msg"] == "served key authentication" && l["challenge"] == "http-01"
	})
	waitServed(t, addr, "proxy.test", pb.roots)
	waitServed(t, addr, "www.proxy.test", pb.roots)
	echoTrusting(t, addr, "proxy.test", pb.roots)
	echoTrusting(t, addr, "www.proxy.test", pb.roots)

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/app/?x=1", httpPort), nil)
	req.Host = "www.proxy.test"
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://www.proxy.test:%d/app/?x=1", tlsPort); resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// Settings CERT_MODE=acme cannot work with stop the program with exit 2
// and one line naming the variable.
func TestACMEBadSettings(t *testing.T) {
	withPEM := t.TempDir()
	if err := os.WriteFile(filepath.Join(withPEM, "server.pem"), []byte("not ours"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"CERT_MODE=acme"}, `invalid CERT_HOSTNAMES=""`},
		{[]string{"CERT_MODE=acme", "CERT_HOSTNAMES=xr.example.com", "ACME_DNS_PROVIDER=gandi"}, `invalid ACME_DNS_PROVIDER="gandi"`},
		{[]string{"CERT_MODE=acme", "CERT_HOSTNAMES=xr.example.com", "ACME_DNS_PROVIDER=cloudflare"}, `invalid CLOUDFLARE_API_TOKEN=""`},
		{[]string{"CERT_MODE=acme", "CERT_HOSTNAMES=xr.example.com", "ACME_DNS_PROVIDER=rfc2136", "RFC2136_SERVER=127.0.0.1"}, `invalid RFC2136_KEY_NAME=""`},
		{[]string{"CERT_MODE=acme", "CERT_HOSTNAMES=xr.example.com", "ACME_DNS_PROVIDER=route53", "HOME=" + t.TempDir(),
			"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent"}, `ACME_DNS_PROVIDER=route53: no AWS credentials`},
		{[]string{"CERT_MODE=acme", "CERT_HOSTNAMES=xr.example.com", "CERT_DIR=" + withPEM}, "CERT_MODE=acme: " + filepath.Join(withPEM, "server.pem") + " is your own certificate"},
	} {
		cmd := exec.Command(binary)
		cmd.Env = append([]string{"CERT_DIR=" + t.TempDir(), "ADMIN_ADDRESS=off", "PROXY_PORT=0", "LISTEN_ADDRESS=127.0.0.1"}, tc.env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("%v: exit %d (%v), want 2\n%s", tc.env, code, err, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q, want a line with %s", tc.env, stderr.String(), tc.want)
		}
	}
}

// The CA down at start and no certificate stored: the proxy runs, /readyz
// says why it is not ready, and once the CA is back the certificate comes
// on the next try (certmagic's backoff: the first retry after a minute).
func TestACMECADownAtStart(t *testing.T) {
	b := backend(t)
	tlsPort, caPort := freePort(t), freePort(t)
	env := append((&pebble{dir: fmt.Sprintf("https://localhost:%d/dir", caPort), minica: pebbleMinica(t)}).acmeEnv(t.TempDir(), tlsPort, "proxy.test"),
		fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	p := startProc(t, env...)
	p.addr()
	admin := p.waitLog("admin listener")["address"].(string)
	p.waitLine(30*time.Second, "the failed order", func(l map[string]any) bool {
		return l["msg"] == "the ACME CA did not issue a certificate; retrying with backoff" && l["name"] == "proxy.test"
	})
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no certificate yet from https://localhost:") ||
		!strings.Contains(string(body), "connection refused") {
		t.Errorf("/readyz with the CA down: %d %q", resp.StatusCode, body)
	}

	pb := startPebble(t, pebbleSpec{tlsPort: tlsPort, httpPort: freePort(t), listenPort: caPort})
	waitObtained(p, "proxy.test", 150*time.Second)
	waitFor(t, 10*time.Second, "ready", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	waitServed(t, p.addr(), "proxy.test", pb.roots)
	echoTrusting(t, p.addr(), "proxy.test", pb.roots)
}

// DNS-01 over RFC 2136 against BIND: the proxy writes the challenge's TXT
// record with a TSIG-signed update, Pebble resolves it through the same
// server, and a wildcard (which only DNS-01 can validate) is issued beside
// the zone's own name.
func TestACMEDNS01RFC2136(t *testing.T) {
	b := backend(t)
	ns := startBind(t, "proxy.test")
	tlsPort := freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: freePort(t), httpPort: freePort(t), dns: ns.addr})
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "proxy.test,*.proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"BACKEND_HOST=127.0.0.1", "ACME_DNS_PROVIDER=rfc2136", "RFC2136_SERVER="+ns.addr,
		"RFC2136_KEY_NAME="+ns.keyName, "RFC2136_KEY="+ns.secret, "ACME_DNS_RESOLVERS="+ns.addr)
	p := startProc(t, env...)
	addr := p.addr()
	if l := p.waitLog("certificates from an ACME CA"); fmt.Sprint(l["challenges"]) != "[dns-01]" {
		t.Errorf("challenges %v, want only dns-01", l["challenges"])
	}
	for _, name := range []string{"proxy.test", "*.proxy.test"} {
		waitObtained(p, name, 120*time.Second)
	}
	if l := p.waitLog("trying to solve challenge"); l["challenge_type"] != "dns-01" {
		t.Errorf("challenge %v, want dns-01", l["challenge_type"])
	}
	if strings.Contains(p.output(), `"RFC2136_KEY":"`+ns.secret) || strings.Contains(p.output(), ns.secret) {
		t.Error("the TSIG secret is in the log")
	}
	waitServed(t, addr, "proxy.test", pb.roots)
	waitServed(t, addr, "gpu3.proxy.test", pb.roots)
	echoTrusting(t, addr, "proxy.test", pb.roots)
	echoTrusting(t, addr, "gpu3.proxy.test", pb.roots)
}

// A TSIG secret the DNS server does not accept: the order fails with a
// line that says the DNS server refused the update and names the settings
// to check, not only miekg/dns's "bad authentication".
func TestACMEDNS01WrongKey(t *testing.T) {
	b := backend(t)
	ns := startBind(t, "proxy.test")
	tlsPort := freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: freePort(t), httpPort: freePort(t), dns: ns.addr})
	wrong := base64.StdEncoding.EncodeToString([]byte("not the key bind was given, 32 b"))
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"BACKEND_HOST=127.0.0.1", "ACME_DNS_PROVIDER=rfc2136", "RFC2136_SERVER="+ns.addr,
		"RFC2136_KEY_NAME="+ns.keyName, "RFC2136_KEY="+wrong, "ACME_DNS_RESOLVERS="+ns.addr)
	p := startProc(t, env...)
	p.addr()
	l := p.waitLine(60*time.Second, "the refused update", func(l map[string]any) bool {
		return strings.HasPrefix(fmt.Sprint(l["msg"]), "the DNS server refused to write the DNS-01 challenge's record")
	})
	why := fmt.Sprint(l["error"])
	for _, want := range []string{"the DNS server refused the update (RFC2136_SERVER=" + ns.addr + ")", "RFC2136_KEY_NAME=" + ns.keyName, "RFC2136_KEY ", "bad authentication"} {
		if !strings.Contains(why, want) {
			t.Errorf("the error %q lacks %q", why, want)
		}
	}
	if strings.Contains(p.output(), wrong) {
		t.Error("the TSIG secret is in the log")
	}
}

// Renewal with certificates that live 40 seconds: the proxy renews by
// itself; a session opened before keeps echoing across the renewal, and a
// new session gets the new certificate.
func TestACMERenewal(t *testing.T) {
	b := backend(t)
	tlsPort := freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: tlsPort, httpPort: freePort(t), validity: 40 * time.Second})
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"BACKEND_HOST=127.0.0.1", "ACME_RENEW_INTERVAL=1s")
	p := startProc(t, env...)
	addr := p.addr()
	waitObtained(p, "proxy.test", 60*time.Second)
	var first *x509.Certificate
	var before *wstest.Client
	waitFor(t, 10*time.Second, "a session with the first certificate", func() bool {
		c, err := wstest.Dial(addr, "/sign_in?peer_id=1", &tls.Config{ServerName: "proxy.test", RootCAs: pb.roots})
		if err != nil {
			return false
		}
		before, first = c, c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		return true
	})
	defer before.Close()
	p.waitLine(90*time.Second, "the renewal", func(l map[string]any) bool {
		return l["msg"] == "certificate renewed successfully" && l["identifier"] == "proxy.test"
	})
	if err := before.Echo("across the renewal", 5*time.Second); err != nil {
		t.Fatalf("the session opened before the renewal: %v", err)
	}
	waitFor(t, 10*time.Second, "a new session with the renewed certificate", func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "proxy.test", RootCAs: pb.roots})
		if err != nil {
			return false
		}
		leaf := c.ConnectionState().PeerCertificates[0]
		c.Close()
		return leaf.SerialNumber.Cmp(first.SerialNumber) != 0 && leaf.NotAfter.After(first.NotAfter)
	})
	echoTrusting(t, addr, "proxy.test", pb.roots)
	admin := p.waitLog("admin listener")["address"].(string)
	if m := getBody(t, http.DefaultClient, "http://"+admin+"/metrics"); !strings.Contains(m, `cloudxr_wss_proxy_acme_orders_total{result="renewed"}`) {
		t.Error("no renewed order in the metrics")
	}
}

// Real Chromium that trusts Pebble's root, as every browser trusts a public
// CA, opens the page and a same-origin client's WebSocket by name, with no
// exception clicked through.
func TestACMEChromium(t *testing.T) {
	b := backend(t)
	tlsPort := freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: tlsPort, httpPort: freePort(t)})
	web, home := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(web, "index.html"), []byte(clientPage), 0o644)
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"BACKEND_HOST=127.0.0.1", "WEB_ROOT="+web)
	p := startProc(t, env...)
	addr := p.addr()
	waitServed(t, addr, "proxy.test", pb.roots)

	root := filepath.Join(t.TempDir(), "pebble-root.pem")
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: trustPEM(t, pb.minica)}}).Get("https://" + pb.management + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	pemRoot, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := os.WriteFile(root, pemRoot, 0o644); err != nil {
		t.Fatal(err)
	}
	trustInNSS(t, home, root)
	ctx := newChromium(t, home, chromedp.Flag("host-resolver-rules", "MAP proxy.test 127.0.0.1"))
	origin := fmt.Sprintf("https://proxy.test:%d", tlsPort)
	if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	trusted, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('publicly-trusted') !== null`))
	if err != nil || !trusted {
		t.Errorf("the page does not say the certificate is publicly trusted (%v)", err)
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
	if result != "echo:hello from chromium;backend_up:true" {
		t.Fatalf("page reports %q", result)
	}
}

// Two replicas sharing one CERT_DIR (one volume) order the certificate
// once: certmagic's lock in the storage makes the second wait and load what
// the first obtained. Pebble validates on the first replica's port only;
// whichever replica orders, the challenge is in the shared storage.
func TestACMETwoReplicasOneOrder(t *testing.T) {
	b := backend(t)
	portA, portB := freePort(t), freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: portA, httpPort: freePort(t)})
	dir := t.TempDir()
	start := func(port int) *proc {
		return startProc(t, append(pb.acmeEnv(dir, port, "proxy.test"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")...)
	}
	a, bb := start(portA), start(portB)
	addrA, addrB := a.addr(), bb.addr()
	waitServed(t, addrA, "proxy.test", pb.roots)
	waitServed(t, addrB, "proxy.test", pb.roots)
	leafA := echoTrusting(t, addrA, "proxy.test", pb.roots)
	leafB := echoTrusting(t, addrB, "proxy.test", pb.roots)
	if !leafA.Equal(leafB) {
		t.Error("the replicas serve different certificates")
	}
	orders := 0
	for _, p := range []*proc{a, bb} {
		orders += strings.Count(p.output(), "certificate obtained successfully")
	}
	if orders != 1 {
		t.Errorf("%d certificates obtained for one name by two replicas sharing a volume, want 1", orders)
	}
}

// An IP address, where the CA issues certificates for one (Pebble does, as
// Let's Encrypt does on its short-lived profile): validated by HTTP-01 on
// the address itself, and served to a client that dials the address and
// sends no server name.
func TestACMEIPAddress(t *testing.T) {
	b := backend(t)
	tlsPort, httpPort := freePort(t), freePort(t)
	pb := startPebble(t, pebbleSpec{tlsPort: freePort(t), httpPort: httpPort})
	env := append(pb.acmeEnv(t.TempDir(), tlsPort, "127.0.0.1"), fmt.Sprintf("BACKEND_PORT=%d", b.Port()),
		"BACKEND_HOST=127.0.0.1", fmt.Sprintf("ACME_HTTP_PORT=%d", httpPort))
	p := startProc(t, env...)
	addr := p.addr()
	waitObtained(p, "127.0.0.1", 60*time.Second)
	waitServed(t, addr, "127.0.0.1", pb.roots)
	leaf := echoTrusting(t, addr, "127.0.0.1", pb.roots)
	if len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("IP addresses %v", leaf.IPAddresses)
	}
}
