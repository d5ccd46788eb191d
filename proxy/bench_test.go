package proxy

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// End-to-end benchmarks on loopback, for profiling the data path with
// go test -bench . -cpuprofile / -memprofile. The side-by-side comparison
// with HAProxy, which measures the proxy's own CPU time, is bench/
// (make bench).

// BenchmarkSession: TLS handshake, upgrade, one echo, close.
func BenchmarkSession(b *testing.B) {
	e := start(b, func(o *Options) { o.Logger = nil })
	cfg := &tls.Config{InsecureSkipVerify: true}
	msg := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			b.Fatal(err)
		}
		cl, err := wstest.Upgrade(tls.Client(c, cfg), "localhost", "/")
		if err != nil {
			b.Fatal(err)
		}
		cl.Send(wstest.OpBinary, msg)
		if _, _, err := cl.Receive(); err != nil {
			b.Fatal(err)
		}
		cl.Close()
	}
}

// BenchmarkEcho: 256-byte round trips on one open session.
func BenchmarkEcho(b *testing.B) {
	e := start(b, func(o *Options) { o.Logger = nil })
	cl, err := wstest.Dial(e.addr, "/", &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Conn.Close()
	msg := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(2 * 256)
	for b.Loop() {
		if err := cl.Send(wstest.OpBinary, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := cl.Receive(); err != nil {
			b.Fatal(err)
		}
	}
}
