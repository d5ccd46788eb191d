package proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"
)

// With ACMEChallenges, a client offering only "acme-tls/1" (an ACME CA's
// TLS-ALPN-01 validation) completes its handshake with what GetCertificate
// gives it, and the connection then ends as an answered challenge; browsers,
// which offer http/1.1, are served as before.
func TestACMEChallengeHandshakeEnds(t *testing.T) {
	cert, _ := testCert(t)
	var (
		mu    sync.Mutex
		asked []string
	)
	e := start(t, func(o *Options) {
		o.ACMEChallenges = true
		o.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, fmt.Sprint(h.SupportedProtos))
			return cert, nil
		}
	})
	c, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "xr.example.com", NextProtos: []string{ACMEALPN}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.ConnectionState().NegotiatedProtocol; got != ACMEALPN {
		t.Fatalf("negotiated %q", got)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the validation handshake: %v, want the connection closed", err)
	}
	e.sessionLog("reason", "acme challenge answered")
	ws := e.ws("/sign_in?peer_id=1")
	if err := ws.Echo("a browser", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[0] != "[acme-tls/1]" {
		t.Errorf("GetCertificate saw %v", asked)
	}
}

// Without ACMEChallenges the protocol is not offered: a client that offers
// only it fails its handshake (no common application protocol).
func TestACMEChallengeOffOffersNothing(t *testing.T) {
	e := start(t)
	if c, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ACMEALPN}}); err == nil {
		c.Close()
		t.Fatal("acme-tls/1 negotiated with ACMEChallenges off")
	}
}

// A GetCertificate error wrapping ErrNoCertificate fails the handshake as
// "no certificate yet", not as the client's fault.
func TestNoCertificateYetClass(t *testing.T) {
	e := start(t, func(o *Options) {
		o.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, fmt.Errorf("%w: no certificate available for 'xr.example.com'", ErrNoCertificate)
		}
	})
	if c, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "xr.example.com"}); err == nil {
		c.Close()
		t.Fatal("handshake succeeded without a certificate")
	}
	waitFor(t, 5*time.Second, "the handshake failure logged", func() bool {
		for _, l := range e.logs.FilterMessage("TLS handshake failed").All() {
			if l.ContextMap()["class"] == failNoCert {
				return true
			}
		}
		return false
	})
}
