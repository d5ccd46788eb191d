//go:build e2e

package e2e

// These tests build the real binary and run it as a user would, on
// loopback ports, in front of the test echo backend.

import (
	"bytes"
	"crypto/tls"
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

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

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
	// Without CERT_MODE=acme nothing of ACME exists: no CA contacted, no
	// account or storage.
	if _, err := os.Stat(filepath.Join(dir, "acme")); !os.IsNotExist(err) || strings.Contains(p.output(), `"logger":"acme`) {
		t.Errorf("ACME storage or logs in the default mode (%v)", err)
	}
}

func TestInvalidConfiguration(t *testing.T) {
	cases := []struct{ env, want string }{
		{"BACKEND_PORT=abc", `BACKEND_PORT="abc"`},
		{"PROXY_PORT=70000", `PROXY_PORT="70000"`},
		{"HEALTH_CHECK_RISE=0", `HEALTH_CHECK_RISE="0"`},
		{"HEALTH_CHECK_INTERVAL=2 weeks", `HEALTH_CHECK_INTERVAL="2 weeks"`},
		{"ROUTE_CHECK=10.0.3.17", `ROUTE_CHECK="10.0.3.17"`},
		{"ROUTE_BY_PATH=true;ROUTE_ALLOW=10.0.3.0/24;ROUTE_CHECK=10.0.3.17,10.0.4.1", `invalid ROUTE_CHECK="10.0.3.17,10.0.4.1": "10.0.4.1:49100" is not on the routing allow-list`},
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
	_, port, _ := net.SplitHostPort(taken)
	if code := cmd.ProcessState.ExitCode(); code != 2 ||
		!strings.Contains(stderr.String(), "ADMIN_ADDRESS "+port+" is in use by another program ("+taken+"): stop it, or set ADMIN_ADDRESS to another host:port, or ADMIN_ADDRESS=off") {
		t.Errorf("explicit taken ADMIN_ADDRESS: exit %d, stderr %q; want 2 naming ADMIN_ADDRESS", code, stderr.String())
	}
}

// A PROXY_PORT another program holds: exit 2 and one line saying so and
// what to set (issue 20), not the raw bind error with exit 1.
func TestProxyPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cmd := exec.Command(binary)
	cmd.Env = []string{"CERT_DIR=" + t.TempDir(), "LISTEN_ADDRESS=127.0.0.1", "PROXY_PORT=" + port, "ADMIN_ADDRESS=off"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	want := "cloudxr-wss-proxy: PROXY_PORT " + port + " is in use by another program (127.0.0.1:" + port + "): stop it, or set PROXY_PORT"
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), want)
	}
}

// A health check interval given as a bare number (milliseconds, as in
// HAProxy) that is almost surely meant as seconds is warned about at start.
func TestShortHealthIntervalWarned(t *testing.T) {
	b := backend(t)
	p := startProc(t, "CERT_DIR="+t.TempDir(), "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "HEALTH_CHECK_INTERVAL=2")
	l := p.waitLog("a setting is probably not what was meant")
	if why, _ := l["why"].(string); !strings.HasPrefix(why, "HEALTH_CHECK_INTERVAL=2ms checks the runtime 500 times a second") {
		t.Errorf("warning %v", l)
	}
}

// The GC target and soft memory limit the proxy sets for itself, unless
// GOGC and GOMEMLIMIT say otherwise.
func TestGarbageCollectorSettings(t *testing.T) {
	for _, c := range []struct {
		env            []string
		gogc, memlimit string
		follows        bool
	}{
		{nil, "400", "MiB", true},
		{[]string{"GOGC=150", "GOMEMLIMIT=100MiB"}, "150", "100MiB", false},
	} {
		p := startProc(t, append([]string{"CERT_DIR=" + t.TempDir()}, c.env...)...)
		l := p.waitLog("garbage collector")
		if l["GOGC"] != c.gogc || !strings.HasSuffix(fmt.Sprint(l["GOMEMLIMIT"]), c.memlimit) || l["follows_live_heap"] != c.follows {
			t.Errorf("%v: %v", c.env, l)
		}
	}
}

// Another program on the runtime's port is not a runtime that is up: the
// log, /status.json, /readyz and the page say something else is listening
// there (issue 20: a TCP connect check called an SSH server "up").
func TestSomethingElseOnTheRuntimePort(t *testing.T) {
	_, port, _ := net.SplitHostPort(testutil.ServeEach(t, testutil.SSHGreeting))
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", "BACKEND_PORT="+port)
	l := p.waitLog("backend is down: something else is listening on its port, not a CloudXR runtime")
	if !strings.Contains(fmt.Sprint(l["error"]), `it answered "SSH-2.0-OpenSSH_9.2p1\r\n", not HTTP`) {
		t.Errorf("log %v", l)
	}
	base := "https://" + strings.Replace(p.addr(), "127.0.0.1", "localhost", 1)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: trustPEM(t, filepath.Join(dir, "ca.crt"))}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(base + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Backend struct {
			Up      bool   `json:"up"`
			Problem string `json:"problem"`
		} `json:"backend"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Backend.Up || !strings.HasPrefix(st.Backend.Problem, "something else is listening there") {
		t.Errorf("status %+v", st)
	}
	resp, err = hc.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("Something else is listening where the CloudXR runtime should be")) {
		t.Errorf("the page does not say so")
	}
	admin := "http://" + p.waitLog("admin listener")["address"].(string)
	if code, body := httpStatus(t, admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d %q", code, body)
	}
}
