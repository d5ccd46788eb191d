//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// Pebble, the ACME server the ACME tests order from, and the helpers that
// wait for a certificate it issued.

// pebble is a running Pebble with its DNS.
type pebble struct {
	dir        string // its directory URL
	minica     string // the PEM file Pebble's own HTTPS is signed by (ACME_CA_ROOTS)
	management string // its management API's address
	roots      *x509.CertPool
	log        *bytes.Buffer
	cmd        *exec.Cmd
}

// stop makes the CA unreachable.
func (p *pebble) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// pebbleTools builds Pebble and its challenge test server from the module's
// tool dependencies, once per test binary.
var pebbleTools = struct{ pebble, challtestsrv string }{}

func buildPebble(t *testing.T) {
	t.Helper()
	if pebbleTools.pebble != "" {
		return
	}
	dir := filepath.Dir(binary)
	for _, tool := range []struct{ pkg, out string }{
		{"github.com/letsencrypt/pebble/v2/cmd/pebble", "pebble"},
		{"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv", "pebble-challtestsrv"},
	} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, tool.out), tool.pkg).CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", tool.pkg, err, out)
		}
	}
	pebbleTools.pebble, pebbleTools.challtestsrv = filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
}

// pebbleSpec is where Pebble validates and how long its certificates last.
type pebbleSpec struct {
	tlsPort, httpPort int           // where it validates TLS-ALPN-01 and HTTP-01, on 127.0.0.1
	listenPort        int           // its ACME port; 0: a free one
	dns               string        // the DNS server it resolves through; "": pebble-challtestsrv (every name 127.0.0.1)
	validity          time.Duration // of its certificates; 0: 90 days
}

// startPebble runs Pebble as spec says.
func startPebble(t *testing.T, spec pebbleSpec) *pebble {
	t.Helper()
	buildPebble(t)
	if spec.dns == "" {
		spec.dns = fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
		chall := exec.Command(pebbleTools.challtestsrv, "-dnsserver", spec.dns,
			"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
		startBackground(t, chall, nil)
		waitDNS(t, spec.dns, "proxy.test")
	}
	if spec.validity == 0 {
		spec.validity = 90 * 24 * time.Hour
	}
	tlsPort, httpPort, listenPort, dns := spec.tlsPort, spec.httpPort, spec.listenPort, spec.dns
	src := filepath.Dir(filepath.Dir(filepath.Dir(pebbleMinica(t))))

	if listenPort == 0 {
		listenPort = freePort(t)
	}
	p := &pebble{
		dir:        fmt.Sprintf("https://localhost:%d/dir", listenPort),
		minica:     pebbleMinica(t),
		management: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		log:        &bytes.Buffer{},
	}
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", listenPort),
		"managementListenAddress": p.management,
		"certificate":             filepath.Join(src, "test/certs/localhost/cert.pem"),
		"privateKey":              filepath.Join(src, "test/certs/localhost/key.pem"),
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles":                map[string]any{"default": map[string]any{"description": "the tests'", "validityPeriod": int(spec.validity.Seconds())}},
	}}
	confPath := filepath.Join(t.TempDir(), "pebble.json")
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(confPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pebbleTools.pebble, "-config", confPath, "-dnsserver", dns)
	// No sleeps in validation, no nonces refused at random: Pebble's
	// defaults are meant to shake out clients, not to test a proxy.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	startBackground(t, cmd, p.log)
	p.cmd = cmd

	minica := trustPEM(t, p.minica)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: minica}, Timeout: 5 * time.Second}
	waitFor(t, 20*time.Second, "Pebble's root from its management API", func() bool {
		resp, err := client.Get("https://" + p.management + "/roots/0")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		p.roots = x509.NewCertPool()
		return resp.StatusCode == 200 && p.roots.AppendCertsFromPEM(body)
	})
	client.CloseIdleConnections()
	return p
}

// startBackground runs cmd until the test ends, its output in log.
func startBackground(t *testing.T, cmd *exec.Cmd, log *bytes.Buffer) {
	t.Helper()
	if log == nil {
		log = &bytes.Buffer{}
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s:\n%s", filepath.Base(cmd.Path), log.String())
		}
	})
}

// acmeEnv is the proxy's settings for Pebble.
func (p *pebble) acmeEnv(certDir string, tlsPort int, names string) []string {
	return []string{"CERT_MODE=acme", "CERT_DIR=" + certDir, "CERT_HOSTNAMES=" + names,
		"ACME_CA=" + p.dir, "ACME_CA_ROOTS=" + p.minica, "ACME_EMAIL=ops@proxy.test",
		fmt.Sprintf("PROXY_PORT=%d", tlsPort)}
}

// waitObtained waits for certmagic's line saying name's certificate was
// obtained.
func waitObtained(p *proc, name string, d time.Duration) {
	p.t.Helper()
	p.waitLine(d, "the certificate for "+name+" obtained", func(l map[string]any) bool {
		return l["msg"] == "certificate obtained successfully" && l["identifier"] == name
	})
}

// waitServed waits until addr serves a certificate for name that roots
// verify: certmagic logs an order's success a moment before the
// certificate is in its cache.
func waitServed(t *testing.T, addr, name string, roots *x509.CertPool) {
	t.Helper()
	waitFor(t, 10*time.Second, "a certificate for "+name+" served", func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// echoTrusting opens wss://name:port trusting only roots, checks the served
// chain names name, and echoes through the proxy.
func echoTrusting(t *testing.T, addr, name string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c, err := wstest.Dial(addr, "/sign_in?peer_id=1", &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("wss://%s via %s trusting only the ACME CA's root: %v", name, addr, err)
	}
	defer c.Close()
	if err := c.Echo("through an ACME certificate", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	leaf := c.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	if leaf.VerifyHostname(name) != nil {
		t.Errorf("served certificate names %v, want %s", leaf.DNSNames, name)
	}
	return leaf
}

func getBody(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// freeUDPPort returns a port free for both UDP and TCP on 127.0.0.1: a DNS
// server takes both.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		c.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// pebbleMinica is the PEM file Pebble's own HTTPS is signed by.
func pebbleMinica(t *testing.T) string {
	t.Helper()
	modDir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
	if err != nil {
		t.Fatalf("finding Pebble's module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(modDir)), "test/certs/pebble.minica.pem")
}
