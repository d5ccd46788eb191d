package proxy

import (
	"crypto/tls"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// 10,000 handshakes, each asking for a new server name, half of them host
// names of 200 bytes and half 48 KB of anything: the proxy's heap and its
// log stay within fixed bounds (issue 18, finding 2: each name used to be
// kept and logged forever). The per-client limits are off: this is about
// what is remembered per name, not per client.
func TestUniqueServerNamesBounded(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := certs.NewManager(certs.Options{Dir: t.TempDir(), Names: []string{"localhost", "127.0.0.1"}, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	// The proxy's own log at Warn: the test's observer keeps every line it
	// gets, and 10,000 "session ended" lines would be the test's memory.
	proxyCore, proxyLogs := observer.New(zapcore.WarnLevel)
	e := start(t, func(o *Options) {
		o.GetCertificate, o.CheckName, o.Logger = m.GetCertificate, m.CheckName, zap.New(proxyCore)
	})
	handshake := func(name string) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		tc := tls.Client(c, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		tc.Handshake() // a 48 KB name may well be refused; it is sent all the same
	}
	handshake("warm-up.example")
	before := heapInUse()
	start := time.Now()
	const n, workers = 3_000, 8 // 1,500 valid names: six times the 256 kept
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if i%2 == 0 {
					handshake(fmt.Sprintf("%s.%d.example", strings.Repeat("x", 60), i))
				} else {
					handshake(fmt.Sprintf("%d-%s", i, strings.Repeat("<script>", 6<<10)))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	waitFor(t, 10*time.Second, "every session to end", func() bool { return e.srv.ActiveConnections() == 0 })
	after := heapInUse()
	if grown := int64(after) - int64(before); grown > 4<<20 {
		t.Errorf("the heap grew by %d KiB over %d handshakes with new names", grown>>10, n)
	}
	lines := logs.FilterMessage("a client used a name the certificate does not cover").All()
	bytes := 0
	for _, l := range lines {
		bytes += len(fmt.Sprint(l.ContextMap()))
	}
	if limit := 5*(int(elapsed.Seconds())+1) + n/1000; len(lines) > limit || bytes > limit*400 {
		t.Errorf("%d lines (%d bytes) in %v, want at most %d", len(lines), bytes, elapsed.Round(time.Millisecond), limit)
	}
	// The proxy's own lines (handshake failures) hold no long name either.
	for _, l := range proxyLogs.All() {
		if s := fmt.Sprint(l.ContextMap()); len(s) > 2048 {
			t.Errorf("a %d-byte line: %.200s", len(s), s)
		}
	}
	t.Logf("%d handshakes in %v: heap %+d KiB, %d lines", n, elapsed.Round(time.Millisecond), (int64(after)-int64(before))>>10, len(lines))
}
