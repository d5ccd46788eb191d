//go:build e2e

package e2e

// The certificate as users meet it through the binary: generated and
// reused, their own read-only, reloaded, swapped as a Kubernetes Secret.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/certtest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func TestGeneratedCertificateReused(t *testing.T) {
	dir := t.TempDir()
	p1 := startProc(t, "CERT_DIR="+dir, "CERT_HOSTNAMES=vr.lab.example,10.1.2.3")
	fp := p1.waitLog("generated a certificate")["sha256"]
	p1.addr()
	p1.stop()
	before, _ := os.Stat(filepath.Join(dir, "server.pem"))

	p2 := startProc(t, "CERT_DIR="+dir)
	loaded := p2.waitLog("reusing the certificate generated earlier")
	if loaded["sha256"] != fp {
		t.Fatalf("second start serves %v, first generated %v", loaded["sha256"], fp)
	}
	after, _ := os.Stat(filepath.Join(dir, "server.pem"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("server.pem rewritten on the second start")
	}
	// The served certificate is the one on disk, with the extra names.
	conn, err := tls.Dial("tcp", p2.addr(), trustPEM(t, filepath.Join(dir, "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	if certs.Fingerprint(leaf) != fp {
		t.Error("served certificate differs")
	}
	if err := leaf.VerifyHostname("vr.lab.example"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("10.1.2.3"); err != nil {
		t.Error(err)
	}
}

func TestUserCertificateReadOnly(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "user cert"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	os.Mkdir(dir, 0o755)
	// Key first, then certificate, PKCS#1: an order and format HAProxy takes.
	data := append(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	path := filepath.Join(dir, "server.pem")
	os.WriteFile(path, data, 0o444)
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	before, _ := os.Stat(path)

	p := startProc(t, "CERT_DIR="+dir)
	p.waitLog("loaded your certificate; it is only read, never changed")
	pool := x509.NewCertPool()
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	conn, err := tls.Dial("tcp", p.addr(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if !bytes.Equal(conn.ConnectionState().PeerCertificates[0].Raw, der) {
		t.Error("served certificate is not the user's")
	}
	p.stop()
	after, _ := os.Stat(path)
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, data) || !after.ModTime().Equal(before.ModTime()) || after.Mode() != before.Mode() {
		t.Error("the user's server.pem was modified")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files added beside the user's certificate: %v", entries)
	}
}

func TestCertDirNotWritable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs the binary as an unprivileged user and needs root to do so")
	}
	dir := filepath.Join(t.TempDir(), "certs")
	os.Mkdir(dir, 0o755) // owned by root: nobody cannot write here
	for d := filepath.Dir(dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // but can look inside
	}
	cmd := exec.Command(binary)
	cmd.Env = []string{"CERT_DIR=" + dir, "PROXY_PORT=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "CERT_DIR "+dir) || !strings.Contains(stderr.String(), "not writable") {
		t.Errorf("message %q does not say CERT_DIR is not writable", stderr.String())
	}
}

func TestReloadKeepsOpenSessions(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	writePEM := func(cn string) (*x509.CertPool, string) {
		g, err := certs.GenerateSelfSigned([]string{"localhost", cn}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, ".new.pem")
		os.WriteFile(tmp, g.PEM(), 0o600)
		os.Rename(tmp, filepath.Join(dir, "server.pem")) // how editors and cert tools replace files
		kp, _ := certs.ParseKeyPair(g.PEM())
		pool := x509.NewCertPool()
		pool.AddCert(kp.Leaf)
		return pool, certs.Fingerprint(kp.Leaf)
	}
	pool1, _ := writePEM("first.example")
	p := startProc(t, "CERT_DIR="+dir, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1", "CERT_WATCH_INTERVAL=1h")
	addr := p.addr()
	open, err := wstest.Dial(addr, "/open", &tls.Config{RootCAs: pool1, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Conn.Close()

	// A broken file: the new process an upgrade starts refuses it, and
	// this one keeps the old certificate.
	os.WriteFile(filepath.Join(dir, "server.pem"), []byte("garbage"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("SIGHUP: upgrade in place failed")
	p.waitLog("the certificate files changed but cannot be used; still serving the current certificate")
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool1, ServerName: "localhost"}); err != nil {
		t.Fatalf("old certificate not served after a broken file: %v", err)
	} else {
		c.Close()
	}

	// A good one: the new process serves it; the open session stays in
	// the old one.
	pool2, fp2 := writePEM("second.example")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("took over from the previous process: it finishes its open sessions")
	if l := p.waitLine(10*time.Second, "new process's certificate", func(l map[string]any) bool { return l["sha256"] == fp2 }); l == nil {
		t.Fatal("the new certificate is not logged")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool2, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("new handshakes do not get the new certificate: %v", err)
	}
	c.Close()
	if err := open.Echo("still here", 5*time.Second); err != nil {
		t.Fatalf("open session broken by the reload: %v", err)
	}
}

func TestUncoveredAddressLogged(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "LISTEN_ADDRESS=")
	_, port, _ := net.SplitHostPort(p.addr())
	// 127.0.0.5 is not in the certificate; a client dialing an IP sends no SNI.
	c, err := tls.Dial("tcp", "127.0.0.5:"+port, &tls.Config{RootCAs: trustPEM(t, filepath.Join(dir, "ca.crt")).RootCAs})
	if err == nil {
		c.Close()
		t.Fatal("a client verified the certificate for an address it lacks")
	}
	l := p.waitLog("a client used a name the certificate does not cover")
	if l["name"] != "127.0.0.5" || !strings.Contains(fmt.Sprint(l["fix"]), "CERT_HOSTNAMES") {
		t.Errorf("log %v", l)
	}
	p.waitLog("TLS handshake failed")
}

func TestSecretSymlinkSwapKeepsOpenSessions(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	secret := func(version, cn string) *tls.Config {
		g, err := certs.GenerateSelfSigned([]string{"localhost", cn}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := certtest.WriteSecret(dir, version, g.CertPEM, g.KeyPEM); err != nil {
			t.Fatal(err)
		}
		kp, _ := certs.ParseKeyPair(g.PEM())
		pool := x509.NewCertPool()
		pool.AddCert(kp.Leaf)
		return &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	v1 := secret("v1", "v1.example")
	p := startProc(t, "CERT_DIR="+dir, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1", "CERT_WATCH_INTERVAL=50ms")
	if l := p.waitLog("loaded your certificate; it is only read, never changed"); l["source"] != "tls.crt and tls.key" {
		t.Fatalf("source %v", l["source"])
	}
	open, err := wstest.Dial(p.addr(), "/open", v1)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Conn.Close()

	v2 := secret("v2", "v2.example")
	p.waitLog("certificate reloaded") // seen by polling, no signal
	c, err := tls.Dial("tcp", p.addr(), v2)
	if err != nil {
		t.Fatalf("new handshakes do not get the swapped certificate: %v", err)
	}
	c.Close()
	if err := open.Echo("after the swap", 5*time.Second); err != nil {
		t.Fatalf("open session broken by the swap: %v", err)
	}
}
