// Package acme obtains and renews the proxy's certificates from an ACME CA
// (Let's Encrypt, ZeroSSL, Google Trust Services, a private step-ca) for the
// names in CERT_HOSTNAMES, with CERT_MODE=acme.
//
// The ACME work is certmagic's, Caddy's certificate-management library:
// accounts, orders, challenges, storage with locks (two replicas sharing
// one volume do not order the same certificate twice), renewal with ACME
// Renewal Information, retries with backoff. This package chooses its
// settings and connects it to the proxy:
//
//   - the TLS-ALPN-01 challenge is answered on the proxy's own listener:
//     GetCertificate hands a validation handshake (ALPN "acme-tls/1") to
//     certmagic, and the proxy closes such a connection after it;
//   - the HTTP-01 challenge is answered on ACME_HTTP_PORT by HTTPHandler,
//     which redirects every other request to https://;
//   - DNS-01 goes through a libdns provider (dns.go).
//
// Certificates and the account live under CERT_DIR/acme, so a volume keeps
// them across restarts; a stored certificate that is still valid is served
// at start whether or not the CA can be reached.
package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	acmeapi "github.com/mholt/acmez/v3/acme"
	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// StorageDir is the folder under CERT_DIR that holds the ACME account,
// the certificates and their locks (certmagic's file layout).
const StorageDir = "acme"

// Options configure a Manager.
type Options struct {
	Dir   string   // CERT_DIR
	Names []string // exactly the names asked for: CERT_HOSTNAMES

	CA         string         // the ACME directory URL
	Email      string         // the account's contact, may be empty
	Roots      *x509.CertPool // trusted for the CA's HTTPS; nil: the system's
	EABKeyID   string         // external account binding, both or neither
	EABHMAC    string
	Profile    string // an ACME profile, such as Let's Encrypt's "shortlived"
	ListenHost string // LISTEN_ADDRESS, or "" for every interface
	ProxyPort  int    // the proxy's TLS port, where TLS-ALPN-01 is answered
	HTTPPort   int    // where HTTP-01 is answered; 0: no HTTP-01

	// DNS, when set, solves DNS-01 (and only DNS-01 is used).
	DNS          certmagic.DNSProvider
	DNSResolvers []string

	// CheckInterval is how often certificates are checked for renewal;
	// 0: certmagic's (10 minutes). When one is due comes from the CA's
	// renewal information (ARI), or else the last third of its lifetime.
	CheckInterval time.Duration

	Logger *zap.Logger
	// Order is told of every order's result: "obtained", "renewed" or
	// "failed" (the metric of orders by result).
	Order func(result string)
}

// Manager serves the certificates certmagic keeps.
type Manager struct {
	opts   Options
	log    *zap.Logger
	cache  *certmagic.Cache
	magic  *certmagic.Config
	issuer *certmagic.ACMEIssuer

	mu      sync.Mutex
	failure map[string]string // name → the last order's error, until one succeeds
	served  *certs.Served     // the default name's, rebuilt when certmagic's changes
}

// New makes the manager; Start begins obtaining and renewing.
func New(o Options) (*Manager, error) {
	if len(o.Names) == 0 {
		return nil, errors.New("CERT_HOSTNAMES: CERT_MODE=acme needs the names to ask for")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Order == nil {
		o.Order = func(string) {}
	}
	dir := filepath.Join(o.Dir, StorageDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("CERT_DIR %s: the ACME account and certificates are stored in %s, which cannot be made: %w", o.Dir, dir, err)
	}
	m := &Manager{opts: o, log: o.Logger, failure: map[string]string{}}
	clog := o.Logger.Named("acme")
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		RenewCheckInterval: o.CheckInterval,
		Logger:             clog,
	})
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: dir},
		DefaultServerName:  o.Names[0],
		FallbackServerName: o.Names[0],
		OnEvent:            m.onEvent,
		Logger:             clog,
	})
	iss := certmagic.ACMEIssuer{
		CA:     o.CA,
		Email:  o.Email,
		Agreed: true, // CERT_MODE=acme is the operator's agreement to the CA's terms (README)
		// The proxy's own listener answers TLS-ALPN-01 and the HTTP-01
		// listener is its own too: certmagic finds the ports taken and
		// leaves them to us rather than opening a server of its own.
		ListenHost:              o.ListenHost,
		AltTLSALPNPort:          o.ProxyPort,
		AltHTTPPort:             o.HTTPPort,
		DisableHTTPChallenge:    o.HTTPPort == 0,
		DisableTLSALPNChallenge: o.ProxyPort == 0,
		TrustedRoots:            o.Roots,
		Profile:                 o.Profile,
		Logger:                  clog,
	}
	if o.EABKeyID != "" {
		iss.ExternalAccount = &acmeapi.EAB{KeyID: o.EABKeyID, MACKey: o.EABHMAC}
	}
	if o.DNS != nil {
		// Caddy's rule: with a DNS provider, DNS-01 is the only challenge.
		iss.DisableHTTPChallenge, iss.DisableTLSALPNChallenge = true, true
		iss.DNS01Solver = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider: o.DNS,
			Resolvers:   o.DNSResolvers,
			Logger:      clog,
		}}
	}
	m.issuer = certmagic.NewACMEIssuer(m.magic, iss)
	m.magic.Issuers = []certmagic.Issuer{m.issuer}
	return m, nil
}

// Start loads the stored certificates and obtains or renews the others in
// the background, retrying with backoff, until ctx ends. The proxy's
// listeners must be open first: certmagic would otherwise take their ports
// for challenge servers of its own.
func (m *Manager) Start(ctx context.Context) error {
	m.log.Info("certificates from an ACME CA", zap.Strings("names", m.opts.Names), zap.String("ca", m.opts.CA),
		zap.Strings("challenges", m.challenges()), zap.String("storage", filepath.Join(m.opts.Dir, StorageDir)))
	return m.magic.ManageAsync(ctx, m.opts.Names)
}

// Stop ends certmagic's maintenance.
func (m *Manager) Stop() { m.cache.Stop() }

// challenges lists the challenge types in use, for the log.
func (m *Manager) challenges() []string {
	switch {
	case m.opts.DNS != nil:
		return []string{"dns-01"}
	case m.opts.HTTPPort != 0:
		return []string{"tls-alpn-01", "http-01"}
	default:
		return []string{"tls-alpn-01"}
	}
}

// GetCertificate fits tls.Config.GetCertificate: a validation handshake gets
// its challenge certificate, every other the managed certificate for its
// server name (the first name's when it sent none or an unknown one).
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.magic.GetCertificate(hello)
}

// IsChallenge reports whether a handshake's negotiated protocol is the
// TLS-ALPN-01 validation's: the connection carries nothing after it.
func IsChallenge(state tls.ConnectionState) bool {
	return state.NegotiatedProtocol == acmez.ACMETLS1Protocol
}

// ALPN is the protocol to offer beside http/1.1 for TLS-ALPN-01.
const ALPN = acmez.ACMETLS1Protocol

// HTTPHandler answers HTTP-01 challenges and sends every other request to
// https:// on the proxy's port.
func (m *Manager) HTTPHandler() http.Handler {
	return m.issuer.HTTPChallengeHandler(http.HandlerFunc(m.redirect))
}

// redirect sends a plain-HTTP request to the same host and path over
// https on the proxy's port. The host is one of the names asked for, never
// the request's own Host header, so nothing a client sends is reflected
// into a Location it did not already own.
func (m *Manager) redirect(w http.ResponseWriter, r *http.Request) {
	host := m.opts.Names[0]
	if h := strings.ToLower(stripPort(r.Host)); m.covers(h) {
		host = h
	}
	if strings.Contains(host, ":") { // an IPv6 address
		host = "[" + host + "]"
	}
	target := "https://" + host
	if m.opts.ProxyPort != 443 && m.opts.ProxyPort != 0 {
		target += fmt.Sprintf(":%d", m.opts.ProxyPort)
	}
	path := r.URL.EscapedPath()
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		path = "/"
	}
	target += path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	w.Header().Set("Connection", "close")
	http.Redirect(w, r, target, http.StatusPermanentRedirect)
}

// covers reports whether host is one of the names asked for, or matches
// one of its wildcards.
func (m *Manager) covers(host string) bool {
	for _, n := range m.opts.Names {
		if n == host || strings.HasPrefix(n, "*.") && strings.Count(host, ".") == strings.Count(n, ".") && strings.HasSuffix(host, n[1:]) {
			return true
		}
	}
	return false
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}
