package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Validity of a generated certificate: Apple platforms refuse TLS server
// certificates valid for more than 825 days
// (https://support.apple.com/en-us/103769).
const generatedValidity = 825 * 24 * time.Hour

// Generated is a freshly made key pair in PEM form.
type Generated struct {
	CertPEM, KeyPEM []byte
}

// GenerateSelfSigned makes an ECDSA P-256 certificate for the given names:
// IP addresses become IP SANs, everything else DNS SANs. The first name is
// also the subject's common name.
func GenerateSelfSigned(names []string, now time.Time) (Generated, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Generated{}, fmt.Errorf("generating key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Generated{}, fmt.Errorf("generating serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"cloudxr-wss-proxy"}},
		// An hour back, so a headset whose clock runs a little behind
		// does not see a certificate from the future.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(generatedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return Generated{}, fmt.Errorf("creating certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Generated{}, fmt.Errorf("encoding key: %w", err)
	}
	return Generated{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// DefaultNames lists the names a generated certificate covers: loopback,
// the host name, and the extra names the user gave, without duplicates.
func DefaultNames(hostname string, extra []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if hostname != "" {
		names = append(names, hostname)
	}
	names = append(names, extra...)
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		key := strings.ToLower(n)
		if ip := net.ParseIP(n); ip != nil {
			key = ip.String()
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, n)
		}
	}
	return out
}
