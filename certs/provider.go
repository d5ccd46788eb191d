package certs

import (
	"crypto/tls"
	"sync/atomic"
)

// Provider hands the current certificate to TLS handshakes. Swapping it is
// one atomic store, so a reload never blocks or disturbs a handshake, and a
// handshake does no parsing of its own.
type Provider struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewProvider serves c until Set is called.
func NewProvider(c *tls.Certificate) *Provider {
	p := &Provider{}
	p.cur.Store(c)
	return p
}

// Set makes c the certificate for new handshakes.
func (p *Provider) Set(c *tls.Certificate) { p.cur.Store(c) }

// Current returns the certificate being served.
func (p *Provider) Current() *tls.Certificate { return p.cur.Load() }

// GetCertificate fits tls.Config.GetCertificate.
func (p *Provider) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cur.Load(), nil
}
