//go:build e2e && soak

package e2e

import (
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/soak"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// The backend is killed and restarted over and over while 200 clients
// cycle sessions for a minute: every session completes with every byte
// echoed intact, or ends cleanly (a close or a 503); none is stuck;
// and afterwards the proxy is back to the goroutines, descriptors and
// memory it had before.
func TestBackendRestartsUnderLoad(t *testing.T) {
	b, err := soak.StartBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	_, port, _ := net.SplitHostPort(b.Addr())
	dir := t.TempDir()
	// Each client from its own address, with the per-client limits at
	// their defaults.
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", "BACKEND_PORT="+port,
		"CLIENT_MAX_CONNECTIONS", "CLIENT_HANDSHAKE_RATE", "CLIENT_AUTH_FAILURES")
	addr := p.addr()
	admin := p.waitLog("admin listener")["address"].(string)
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))
	pid := p.cmd.Process.Pid

	// One session first, so that what starts on first use is running.
	c, err := wstest.Dial(addr, "/warm-up", trust)
	if err != nil {
		t.Fatal(err)
	}
	c.Echo("warm", 5*time.Second)
	c.Close()
	before, err := soak.Await(pid, admin, 10*time.Second, func(s soak.Snapshot) bool { return s.OpenSessions == 0 })
	if err != nil {
		t.Fatalf("the warm-up session did not end: %v", err)
	}

	res := soak.Run(soak.Options{
		Addr: addr, TLS: trust, Workers: 200, Duration: time.Minute,
		Messages: 4, MaxMessage: 16 << 10, Stall: 10 * time.Second,
		Restart: b.Toggle, RestartEvery: time.Second,
		Watch:  func() (soak.Snapshot, error) { return soak.Take(pid, admin) },
		Source: soak.Sources,
	})
	t.Logf("soak:\n%s", res.Report())
	if n := res.Unexpected(); n > 0 {
		t.Errorf("%d sessions failed in a way a backend restart must not cause", n)
	}
	if res.Classes[soak.Completed] < 300 || res.Restarts < 50 || len(res.RestartErrors) > 0 {
		t.Errorf("not the load intended: %d completed, %d restarts, errors %v", res.Classes[soak.Completed], res.Restarts, res.RestartErrors)
	}
	if res.Classes[soak.Refused503] == 0 || res.Classes[soak.ClosedCleanly] == 0 {
		t.Errorf("restarts never hit a session: %v", res.Classes)
	}

	// Back to the baseline once the last sessions are gone.
	after, err := soak.Await(pid, admin, 20*time.Second, func(s soak.Snapshot) bool { return soak.Settled(before, res.Peak, s) })
	t.Logf("before: %v\npeak:   %v\nafter:  %v", before, res.Peak, after)
	if err != nil {
		t.Errorf("the proxy did not return to its baseline: before %v, after %v (%v)", before, after, err)
	}
}
