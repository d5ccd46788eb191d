//go:build e2e

package e2e

// Routing by path through the binary: routed runtimes checked, refused
// and reached.

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

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
func upgradeStatus(t *testing.T, addr string, trust *tls.Config, target string, header ...string) int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, trust)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, wstest.UpgradeRequest("localhost", target, header...))
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
