package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/logging"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// The proxy's allocations per session, counted apart from the client's and
// the backend's in the same process: a memory profile at a rate of one
// sample per allocation, keeping the allocations whose stack runs through
// this module's proxy or tunnel package and neither through the testing
// package (the client runs in the test's goroutine) nor the backend's.
// "ours" are those made by this module's own code (the innermost frame
// outside the runtime is ours), the rest by what it calls (crypto/tls above
// all, whose handshake allocates about 100 times).

// sessionAllocBudget is what a session (handshake, upgrade, one echo,
// close) may allocate, all told and by this module's own code. Measured
// when set: 439 and 22 (crypto/tls's TLS 1.3 handshake with X25519MLKEM768
// is about 400 of the first; before issue 14's work, 464 and 24, with
// net.Dialer adding 25 more that did not count as ours). Raise it only with
// a reason in the commit message. Raised to 475 when net.Dialer came back
// (issue 19: the hand-written connect's gain did not stand out of the
// noise): measured then 457 and 17.
const (
	sessionAllocBudget    = 475
	sessionOwnAllocBudget = 25
)

// allocCount is the server's allocations in a stretch of the test.
type allocCount struct {
	all, own int64
	sites    map[string]int64 // the innermost frame outside the runtime: count
}

// serverAllocs runs n sessions with run and counts the server's
// allocations over them.
func serverAllocs(tb testing.TB, n int, run func()) allocCount {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	before := profileByStack()
	for range n {
		run()
	}
	after := profileByStack()
	c := allocCount{sites: map[string]int64{}}
	for key, r := range after {
		d := r.objects - before[key].objects
		if d <= 0 || !r.server {
			continue
		}
		c.all += d
		c.sites[r.site] += d
		if r.own {
			c.own += d
		}
	}
	return c
}

type stackAllocs struct {
	objects     int64
	inuse       int64 // bytes still live
	server, own bool
	site        string
}

// profileByStack reads the memory profile (as of a completed GC, so two
// first: the last allocations reach the profile a cycle late).
func profileByStack() map[string]stackAllocs {
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+64)
	}
	out := make(map[string]stackAllocs, len(recs))
	for _, r := range recs {
		key := fmt.Sprint(r.Stack())
		s := out[key]
		s.objects += r.AllocObjects
		s.inuse += r.InUseBytes()
		s.server, s.own, s.site = classify(r.Stack())
		out[key] = s
	}
	return out
}

const module = "github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/"

func classify(stack []uintptr) (server, own bool, site string) {
	frames := runtime.CallersFrames(stack)
	first := true
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "testing.") || strings.Contains(f.Function, "/internal/wstest.") {
			// the client, in the test's goroutine, or the backend
			return false, false, ""
		}
		if strings.HasPrefix(f.Function, module+"proxy.") || strings.HasPrefix(f.Function, module+"tunnel.") {
			if !server && site != "" && site != f.Function {
				site += " ← " + f.Function
			}
			server = true
		}
		if first && !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "internal/") {
			first = false
			site = f.Function
			own = strings.HasPrefix(f.Function, module)
		}
		if !more {
			return server, own, site
		}
	}
}

// productionLogger logs as the program does by default (the logging
// package's JSON at info), to nowhere.
func productionLogger(tb testing.TB) *zap.Logger {
	l, err := logging.New(io.Discard, "info", "json")
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// oneSession is the bench's session: handshake, upgrade, one 32-byte
// echo, close.
func oneSession(tb testing.TB, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := wstest.Upgrade(tls.Client(c, &tls.Config{InsecureSkipVerify: true}), "localhost", "/")
	if err != nil {
		tb.Fatal(err)
	}
	cl.Send(wstest.OpBinary, make([]byte, 32))
	if _, _, err := cl.Receive(); err != nil {
		tb.Fatal(err)
	}
	cl.Send(wstest.OpClose, []byte{3, 232})
	cl.Receive()
	cl.Close()
}

// TestSessionAllocations holds the proxy to its allocation budget per
// session, with the session's log line written as in production.
func TestSessionAllocations(t *testing.T) {
	if raceDetector {
		t.Skip("allocation counts differ under the race detector; scripts/test.sh (make test) runs this test again without it")
	}
	e := start(t, func(o *Options) { o.Logger = productionLogger(t) })
	for range 20 { // warm up: pools, the certificate, the parker
		oneSession(t, e.addr)
	}
	const n = 100
	c := serverAllocs(t, n, func() { oneSession(t, e.addr) })
	all, own := float64(c.all)/n, float64(c.own)/n
	t.Logf("per session: %.1f allocations by the proxy, %.1f of them by its own code; the busiest sites:\n%s", all, own, c.top(n, 30))
	if all > sessionAllocBudget || own > sessionOwnAllocBudget {
		t.Errorf("per session: %.1f allocations (budget %d), %.1f by the proxy's own code (budget %d)",
			all, sessionAllocBudget, own, sessionOwnAllocBudget)
	}
}

// top lists the busiest allocation sites per session.
func (c allocCount) top(n, k int) string {
	type site struct {
		name  string
		count int64
	}
	var s []site
	for name, count := range c.sites {
		s = append(s, site{name, count})
	}
	slices.SortFunc(s, func(a, b site) int { return int(b.count - a.count) })
	var b strings.Builder
	for _, x := range s[:min(k, len(s))] {
		fmt.Fprintf(&b, "  %6.2f  %s\n", float64(x.count)/float64(n), x.name)
	}
	return b.String()
}
