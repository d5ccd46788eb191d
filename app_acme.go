package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/acme"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/config"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/bindcap"
	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/proxy"
)

// The certificate in service comes from the files in CERT_DIR (certs) or,
// with CERT_MODE=acme, from an ACME CA (acme); these are the few places
// where the two differ.

// newCertificates makes the certificate's source. Its errors are the
// user's to fix and name the setting.
func (a *app) newCertificates(hostname string) error {
	cfg := a.cfg
	if cfg.CertMode == string(certs.ModeACME) {
		return a.newACME()
	}
	var err error
	a.certs, err = certs.NewManager(certs.Options{
		Dir:    cfg.CertDir,
		Names:  certs.WantedNames(hostname, certs.InterfaceIPs(), cfg.CertHostnames),
		Label:  hostname,
		Mode:   certs.Mode(cfg.CertMode),
		Logger: a.log,
	})
	return err
}

// newACME makes the ACME manager; nothing contacts the CA before serve.
func (a *app) newACME() error {
	cfg := a.cfg
	if p := certs.UserCertificate(cfg.CertDir); p != "" {
		return fmt.Errorf("CERT_MODE=acme: %s is your own certificate, which this mode would never serve; remove it from CERT_DIR, or unset CERT_MODE to serve it", p)
	}
	var roots *x509.CertPool
	if cfg.ACMECARoots != "" {
		data, err := os.ReadFile(cfg.ACMECARoots)
		if err != nil {
			return fmt.Errorf("ACME_CA_ROOTS: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(data) {
			return fmt.Errorf("ACME_CA_ROOTS=%s: no PEM certificate could be read from it", cfg.ACMECARoots)
		}
	}
	var dns certmagic.DNSProvider
	var resolvers []string
	if cfg.ACMEDNSProvider != "" {
		// Validate has accepted both: the errors cannot happen.
		server, _ := config.DNSServer(cfg.RFC2136Server)
		for _, r := range cfg.ACMEDNSResolvers {
			r, _ = config.DNSServer(r)
			resolvers = append(resolvers, r)
		}
		var err error
		dns, err = acme.NewDNSProvider(context.Background(), acme.DNSOptions{
			Provider:      cfg.ACMEDNSProvider,
			RFC2136Server: server, RFC2136KeyName: cfg.RFC2136KeyName, RFC2136Key: cfg.RFC2136Key, RFC2136KeyAlg: cfg.RFC2136KeyAlg,
			CloudflareToken: cfg.CloudflareToken,
			Route53ZoneID:   cfg.Route53ZoneID,
		})
		if err != nil {
			return err
		}
	}
	profile := ""
	if config.LetsEncrypt(cfg.ACMECA) && hasIP(cfg.CertHostnames) {
		profile = "shortlived" // Let's Encrypt issues IP addresses on this profile only
	}
	o := acme.Options{
		Dir: cfg.CertDir, Names: cfg.CertHostnames,
		CA: cfg.ACMECA, Email: cfg.ACMEEmail, Roots: roots, EABKeyID: cfg.ACMEEABKeyID, EABHMAC: cfg.ACMEEABHMAC,
		Profile: profile, ListenHost: cfg.ListenAddress, ProxyPort: int(cfg.ProxyPort), HTTPPort: int(cfg.ACMEHTTPPort),
		DNS: dns, DNSResolvers: resolvers, CheckInterval: cfg.ACMERenewCheck.D(),
		Logger: a.log, Order: a.metrics.ACMEOrder,
	}
	var err error
	a.acme, err = acme.New(o)
	return err
}

func hasIP(names []string) bool {
	for _, n := range names {
		if net.ParseIP(n) != nil {
			return true
		}
	}
	return false
}

// currentCert is the certificate in service; nil while an ACME CA's first
// one is on its way.
func (a *app) currentCert() *certs.Served {
	if a.acme != nil {
		return a.acme.Current()
	}
	return a.certs.Current()
}

func (a *app) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if a.acme != nil {
		c, err := a.acme.GetCertificate(hello)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", proxy.ErrNoCertificate, err)
		}
		return c, nil
	}
	return a.certs.GetCertificate(hello)
}

// checkName is nil with ACME: the names are exactly CERT_HOSTNAMES, and
// another name gets the first name's certificate.
func (a *app) checkName() func(name, client string) {
	if a.acme != nil {
		return nil
	}
	return a.certs.CheckName
}

// certificateExpiry is the expiry metric: NaN (unknown) before there is a
// certificate.
func (a *app) certificateExpiry() float64 {
	if s := a.currentCert(); s != nil {
		return float64(s.Leaf().NotAfter.Unix())
	}
	return math.NaN()
}

// certificateReady is the certificate's part of /readyz.
func (a *app) certificateReady() (bool, string) {
	if a.acme != nil {
		return a.acme.Ready()
	}
	return true, ""
}

// listenACMEHTTP opens ACME_HTTP_PORT for HTTP-01 challenges, under the
// per-client limits. It must be open before the ACME manager starts, or
// certmagic would open a challenge server of its own there.
func (a *app) listenACMEHTTP() error {
	if a.acme == nil || a.cfg.ACMEHTTPPort == 0 {
		return nil
	}
	addr := net.JoinHostPort(a.cfg.ListenAddress, strconv.Itoa(int(a.cfg.ACMEHTTPPort)))
	ln, err := a.listenOn("ACME_HTTP_PORT", addr, func(network, addr string) (net.Listener, error) {
		return bindcap.Listen(func() (net.Listener, error) { return net.Listen(network, addr) })
	})
	if err != nil {
		return err
	}
	if a.limits != nil {
		ln = a.limits.Listener(ln, a.metrics.ClientLimited)
	}
	a.httpLn = ln
	a.httpSrv = &http.Server{
		Handler:           a.acme.HTTPHandler(),
		ReadHeaderTimeout: a.cfg.HeadTimeout.D(),
		ReadTimeout:       a.cfg.HeadTimeout.D(),
		WriteTimeout:      a.cfg.HeadTimeout.D(),
		IdleTimeout:       a.cfg.HeadTimeout.D(),
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(a.log.Named("acme-http")),
	}
	return nil
}

// startACME serves the HTTP-01 port and starts obtaining and renewing,
// until ctx ends.
func (a *app) startACME(ctx context.Context) {
	if a.acme == nil {
		return
	}
	if a.httpSrv != nil {
		go func() {
			if err := a.httpSrv.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("ACME HTTP-01 listener failed", zap.Error(err))
			}
		}()
		a.log.Info("answering ACME HTTP-01 challenges; every other request there is redirected to https://",
			zap.String("address", a.httpLn.Addr().String()))
	}
	if err := a.acme.Start(ctx); err != nil {
		a.log.Error("ACME certificate management did not start", zap.Error(err))
	}
}

// stopACME closes the HTTP-01 listener and ends certmagic's maintenance.
func (a *app) stopACME() {
	if a.acme == nil {
		return
	}
	if a.httpSrv != nil {
		a.httpSrv.Close()
	}
	a.acme.Stop()
}
