//go:build e2e

package e2e

// These tests build the real binary and run it as a user would, on
// loopback ports, in front of the test echo backend.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/certtest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

var binary string

func TestMain(m *testing.M) {
	// The tests run from the repository root, as a user would: the
	// binary, the Dockerfile, scripts/ and make are where they expect.
	if err := os.Chdir(".."); err != nil {
		panic(err)
	}
	if _, err := os.Stat("go.mod"); err != nil {
		panic("e2e: the parent directory is not the repository root: " + err.Error())
	}
	dir, err := os.MkdirTemp("", "cxp-bin")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // runnable by the unprivileged user in TestCertDirNotWritable
	binary = filepath.Join(dir, "cloudxr-wss-proxy")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// No goroutine of the tests (log readers, clients, backends) outlives them.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// proc is a running proxy whose JSON log lines are collected.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	done  chan struct{}
}

func startProc(t *testing.T, env ...string) *proc {
	t.Helper()
	return startProcCmd(t, exec.Command(binary), env...)
}

// startProcCmd runs cmd with the tests' settings and env on top; a bare
// "KEY" in env (no "=") leaves KEY unset, at the proxy's own default.
func startProcCmd(t *testing.T, cmd *exec.Cmd, env ...string) *proc {
	t.Helper()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LOG_FORMAT=json", "LISTEN_ADDRESS=127.0.0.1", "PROXY_PORT=0",
		"HEALTH_CHECK_INTERVAL=100", "ADMIN_ADDRESS=127.0.0.1:0"}
	for _, kv := range env {
		if strings.Contains(kv, "=") {
			cmd.Env = append(cmd.Env, kv)
			continue
		}
		cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, kv+"=") })
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			json.Unmarshal(sc.Bytes(), &m)
			p.mu.Lock()
			p.raw.Write(append(sc.Bytes(), '\n'))
			if m != nil {
				p.lines = append(p.lines, m)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		cmd.Wait()
		if t.Failed() {
			t.Logf("proxy log:\n%s", p.failureLog())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// failureLog is what a failed test prints of the proxy's log: all of it
// when short; else its warnings and errors and its last lines, with the
// whole log saved to a file, so that a long log does not push the test's
// own failure out of sight in CI's output.
func (p *proc) failureLog() string {
	all := p.output()
	lines := strings.SplitAfter(all, "\n")
	const keep = 40
	if len(lines) <= 2*keep {
		return all
	}
	var b strings.Builder
	f, err := os.CreateTemp("", "cloudxr-wss-proxy-"+strings.ReplaceAll(p.t.Name(), "/", "-")+"-*.log")
	if err == nil {
		f.WriteString(all)
		f.Close()
		fmt.Fprintf(&b, "(%d lines, all in %s)\n", len(lines), f.Name())
	}
	n := 0
	for _, l := range lines {
		if !strings.Contains(l, `"level":"info"`) && !strings.Contains(l, `"level":"debug"`) {
			if n++; n <= keep {
				b.WriteString(l)
			}
		}
	}
	fmt.Fprintf(&b, "(%d warnings and errors above, at most %d shown; the last %d lines:)\n", n, keep, keep)
	for _, l := range lines[len(lines)-keep:] {
		b.WriteString(l)
	}
	return b.String()
}

// waitLog returns the first log line with message msg.
func (p *proc) waitLog(msg string) map[string]any {
	p.t.Helper()
	return p.waitLine(10*time.Second, fmt.Sprintf("%q log line", msg), func(l map[string]any) bool { return l["msg"] == msg })
}

// waitLine returns the first log line that match accepts, waiting up to d.
func (p *proc) waitLine(d time.Duration, what string, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		for _, l := range p.lines {
			if match(l) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			p.t.Fatalf("proxy exited before the %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.t.Fatalf("no %s within %v", what, d)
	return nil
}

func (p *proc) addr() string { return p.waitLog("listening")["address"].(string) }

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop() int {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

func trustPEM(t *testing.T, path string) *tls.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("no certificate in " + path)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func backend(t *testing.T) *wstest.Backend {
	b, err := wstest.StartBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestRunEchoAndGracefulStop(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	start := p.waitLog("starting")
	if start["BACKEND_PORT"] != fmt.Sprint(b.Port()) || start["TUNNEL_TIMEOUT"] != "1h0m0s" {
		t.Errorf("effective configuration not logged: %v", start)
	}
	gen := p.waitLog("generated a certificate")
	if gen["sha256"] == "" {
		t.Error("fingerprint not logged")
	}
	c, err := wstest.Dial(p.addr(), "/sign_in?peer_id=7", trustPEM(t, filepath.Join(dir, "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Echo("through the binary", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.waitLog("session ended")
	if code := p.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	p.waitLog("stopped")
}

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

// Routed runtimes on ROUTE_CHECK are checked like the default backend: the
// status page lists them, a marked-down one gets 503 at once and its
// sessions are closed, while an unchecked runtime that is not there is 502.
func TestRoutedBackendsChecked(t *testing.T) {
	b := backend(t)
	gone := freePort(t)
	unchecked := freePort(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "ROUTE_BY_PATH=true", "ROUTE_ALLOW=127.0.0.0/8", "BACKEND_PORT=1",
		"HEALTH_CHECK_FALL=1", fmt.Sprintf("ROUTE_CHECK=127.0.0.1:%d, 127.0.0.1:%d", b.Port(), gone))
	addr := p.addr()
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: trust}}
	states := func() map[string]string { return routedStates(t, hc, addr) }
	live, dead := b.Addr(), fmt.Sprintf("127.0.0.1:%d", gone)
	waitFor(t, 10*time.Second, "both routed runtimes checked", func() bool {
		m := states()
		return m[live] == "up" && m[dead] == "down"
	})
	adminURL := "http://" + p.waitLog("admin listener")["address"].(string)
	if code, body := httpStatus(t, adminURL+"/readyz"); code != 200 || !strings.Contains(body, "routing by path; 1 of 2 checked runtimes up") {
		t.Errorf("/readyz in routing mode: %d %q", code, body)
	}
	metrics := scrape(t, adminURL)
	if metrics[fmt.Sprintf(`cloudxr_wss_proxy_backend_up{backend="%s"}`, live)] != 1 ||
		metrics[fmt.Sprintf(`cloudxr_wss_proxy_backend_up{backend="%s"}`, dead)] != 0 {
		t.Errorf("backend_up per routed runtime: %v", metrics)
	}

	status := func(target string) int { return upgradeStatus(t, addr, trust, target) }
	if got := status("/" + dead + "/sign_in"); got != http.StatusServiceUnavailable {
		t.Errorf("checked runtime marked down: %d, want 503", got)
	}
	if got := status(fmt.Sprintf("/127.0.0.1:%d/sign_in", unchecked)); got != http.StatusBadGateway {
		t.Errorf("unchecked runtime not there: %d, want 502", got)
	}

	// A session to the live runtime ends when its checks mark it down,
	// though its own connection is still open.
	c, err := wstest.Dial(addr, "/"+live+"/sign_in", trust)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Echo("before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	b.StopListening()
	closed := p.waitLog("backend marked down: closing its sessions")
	if closed["backend"] != live || closed["sessions"] != float64(1) {
		t.Errorf("closing line: %v", closed)
	}
	if err := c.Echo("after", 5*time.Second); err == nil {
		t.Error("the session outlived its runtime's mark-down")
	}
}

// routedStates reads /status.json in routing mode: each checked runtime's
// state by address. It also checks that the status claims no single
// backend and says what is checked.
func routedStates(t *testing.T, hc *http.Client, addr string) map[string]string {
	t.Helper()
	resp, err := hc.Get("https://" + addr + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Backend *struct{ Up bool }
		Routing *struct{ Checked string }
		Routed  []struct{ Address, State string } `json:"routed_backends"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	if st.Backend != nil || st.Routing == nil || !strings.Contains(st.Routing.Checked, "ROUTE_CHECK") {
		t.Errorf("status in routing mode: backend %+v, routing %+v", st.Backend, st.Routing)
	}
	m := map[string]string{}
	for _, r := range st.Routed {
		m[r.Address] = r.State
	}
	return m
}

// upgradeStatus sends an upgrade for target and returns the status it
// gets, checking that the answer carries the header set.
func upgradeStatus(t *testing.T, addr string, trust *tls.Config, target string) int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, trust)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, wstest.UpgradeRequest("localhost", target))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("%s: %d without the header set", target, resp.StatusCode)
	}
	return resp.StatusCode
}

func TestInvalidConfiguration(t *testing.T) {
	cases := []struct{ env, want string }{
		{"BACKEND_PORT=abc", `BACKEND_PORT="abc"`},
		{"PROXY_PORT=70000", `PROXY_PORT="70000"`},
		{"HEALTH_CHECK_RISE=0", `HEALTH_CHECK_RISE="0"`},
		{"HEALTH_CHECK_INTERVAL=2 weeks", `HEALTH_CHECK_INTERVAL="2 weeks"`},
		{"ROUTE_CHECK=10.0.3.17", `ROUTE_CHECK="10.0.3.17"`},
		{"ROUTE_BY_PATH=true;ROUTE_ALLOW=10.0.3.0/24;ROUTE_CHECK=10.0.3.17,10.0.4.1", `invalid ROUTE_CHECK="10.0.3.17,10.0.4.1": 10.0.4.1 is not on the routing allow-list`},
		{"ALLOWED_ORIGINS=app.example.com", `invalid ALLOWED_ORIGINS="app.example.com"`},
	}
	for _, tc := range cases {
		cmd := exec.Command(binary)
		// Several variables are separated by ";".
		cmd.Env = append(strings.Split(tc.env, ";"), "CERT_DIR="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("%s: exit %d (%v), want 2", tc.env, code, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
			t.Errorf("%s: stderr %q, want one line naming %s", tc.env, stderr.String(), tc.want)
		}
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

func TestHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"--help", "--version"} {
		out, err := exec.Command(binary, arg).CombinedOutput()
		if err != nil || len(out) == 0 {
			t.Errorf("%s: %v %q", arg, err, out)
		}
	}
}

func TestFirstVisitThroughTheProxy(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1")
	base := "https://" + strings.Replace(p.addr(), "127.0.0.1", "localhost", 1)
	cfg := trustPEM(t, filepath.Join(dir, "ca.crt"))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()

	resp, err := hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte("The certificate is accepted")) || resp.Header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Fatalf("home: %d %s", resp.StatusCode, page)
	}
	resp, err = hc.Get(base + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || st["backend"].(map[string]any)["address"] != fmt.Sprintf("127.0.0.1:%d", b.Port()) {
		t.Errorf("status: %v %v", resp.Header, st)
	}
	resp, err = hc.Get(base + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	onDisk, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if !bytes.Equal(got, onDisk) {
		t.Error("/ca.crt differs from CERT_DIR/ca.crt")
	}
	// Other paths still reach the runtime.
	resp, err = hc.Get(base + "/sign_in?peer_id=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "backend: GET /sign_in?peer_id=1\n" {
		t.Errorf("forwarded: %q", body)
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

	// A broken file: logged, the old certificate stays.
	os.WriteFile(filepath.Join(dir, "server.pem"), []byte("garbage"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog("the certificate files changed but cannot be used; still serving the current certificate")
	if c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool1, ServerName: "localhost"}); err != nil {
		t.Fatalf("old certificate not served after a broken file: %v", err)
	} else {
		c.Close()
	}

	pool2, fp2 := writePEM("second.example")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if l := p.waitLog("certificate reloaded"); l["sha256"] != fp2 {
		t.Fatalf("reloaded %v", l["sha256"])
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

func TestRoutingByPathThroughTheBinary(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "ROUTE_BY_PATH=true", "ROUTE_ALLOW=127.0.0.0/8", "BACKEND_PORT=1")
	addr := p.addr()
	base := "http://" + p.waitLog("admin listener")["address"].(string)
	// Ready without a single backend to wait for.
	if code, body := httpStatus(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s", code, body)
	}
	c, err := wstest.Dial(addr, fmt.Sprintf("/127.0.0.1:%d/sign_in?peer_id=9", b.Port()), trustPEM(t, filepath.Join(dir, "ca.crt")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Echo("via the path", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := (<-b.NextRequest()).Target; got != "/sign_in?peer_id=9" {
		t.Errorf("backend got %q", got)
	}
}

// Out of descriptors: the accept loop backs off and recovers when some are
// freed, and the session already open is unharmed.
func TestAcceptRecoversFromDescriptorExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatal("prlimit (util-linux) is needed for this test")
	}
	b := backend(t)
	dir := t.TempDir()
	p := startProcCmd(t, exec.Command(prlimit, "--nofile=64:64", binary), "CERT_DIR="+dir,
		fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1", "ADMIN_ADDRESS=off",
		"MAX_CONNECTIONS=1000", "HANDSHAKE_TIMEOUT=60s")
	addr := p.addr()
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))
	open, err := wstest.Dial(addr, "/survivor", trust)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Conn.Close()

	// Plain TCP connections that never start TLS each hold a descriptor
	// in the proxy until the handshake timeout.
	var fillers []net.Conn
	defer func() {
		for _, c := range fillers {
			c.Close()
		}
	}()
	for range 80 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		fillers = append(fillers, c)
	}
	l := p.waitLog("accept failed; retrying")
	if !strings.Contains(fmt.Sprint(l["error"]), "too many open files") {
		t.Errorf("accept error %v", l["error"])
	}
	if err := open.Echo("still here", 5*time.Second); err != nil {
		t.Fatalf("open session harmed: %v", err)
	}
	for _, c := range fillers {
		c.Close()
	}
	fillers = nil
	waitFor(t, 15*time.Second, "a new session after descriptors are freed", func() bool {
		c, err := wstest.Dial(addr, "/after", trust)
		if err != nil {
			return false
		}
		defer c.Close()
		return c.Echo("recovered", 5*time.Second) == nil
	})
}

// Two instances on one host, as with --network host for a second runtime:
// both leave ADMIN_ADDRESS at its default, so the second finds its port
// taken. Both must serve, the second with its admin listener moved aside
// and a warning naming the setting; a port chosen explicitly stays an error.
func TestTwoInstancesWithDefaultAdminAddress(t *testing.T) {
	b := backend(t)
	env := []string{"BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "ADMIN_ADDRESS"}
	first := startProc(t, append(env, "CERT_DIR="+t.TempDir())...)
	first.addr() // listening, its admin listener bound
	second := startProc(t, append(env, "CERT_DIR="+t.TempDir())...)
	admins := map[string]bool{}
	for i, p := range []*proc{first, second} {
		c, err := wstest.Dial(p.addr(), "/", &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("instance %d: %v", i+1, err)
		}
		if err := c.Echo("hello", 5*time.Second); err != nil {
			t.Errorf("instance %d: echo: %v", i+1, err)
		}
		c.Close()
		admin := p.waitLog("admin listener")["address"].(string)
		admins[admin] = true
		if code, _ := httpStatus(t, "http://"+admin+"/healthz"); code != http.StatusOK {
			t.Errorf("instance %d: admin %s /healthz: %d", i+1, admin, code)
		}
	}
	if len(admins) != 2 {
		t.Errorf("both admin listeners on %v", admins)
	}
	// The second always finds 127.0.0.1:48323 taken (by the first, or by
	// whatever held it before the test); it says which setting to change.
	moved := second.waitLog("admin listener: the default address is taken (another instance on this host?); listening on a free port instead: set ADMIN_ADDRESS to choose one, or ADMIN_ADDRESS=off")
	if moved["default"] != "127.0.0.1:48323" || moved["address"] == "127.0.0.1:48323" {
		t.Errorf("warning %v", moved)
	}

	// Explicitly chosen and taken: exit 2, one line naming ADMIN_ADDRESS.
	taken := second.waitLog("admin listener")["address"].(string)
	cmd := exec.Command(binary)
	cmd.Env = []string{"CERT_DIR=" + t.TempDir(), "PROXY_PORT=0", "LISTEN_ADDRESS=127.0.0.1", "ADMIN_ADDRESS=" + taken}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "admin listener (ADMIN_ADDRESS)") ||
		!strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("explicit taken ADMIN_ADDRESS: exit %d, stderr %q; want 2 naming ADMIN_ADDRESS", code, stderr.String())
	}
}
