package proxy

import (
	"crypto/tls"
	"errors"
	"net"
	"reflect"
	"testing"
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
