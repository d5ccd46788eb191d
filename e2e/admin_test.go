//go:build e2e

package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// scrape returns the value of each sample line of /metrics, keyed by the
// series as written ("name{label=\"v\"}").
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func httpStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAdminProbesAndMetrics(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1", "HEALTH_CHECK_FALL=1")
	addr := p.addr()
	base := "http://" + p.waitLog("admin listener")["address"].(string)

	if code, _ := httpStatus(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	waitFor(t, 10*time.Second, "ready", func() bool { code, _ := httpStatus(t, base+"/readyz"); return code == 200 })

	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))
	const n = 3
	for i := range n {
		c, err := wstest.Dial(addr, fmt.Sprintf("/m%d", i), trust)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Echo("metered", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost"}); err == nil {
		c.Close()
		t.Fatal("untrusting client connected")
	}
	up := fmt.Sprintf(`cloudxr_wss_proxy_backend_up{backend="%s"}`, b.Addr())
	down := fmt.Sprintf(`cloudxr_wss_proxy_backend_transitions_total{backend="%s",to="down"}`, b.Addr())
	checkSessionMetrics(t, base, n, up)

	// The backend goes away: not ready, and the metric says so.
	b.Close()
	waitFor(t, 10*time.Second, "not ready", func() bool {
		code, body := httpStatus(t, base+"/readyz")
		return code == 503 && strings.Contains(body, "backend down")
	})
	if m := scrape(t, base); m[up] != 0 || m[down] != 1 {
		t.Errorf("after the backend went: up %v, transitions down %v", m[up], m[down])
	}
}

// ADMIN_PPROF=true puts Go's profiler on the admin listener of the binary,
// and says so in the log line that lists the listener's paths.
func TestAdminProfiler(t *testing.T) {
	b := backend(t)
	p := startProc(t, "CERT_DIR="+t.TempDir(), fmt.Sprintf("BACKEND_PORT=%d", b.Port()), "BACKEND_HOST=127.0.0.1", "ADMIN_PPROF=true")
	line := p.waitLog("admin listener")
	if paths := fmt.Sprint(line["paths"]); !strings.Contains(paths, "/debug/pprof/") {
		t.Errorf("admin listener paths %s", paths)
	}
	code, body := httpStatus(t, "http://"+line["address"].(string)+"/debug/pprof/goroutine?debug=1")
	if code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("/debug/pprof/goroutine: %d %.80q", code, body)
	}
}

func TestHealthcheckSubcommand(t *testing.T) {
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir)
	_, port, _ := net.SplitHostPort(p.addr())
	run := func(port string) (int, string) {
		cmd := exec.Command(binary, "healthcheck")
		cmd.Env = []string{"PROXY_PORT=" + port, "LISTEN_ADDRESS=127.0.0.1", "CERT_DIR=" + dir}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run(port); code != 0 {
		t.Fatalf("healthcheck against a running proxy: exit %d: %s", code, out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closed, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if code, out := run(closed); code != 1 {
		t.Fatalf("healthcheck against nothing: exit %d: %s", code, out)
	}
}

// checkSessionMetrics checks what the metrics say after n sessions, one
// handshake a client rejected, and the backend up (the series up).
func checkSessionMetrics(t *testing.T, base string, n float64, up string) {
	t.Helper()
	var m map[string]float64
	// The sessions end, and the refused handshake is counted, after the
	// clients have gone: wait for all of it, then check the exact values.
	waitFor(t, 10*time.Second, "metrics for the sessions and the refused handshake", func() bool {
		m = scrape(t, base)
		total := 0.0
		for k, v := range m {
			if strings.HasPrefix(k, "cloudxr_wss_proxy_sessions_total{") {
				total += v
			}
		}
		return total == n && m[`cloudxr_wss_proxy_session_duration_seconds_count`] == n &&
			m[`cloudxr_wss_proxy_tls_handshake_failures_total{class="client rejected our certificate"}`] >= 1
	})
	for series, want := range map[string]float64{
		`cloudxr_wss_proxy_tls_handshakes_total`:                                                  n,
		`cloudxr_wss_proxy_tls_handshake_failures_total{class="client rejected our certificate"}`: 1,
		up: 1,
		`cloudxr_wss_proxy_session_duration_seconds_count`: n,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	if m[`cloudxr_wss_proxy_bytes_total{direction="client_to_backend"}`] < n*20 || m[`cloudxr_wss_proxy_bytes_total{direction="backend_to_client"}`] < n*20 {
		t.Errorf("bytes %v / %v", m[`cloudxr_wss_proxy_bytes_total{direction="client_to_backend"}`], m[`cloudxr_wss_proxy_bytes_total{direction="backend_to_client"}`])
	}
	if exp := m["cloudxr_wss_proxy_certificate_expiry_timestamp_seconds"]; exp < float64(time.Now().Add(800*24*time.Hour).Unix()) {
		t.Errorf("certificate expiry %v", exp)
	}
	found := false
	for k := range m {
		found = found || strings.HasPrefix(k, "cloudxr_wss_proxy_build_info{")
	}
	if !found {
		t.Error("no build_info")
	}
}

// waitFor is testutil.WaitFor, short for the many tests here.
var waitFor = testutil.WaitFor
