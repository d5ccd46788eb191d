//go:build e2e && soak

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// recordedHello captures the first flight a TLS client sends: replayed, it
// makes the server do a whole key exchange and signature while costing the
// sender nothing.
func recordedHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go tls.Client(a, cfg).Handshake()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, err := b.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return buf[:n]
}

// A flood of TLS handshakes (64 connections at a time, each sending a
// ClientHello and leaving once the server has answered) must not starve the
// sessions already established: each keeps echoing, promptly.
func TestHandshakeFloodDoesNotStarveSessions(t *testing.T) {
	b := backend(t)
	dir := t.TempDir()
	p := startProc(t, "CERT_DIR="+dir, "BACKEND_HOST=127.0.0.1", fmt.Sprintf("BACKEND_PORT=%d", b.Port()))
	addr := p.addr()
	admin := "http://" + p.waitLog("admin listener")["address"].(string)
	trust := trustPEM(t, filepath.Join(dir, "ca.crt"))

	const sessions = 20
	var clients []*wstest.Client
	for i := range sessions {
		c, err := wstest.Dial(addr, fmt.Sprintf("/sign_in?peer_id=%d", i), trust)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	failures0 := handshakeFailures(scrape(t, admin))

	stop := make(chan struct{})
	var flooded atomic.Int64
	var flood sync.WaitGroup
	hello := recordedHello(t, trust)
	for range 64 {
		flood.Go(func() { floodHandshakes(addr, hello, stop, &flooded) })
	}
	const floodFor = 5 * time.Second
	latencies, errs := echoWhile(clients, floodFor)
	close(stop)
	flood.Wait()

	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	worst := latencies[len(latencies)-1]
	handshakes := handshakeFailures(scrape(t, admin)) - failures0
	t.Logf("flood: %d handshakes answered (%.0f/s), proxy counted %.0f abandoned; %d echoes on %d sessions, p50 %v, p99 %v, worst %v",
		flooded.Load(), float64(flooded.Load())/floodFor.Seconds(), handshakes, len(latencies), sessions,
		latencies[len(latencies)/2], p99, worst)
	if len(errs) > 0 {
		t.Fatalf("%d echoes failed during the flood, first: %v", len(errs), errs[0])
	}
	if flooded.Load() < 500 {
		t.Fatalf("only %d flood handshakes answered: not a flood", flooded.Load())
	}
	if handshakes < float64(flooded.Load())/2 {
		t.Errorf("the proxy counted %.0f abandoned handshakes for %d sent", handshakes, flooded.Load())
	}
	if p99 > 500*time.Millisecond || worst > 2*time.Second {
		t.Errorf("established sessions starved: p99 %v, worst %v", p99, worst)
	}
	if len(latencies) < sessions*50 {
		t.Errorf("only %d echoes in %v on %d sessions", len(latencies), floodFor, sessions)
	}
}

// floodHandshakes sends a recorded ClientHello on one connection after
// another, reads the server's whole flight (ServerHello to Finished) and
// hangs up, until stop.
func floodHandshakes(addr string, hello []byte, stop chan struct{}, answered *atomic.Int64) {
	buf := make([]byte, 16<<10)
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(hello); err == nil {
			if n, _ := io.ReadAtLeast(c, buf, 1); n > 0 {
				answered.Add(1)
			}
		}
		c.Close()
	}
}

// echoWhile has every client echo, one message after another at a
// signaling session's pace, for d; it returns each echo's latency and the
// errors.
func echoWhile(clients []*wstest.Client, d time.Duration) ([]time.Duration, []error) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      []error
		echoes    sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	for i, c := range clients {
		echoes.Go(func() {
			pace := time.NewTicker(20 * time.Millisecond) // a signaling session's pace, not a benchmark's
			defer pace.Stop()
			for n := 0; time.Now().Before(deadline); n++ {
				start := time.Now()
				err := c.Echo(fmt.Sprintf("session %d message %d", i, n), 5*time.Second)
				mu.Lock()
				latencies = append(latencies, time.Since(start))
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
				<-pace.C
			}
		})
	}
	echoes.Wait()
	return latencies, errs
}

// handshakeFailures sums the proxy's handshake failures over all classes.
func handshakeFailures(m map[string]float64) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "cloudxr_wss_proxy_tls_handshake_failures_total") {
			n += v
		}
	}
	return n
}
