package proxy

import (
	"crypto/tls"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// BenchmarkLogEnd is what the session's log line costs, written as in
// production (JSON at info) to nowhere (go test -bench LogEnd -benchmem
// ./proxy).
func BenchmarkLogEnd(b *testing.B) {
	srv := New(Options{Backend: "127.0.0.1:49100", Logger: productionLogger(b)})
	defer srv.cancel()
	s := &session{srv: srv, tc: tls.Server(&tunnel.Conn{}, &tls.Config{}), start: time.Now(),
		client: "192.0.2.7:51234", method: "GET", path: "/", status: 101, requests: 1,
		backendLocal: "127.0.0.1:40312"}
	s.hello.sni = "gpu.lab.example"
	b.ReportAllocs()
	for b.Loop() {
		s.logEnd(tunnel.Result{End: tunnel.ClientClosed, Up: 180, Down: 220})
	}
}
