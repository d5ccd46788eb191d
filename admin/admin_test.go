package admin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// serve runs s on a free loopback port and returns its base URL; stop shuts
// it down and reports a failed Shutdown or an error from Serve.
func serve(t *testing.T, s *Server) (base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			return fmt.Errorf("Shutdown: %w", err)
		}
		if err := <-served; err != nil {
			return fmt.Errorf("Serve after Shutdown: %w", err)
		}
		return nil
	}
}

// The admin listener on a real socket: probes follow the readiness
// function, metrics carry what the proxy reported, and Shutdown ends it.
func TestServer(t *testing.T) {
	var open atomic.Int64
	m := NewMetrics("v1.2.3 (go1.26)")
	m.Watch(Gauges{OpenSessions: func() float64 { return float64(open.Load()) }})
	var ready atomic.Bool
	s := NewServer(m, func() (bool, string) {
		if !ready.Load() {
			return false, "backend down"
		}
		return true, "routing by path: 1 of 2 checked runtimes up (not part of readiness)"
	}, false)
	base, stop := serve(t, s)

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "backend down") {
		t.Errorf("/readyz while not ready: %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, base+"/readyz"); code != 200 || body != "ready: routing by path: 1 of 2 checked runtimes up (not part of readiness)\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}

	open.Store(2)
	m.HandshakeSucceeded()
	m.HandshakeFailed("not TLS")
	m.SessionEnded("completed", 100, 200, 3*time.Second)
	m.BackendState("10.0.3.17:49100", "up")
	m.BackendState("10.0.3.17:49100", "down")
	m.HealthCheck(true, time.Millisecond)
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		`cloudxr_wss_proxy_sessions_open 2`,
		`cloudxr_wss_proxy_tls_handshakes_total 1`,
		`cloudxr_wss_proxy_tls_handshake_failures_total{class="not TLS"} 1`,
		`cloudxr_wss_proxy_bytes_total{direction="client_to_backend"} 100`,
		`cloudxr_wss_proxy_bytes_total{direction="backend_to_client"} 200`,
		`cloudxr_wss_proxy_session_duration_seconds_count 1`,
		`cloudxr_wss_proxy_backend_up{backend="10.0.3.17:49100"} 0`,
		`cloudxr_wss_proxy_backend_transitions_total{backend="10.0.3.17:49100",to="down"} 1`,
		`cloudxr_wss_proxy_health_check_duration_seconds_count{result="ok"} 1`,
		`cloudxr_wss_proxy_build_info{`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := get(t, base+"/nothing"); code != 404 {
		t.Errorf("unknown path %d", code)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
		t.Errorf("the profiler is served without ADMIN_PPROF: %d", code)
	}

	if err := stop(); err != nil {
		t.Error(err)
	}
}

// With profiling on, Go's profiler answers on the admin listener: the
// index, a named profile and a short CPU profile.
func TestProfiling(t *testing.T) {
	s := NewServer(NewMetrics("test"), func() (bool, string) { return true, "" }, true)
	base, stop := serve(t, s)

	if code, body := get(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ %d %.80q", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap %d %.80q", code, body)
	}
	if code, body := get(t, base+"/debug/pprof/profile?seconds=1"); code != 200 || len(body) == 0 {
		t.Errorf("/debug/pprof/profile %d, %d bytes", code, len(body))
	}
	if code, _ := get(t, base+"/metrics"); code != 200 {
		t.Errorf("/metrics %d beside the profiler", code)
	}

	if err := stop(); err != nil {
		t.Error(err)
	}
}

// BenchmarkSessionEnded is what the metrics cost a session when it ends
// (go test -bench SessionEnded -benchmem ./admin).
func BenchmarkSessionEnded(b *testing.B) {
	m := NewMetrics("bench")
	b.ReportAllocs()
	for b.Loop() {
		m.HandshakeSucceeded()
		m.SessionEnded("client closed", 180, 220, 40*time.Millisecond)
	}
}
