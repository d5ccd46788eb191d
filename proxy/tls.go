package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"reflect"

	proxyproto "github.com/pires/go-proxyproto"
)

// TLSConfig is the listener's TLS configuration: TLS 1.2 and up, Mozilla's
// "intermediate" AEAD suites with forward secrecy for 1.2 (TLS 1.3 suites
// are all of that kind), ALPN http/1.1 only, as the HAProxy container.
// getCert supplies the certificate per handshake (see certs.Provider).
// postQuantum offers the hybrid X25519MLKEM768 key exchange first, as
// Mozilla's intermediate profile now does; without it the groups are those
// of the HAProxy container (X25519, P-256, P-384), which costs less CPU per
// handshake.
func TLSConfig(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), sessionTickets, postQuantum, acmeChallenges bool) *tls.Config {
	protos := []string{"http/1.1"}
	if acmeChallenges {
		// Chosen only by a client that offers nothing else: the CA's
		// validation (RFC 8737); browsers never offer it.
		protos = append(protos, ACMEALPN)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:             protos,
		CurvePreferences:       curves(postQuantum),
		GetCertificate:         getCert,
		SessionTicketsDisabled: !sessionTickets,
	}
}

// ACMEALPN is the ALPN protocol of the TLS-ALPN-01 challenge.
const ACMEALPN = "acme-tls/1"

func curves(postQuantum bool) []tls.CurveID {
	classic := []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	if postQuantum {
		return append([]tls.CurveID{tls.X25519MLKEM768}, classic...)
	}
	return classic
}

// helloKey carries a session's *helloInfo in the handshake context, so the
// config's hooks can record what the client offered.
type helloKey struct{}

// helloInfo is what a ClientHello told us, for the session log and for
// classifying a failed handshake.
type helloInfo struct {
	seen     bool
	sni      string
	maxVers  uint16
	localDst string // the address the client dialed
}

// requestedName is the name the client wants the certificate to cover: its
// SNI, or, when it sent none (clients that dial an IP address), the local
// address it dialed.
func (h *helloInfo) requestedName() string {
	if h.sni != "" {
		return h.sni
	}
	host, _, err := net.SplitHostPort(h.localDst)
	if err != nil {
		return ""
	}
	return host
}

// recordHello wraps a config so every handshake records its ClientHello in
// the *helloInfo found in its context. GetConfigForClient runs before
// version negotiation, so even a client we cannot talk to is described.
func recordHello(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if hi, ok := h.Context().Value(helloKey{}).(*helloInfo); ok {
			hi.seen = true
			hi.sni = h.ServerName
			if len(hi.sni) > 253 || !printableASCII(hi.sni) {
				// crypto/tls takes any bytes up to 64 KiB: the log and
				// CheckName get a short quoted form, never a host name.
				hi.sni = quoteValue(hi.sni)
			}
			for _, v := range h.SupportedVersions {
				hi.maxVers = max(hi.maxVers, v)
			}
		}
		return nil, nil
	}
	return cfg
}

// readProxyHeader reads a PROXY protocol v1 or v2 header (required: the
// policy is explicit) with go-proxyproto's parser, under the connection's
// deadline. rest is what the parser read past the header: the start of the
// TLS handshake.
func readProxyHeader(c net.Conn) (h *proxyproto.Header, rest []byte, err error) {
	br := bufio.NewReaderSize(c, 256)
	if h, err = proxyproto.Read(br); err != nil {
		return nil, nil, err
	}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		rest = append([]byte(nil), b...)
	}
	return h, rest, nil
}

// Handshake failure classes, as logged.
const (
	failNoData       = "closed before sending anything"
	failNotTLS       = "not TLS"
	failPlainHTTP    = "plain HTTP on the TLS port"
	failTimeout      = "timeout"
	failRejectedCert = "client rejected our certificate"
	failProtocol     = "protocol mismatch"
	failClientAbort  = "client aborted"
	failProxyHeader  = "bad PROXY protocol header"
	failNoCert       = "no certificate yet"
	failOther        = "handshake error"
)

// ErrNoCertificate is what GetCertificate's error wraps when there is no
// certificate for the name yet (an ACME CA's first one is on its way): the
// handshake fails as "no certificate yet", not as the client's fault.
var ErrNoCertificate = errors.New("no certificate for this name yet")

// classifyHandshake names why a handshake failed, and whether the client
// spoke plain HTTP to the TLS port (then a 400 can still be written to
// rec.Conn).
func classifyHandshake(err error, hi *helloInfo) (class string, plain net.Conn) {
	var rec tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.Is(err, ErrNoCertificate):
		return failNoCert, nil
	case errors.As(err, &rec) && rec.Conn != nil:
		if looksLikeHTTP(rec.RecordHeader[:]) {
			return failPlainHTTP, rec.Conn
		}
		return failNotTLS, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return failTimeout, nil
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports a received alert as an OpError whose Err is
		// its unexported alert type, a uint8; read the code without
		// matching the message text.
		if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 && certAlerts[uint8(v.Uint())] {
			return failRejectedCert, nil
		}
		return failClientAbort, nil
	case !hi.seen && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		return failNoData, nil
	case hi.seen && hi.maxVers < tls.VersionTLS12:
		return failProtocol, nil
	case hi.seen && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed):
		// We answered the hello with an alert: no common version, suite,
		// curve or application protocol.
		return failProtocol, nil
	case hi.seen:
		return failClientAbort, nil
	}
	return failOther, nil
}

// certAlerts are the TLS alerts a client sends when it does not accept our
// certificate (RFC 8446 section 6.2).
var certAlerts = map[uint8]bool{
	42: true, // bad_certificate
	43: true, // unsupported_certificate
	44: true, // certificate_revoked
	45: true, // certificate_expired
	46: true, // certificate_unknown
	48: true, // unknown_ca
}

// looksLikeHTTP reports whether a would-be TLS record header is the start
// of an HTTP request (as net/http does for its own 400 answer).
func looksLikeHTTP(h []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE"} {
		if string(h) == m {
			return true
		}
	}
	return false
}
