package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/testutil"
)

// server answers each connection with f.
var server = testutil.ServeEach

func probe(t *testing.T, addr string) error {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return HTTP(c, time.Now().Add(time.Second))
}

// The HTTP probe tells the runtime's HTTP server from other programs on
// its port (issue 20: a TCP connect called anything there "up").
func TestHTTPProbe(t *testing.T) {
	plain := httptest.NewServer(http.NotFoundHandler()) // any status counts
	defer plain.Close()
	if err := probe(t, plain.Listener.Addr().String()); err != nil {
		t.Errorf("an HTTP server: %v", err)
	}

	g, _ := certs.GenerateSelfSigned([]string{"127.0.0.1"}, time.Now())
	kp, _ := certs.ParseKeyPair(g.PEM())
	https := httptest.NewUnstartedServer(http.NotFoundHandler())
	https.TLS = &tls.Config{Certificates: []tls.Certificate{kp}}
	https.StartTLS()
	defer https.Close()
	rawTLS := server(t, func(c net.Conn) {
		tls.Server(c, &tls.Config{Certificates: []tls.Certificate{kp}}).Handshake() // answers with an alert
	})
	for name, addr := range map[string]string{
		"Go's HTTPS server": https.Listener.Addr().String(),
		"Go's TLS server":   rawTLS, // closes without an alert
		"an OpenSSL TLS server": server(t, func(c net.Conn) {
			io.ReadAtLeast(c, make([]byte, 16), 16)
			c.Write([]byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46}) // alert: protocol version
		}),
		"an SSH server":      server(t, testutil.SSHGreeting),
		"a silent close":     server(t, readRequest), // the whole request read: a FIN, not a reset
		"plain text garbage": server(t, func(c net.Conn) { io.WriteString(c, "hello\n") }),
	} {
		err := probe(t, addr)
		if !errors.Is(err, ErrNotRuntime) {
			t.Errorf("%s: %v, want ErrNotRuntime", name, err)
		}
		if strings.Contains(name, "OpenSSL") || strings.Contains(name, "HTTPS") {
			if !strings.Contains(fmt.Sprint(err), "plain ws:// port") {
				t.Errorf("%s: %v does not say what to fix", name, err)
			}
		}
	}
}

// Silence and a reset are what a runtime restarting or too busy to answer
// gives too: a failed check, never "something else is listening there",
// which a restart under load used to be called (and its log said so).
func TestProbeSilenceIsAFailedCheck(t *testing.T) {
	for name, addr := range map[string]string{
		"no answer in time": server(t, func(c net.Conn) { c.SetReadDeadline(time.Now().Add(3 * time.Second)); io.Copy(io.Discard, c) }),
		"a reset": server(t, func(c net.Conn) {
			io.ReadAtLeast(c, make([]byte, 16), 16)
			c.(*net.TCPConn).SetLinger(0) // close with RST
		}),
	} {
		err := probe(t, addr)
		if err == nil || errors.Is(err, ErrNotRuntime) {
			t.Errorf("%s: %v, want a failed check that is not ErrNotRuntime", name, err)
		}
	}
}

// readRequest reads a request head and answers nothing.
func readRequest(c net.Conn) {
	var got []byte
	buf := make([]byte, 512)
	for !strings.Contains(string(got), "\r\n\r\n") {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		got = append(got, buf[:n]...)
	}
}

// A checker with the probe marks a port held by another program down and
// says why; without one (HEALTH_CHECK_MODE=tcp) a connect is enough.
func TestCheckerWithProbe(t *testing.T) {
	ssh := server(t, testutil.SSHGreeting)
	for _, probe := range []Probe{HTTP, nil} {
		c := New(Options{Addr: ssh, Interval: time.Hour, Timeout: time.Second, Rise: 1, Fall: 1, Probe: probe})
		c.checkOnce(context.Background())
		st, _ := c.State()
		switch {
		case probe != nil && (st != Down || !errors.Is(c.Problem(), ErrNotRuntime)):
			t.Errorf("with the probe: %v, problem %v", st, c.Problem())
		case probe == nil && (st != Up || c.Problem() != nil):
			t.Errorf("connect only: %v, problem %v", st, c.Problem())
		}
	}
}
