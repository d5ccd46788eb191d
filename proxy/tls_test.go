package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/wstest"
)

// classifyHandshake reads the code of an alert the client sent through
// reflection: crypto/tls reports it as a net.OpError with Op "remote error"
// whose Err is its unexported alert type, a uint8, and exports no API for
// it (tls.AlertError is only wrapped for QUIC). See
// https://github.com/golang/go/blob/go1.26.0/src/crypto/tls/conn.go#L720-L742
// This pins that shape with a real client that rejects the certificate, so
// a Go release that changes it fails here with a clear message rather than
// silently turning "client rejected our certificate" into "client aborted".
func TestReceivedAlertShape(t *testing.T) {
	cert, _ := testCert(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serverErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverErr <- err
			return
		}
		defer c.Close()
		serverErr <- tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}, MaxVersion: tls.VersionTLS12}).Handshake()
	}()
	// No RootCAs: the client does not trust the certificate and says so
	// (Go's client: bad_certificate, 42). TLS 1.2, so the alert comes
	// inside the handshake.
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost"})
	if err == nil {
		c.Close()
		t.Fatal("the client accepted an untrusted certificate")
	}
	err = <-serverErr
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" {
		t.Fatalf("server's handshake error %#v: crypto/tls no longer reports a received alert as a net.OpError "+
			"with Op \"remote error\"; classifyHandshake (tls.go) must learn the new form", err)
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || !certAlerts[uint8(v.Uint())] {
		t.Fatalf("received alert is %T %v: crypto/tls no longer carries the alert code as a uint8; "+
			"classifyHandshake (tls.go) must learn the new form", op.Err, op.Err)
	}
	if class, _ := classifyHandshake(err, &helloInfo{seen: true, maxVers: tls.VersionTLS13}); class != failRejectedCert {
		t.Errorf("class %q, want %q", class, failRejectedCert)
	}
}

func TestPlainHTTPOnTLSPort(t *testing.T) {
	e := start(t)
	resp, err := http.Get("http://" + e.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "https://") || !strings.Contains(string(body), "wss://") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestHandshakeFailureClasses(t *testing.T) {
	e := start(t)
	// A client that does not trust our certificate.
	if _, err := tls.Dial("tcp", e.addr, &tls.Config{ServerName: "localhost"}); err == nil {
		t.Fatal("untrusting client connected")
	}
	// A client that only speaks TLS 1.1.
	if _, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 client connected")
	}
	// A client that says nothing.
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// Something that is not TLS (nor HTTP).
	c, err = net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x00\x01\x02\x03\x04\x05 not tls"))
	io.ReadAll(c)
	c.Close()
	for _, class := range []string{failRejectedCert, failProtocol, failNoData, failNotTLS} {
		waitFor(t, 5*time.Second, "handshake failure "+class, func() bool {
			return e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", class)).Len() > 0
		})
	}
	l := e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", failRejectedCert)).All()[0].ContextMap()
	if l["dialed"] != e.addr {
		t.Errorf("dialed %v, want %s", l["dialed"], e.addr)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	e := start(t, func(o *Options) { o.HandshakeTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0x16, 0x03, 0x01}) // the start of a record, then silence
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); isTimeout(err) {
		t.Fatal("the proxy kept a silent handshake open")
	}
	waitFor(t, 5*time.Second, "timeout class", func() bool {
		return e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", failTimeout)).Len() > 0
	})
}

func TestProxyProtocol(t *testing.T) {
	e := start(t, func(o *Options) { o.ProxyProtocol = true })
	raw, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	io.WriteString(raw, "PROXY TCP4 203.0.113.7 10.0.0.1 51234 48322\r\n")
	c := tls.Client(raw, e.tls)
	cl, err := wstest.Upgrade(c, "localhost", "/via-lb")
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if l := e.sessionLog("path", "/via-lb"); l["client"] != "203.0.113.7:51234" {
		t.Errorf("client %v", l["client"])
	}

	// Without the header the connection is refused and the reason logged.
	if _, err := tls.Dial("tcp", e.addr, e.tls); err == nil {
		t.Fatal("connection without PROXY header accepted")
	}
	waitFor(t, 5*time.Second, "PROXY failure log", func() bool {
		return e.logs.FilterMessage("TLS handshake failed").FilterField(zapString("class", failProxyHeader)).Len() > 0
	})
}

func TestTLSPolicy(t *testing.T) {
	e := start(t)
	// ALPN: http/1.1 is chosen even when the client prefers h2.
	c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN %q", p)
	}
	c.Close()
	// TLS 1.2 with a CBC suite only, or without forward secrecy: refused.
	for _, suite := range []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA} {
		cfg := &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}
		if c, err := tls.Dial("tcp", e.addr, cfg); err == nil {
			c.Close()
			t.Errorf("suite %s accepted", tls.CipherSuiteName(suite))
		}
	}
	// TLS 1.2 with an intermediate suite works.
	cfg := &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}
	c, err = tls.Dial("tcp", e.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// No session resumption by default, as in the reference container.
	cache := tls.NewLRUClientSessionCache(4)
	for i := range 2 {
		c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.tls.RootCAs, ServerName: "localhost", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		// TLS 1.3 tickets arrive after the handshake; a read fetches them.
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		c.Read(make([]byte, 1))
		if c.ConnectionState().DidResume {
			t.Errorf("connection %d resumed a session", i)
		}
		c.Close()
	}
}

func TestKeyExchangeSetting(t *testing.T) {
	for _, pq := range []bool{true, false} {
		e := start(t, func(o *Options) { o.TLSPostQuantum = pq })
		c, err := tls.Dial("tcp", e.addr, e.tls) // Go's client offers both
		if err != nil {
			t.Fatal(err)
		}
		got := c.ConnectionState().CurveID
		c.Close()
		want := tls.X25519
		if pq {
			want = tls.X25519MLKEM768
		}
		if got != want {
			t.Errorf("TLSPostQuantum=%v: negotiated %v, want %v", pq, got, want)
		}
	}
}

// trickle writes everything in small pieces, so the proxy reads TLS records
// in fragments: the client direction must stage partial records.
type trickle struct {
	net.Conn
	piece int
}

func (t trickle) Write(b []byte) (int, error) {
	for i := 0; i < len(b); i += t.piece {
		if _, err := t.Conn.Write(b[i:min(i+t.piece, len(b))]); err != nil {
			return i, err
		}
	}
	return len(b), nil
}

func TestFragmentedRecords(t *testing.T) {
	for _, park := range []bool{false, true} {
		t.Run(fmt.Sprintf("parking=%v", park), func(t *testing.T) {
			e := start(t, func(o *Options) {
				if park {
					o.ParkAfter = 20 * time.Millisecond
				}
			})
			raw, err := net.Dial("tcp", e.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			cl, err := wstest.Upgrade(tls.Client(trickle{raw, 7}, e.tls), "localhost", "/trickle")
			if err != nil {
				t.Fatal(err)
			}
			for i, size := range []int{1, 100, 3000, 17000} {
				msg := strings.Repeat(string(rune('a'+i)), size)
				if err := cl.Echo(msg, 10*time.Second); err != nil {
					t.Fatalf("%d bytes: %v", size, err)
				}
			}
		})
	}
}
