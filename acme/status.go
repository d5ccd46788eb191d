package acme

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/certs"
)

// onEvent follows certmagic's events: orders' results for the metric and
// for readiness (the last failure per name, until an order succeeds).
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		m.mu.Lock()
		delete(m.failure, name)
		m.mu.Unlock()
		if renewal {
			m.opts.Order("renewed")
		} else {
			m.opts.Order("obtained")
		}
	case "cert_failed":
		why := fmt.Sprint(data["error"])
		m.mu.Lock()
		if slices.Contains(m.opts.Names, name) { // bounded: one entry per name asked for
			m.failure[name] = why
		}
		m.mu.Unlock()
		m.opts.Order("failed")
		msg := "the ACME CA did not issue a certificate; retrying with backoff"
		if err, _ := data["error"].(error); errors.Is(err, ErrDNSRefused) {
			msg = "the DNS server refused to write the DNS-01 challenge's record, so no certificate was issued; retrying with backoff"
		}
		m.log.Warn(msg, zap.String("name", name), zap.Bool("renewal", renewal), zap.String("error", why))
	}
	return nil
}

// Ready reports whether every name has a certificate to serve, and if not,
// why: the names still waiting and the CA's last answer for each.
func (m *Manager) Ready() (bool, string) {
	var waiting []string
	for _, n := range m.opts.Names {
		if _, ok := m.newest(n); !ok {
			waiting = append(waiting, n)
		}
	}
	if len(waiting) == 0 {
		return true, ""
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	why := "no certificate yet from " + m.opts.CA + " for " + strings.Join(waiting, ", ")
	for _, n := range waiting {
		if f, ok := m.failure[n]; ok {
			why += fmt.Sprintf("; %s: %s", n, f)
		}
	}
	return false, why
}

// newest returns the latest-expiring certificate certmagic holds for name,
// and whether there is one.
func (m *Manager) newest(name string) (certmagic.Certificate, bool) {
	var best certmagic.Certificate
	found := false
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf != nil && (!found || c.Leaf.NotAfter.After(best.Leaf.NotAfter)) {
			best, found = c, true
		}
	}
	return best, found
}

// Current returns the first name's certificate as the page, the status and
// the expiry metric show it, or nil before there is one.
func (m *Manager) Current() *certs.Served {
	chosen, ok := m.newest(m.opts.Names[0])
	if !ok {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.served != nil && m.served.Cert.Leaf == chosen.Leaf {
		return m.served
	}
	tc := chosen.Certificate
	cert := &certs.Served{Cert: &tc, Anchor: chosen.Leaf, Source: "ACME CA " + m.opts.CA, Managed: true, Mode: certs.ModeACME}
	if n := len(tc.Certificate); n > 1 {
		if top, err := x509.ParseCertificate(tc.Certificate[n-1]); err == nil {
			cert.Anchor = top
		}
	}
	m.served = cert
	return cert
}

// Names are the names asked for.
func (m *Manager) Names() []string { return slices.Clone(m.opts.Names) }
