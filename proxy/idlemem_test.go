package proxy

import (
	"crypto/tls"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/limit"
)

// idleSessionBudget is the live heap the proxy may keep for one idle
// session (handshake with the default key exchange, upgrade, one echo,
// then quiet and parked), from a client address of its own with the
// per-client limits at their defaults: crypto/tls's connection and its two
// AES-GCM states, the buffers it keeps after the handshake, the tunnel and
// the client's entry in the limits table. Measured when set (issue 25):
// 9,435 to 9,767 bytes from run to run (what the pools hold at the
// reading varies), hence 11 KiB. It counts what is allocated on the
// proxy's and the tunnel's stacks only, so it is below the whole binary's
// live heap per session (12.7 KiB at 2,000 sessions, bench/README.md item
// 25), which also holds what the program around the proxy keeps. Raise it
// only with a reason in the commit message.
const idleSessionBudget = 11 << 10

// liveServerBytes is the live heap held by the proxy's side (stacks that
// run through the proxy or tunnel packages, not through the test's client
// or backend), as of a full collection. The memory profile must sample
// every allocation (runtime.MemProfileRate = 1) from before the objects
// counted were made.
func liveServerBytes() int64 {
	var n int64
	for _, r := range profileByStack() {
		if r.server {
			n += r.inuse
		}
	}
	return n
}

// idleSession opens a session from the client address src and echoes once.
func idleSession(tb testing.TB, e *env, src net.IP) net.Conn {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	raw, err := d.Dial("tcp", e.addr)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := wstest.Upgrade(tls.Client(raw, e.tls), "localhost", "/idle")
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Echo("hello", 5*time.Second); err != nil {
		tb.Fatal(err)
	}
	return raw
}

// TestIdleSessionMemory holds the proxy to its live-heap budget per idle
// session: 200 sessions, each from its own address as headsets are, with
// the per-client limits at their defaults, held until every tunnel has
// parked (after 100 ms here, 3 s by default: the same state).
func TestIdleSessionMemory(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector's shadow allocations change the figure; scripts/test.sh (make test) runs this test again without it")
	}
	shipped, err := config.Load(nil, nil, nil, "test") // no variables: the defaults
	if err != nil {
		t.Fatal(err)
	}
	lo, on := shipped.ClientLimits()
	if !on {
		t.Fatal("the per-client limits are off by default")
	}
	e := start(t, parking, func(o *Options) {
		o.Logger = productionLogger(t)
		o.Limits = limit.New(lo)
	})
	for i := range 20 { // warm up: pools, the certificate, the parker
		idleSession(t, e, wstest.Source(3, i)).Close()
	}
	waitFor(t, 5*time.Second, "the warm-up sessions ended", func() bool { return e.srv.ActiveConnections() == 0 })
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	before := liveServerBytes()
	const n = 200
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = idleSession(t, e, wstest.Source(3, 20+i))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	waitFor(t, 10*time.Second, "every session parked", func() bool { return e.srv.ParkedDirections() == 2*n })
	per := float64(liveServerBytes()-before) / n
	t.Logf("live heap per idle session: %.0f bytes (budget %d)", per, idleSessionBudget)
	if per > idleSessionBudget {
		t.Errorf("live heap per idle session: %.0f bytes, over the budget of %d", per, idleSessionBudget)
	}
	if per < 4<<10 { // a TLS connection alone holds more: the count is broken
		t.Errorf("live heap per idle session: %.0f bytes, too little to be counting the sessions", per)
	}
}
