package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	certOnce   sync.Once
	serverCert tls.Certificate
	clientPool *x509.CertPool
)

// testCert is a certificate for localhost and 127.0.0.1, made once.
func testCert(t testing.TB) (*tls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		g, err := certs.GenerateSelfSigned([]string{"localhost", "127.0.0.1"}, time.Now())
		if err != nil {
			panic(err)
		}
		serverCert, err = certs.ParseKeyPair(append(g.CertPEM, g.KeyPEM...))
		if err != nil {
			panic(err)
		}
		clientPool = x509.NewCertPool()
		clientPool.AddCert(serverCert.Leaf)
	})
	return &serverCert, clientPool
}

type env struct {
	t       testing.TB
	srv     *Server
	addr    string
	backend *wstest.Backend
	tls     *tls.Config // a client config that trusts the proxy
	logs    *observer.ObservedLogs
}

// start runs a proxy on 127.0.0.1 in front of a fresh echo backend.
func start(t testing.TB, tweak ...func(*Options)) *env {
	t.Helper()
	b, err := wstest.StartBackend("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return startWith(t, b, b.Addr(), tweak...)
}

func startWith(t testing.TB, b *wstest.Backend, backendAddr string, tweak ...func(*Options)) *env {
	t.Helper()
	cert, pool := testCert(t)
	core, logs := observer.New(zapcore.DebugLevel)
	o := Options{
		Backend:          backendAddr,
		GetCertificate:   func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil },
		ConnectTimeout:   5 * time.Second,
		TunnelTimeout:    time.Hour,
		HandshakeTimeout: 10 * time.Second,
		HeadTimeout:      10 * time.Second,
		ResponseTimeout:  10 * time.Second,
		TLSPostQuantum:   true,
		Logger:           zap.New(core),
	}
	for _, f := range tweak {
		f(&o)
	}
	srv := New(o)
	ln, err := Listen("tcp", "127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	return &env{
		t: t, srv: srv, addr: ln.Addr().String(), backend: b, logs: logs,
		tls: &tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}},
	}
}

// dial opens a TLS connection to the proxy.
func (e *env) dial() *tls.Conn {
	e.t.Helper()
	c, err := tls.Dial("tcp", e.addr, e.tls)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// ws opens a WebSocket through the proxy.
func (e *env) ws(target string, header ...string) *wstest.Client {
	e.t.Helper()
	c, err := wstest.Dial(e.addr, target, e.tls, header...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Conn.Close() })
	return c
}

// waitFor is testutil.WaitFor, short for the many tests here.
var waitFor = testutil.WaitFor

// sessionLog waits for the "session ended" line of a session whose field
// key has value v, and returns its fields.
func (e *env) sessionLog(key string, v any) map[string]any {
	e.t.Helper()
	var found map[string]any
	waitFor(e.t, 5*time.Second, "a session log line with "+key, func() bool {
		for _, l := range e.logs.FilterMessage("session ended").All() {
			m := l.ContextMap()
			if m[key] == v {
				found = m
				return true
			}
		}
		return false
	})
	return found
}
