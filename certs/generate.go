package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Validity of a generated server certificate: Apple platforms refuse TLS
// server certificates valid for more than 825 days
// (https://support.apple.com/en-us/103769).
const generatedValidity = 825 * 24 * time.Hour

// clockSkew backdates certificates, so a headset whose clock runs a little
// behind does not see a certificate from the future.
const clockSkew = time.Hour

// Generated is a freshly made key pair in PEM form.
type Generated struct {
	CertPEM, KeyPEM []byte
}

// PEM is the certificate then the key, the layout of server.pem.
func (g Generated) PEM() []byte { return append(append([]byte{}, g.CertPEM...), g.KeyPEM...) }

// GenerateSelfSigned makes a self-signed ECDSA P-256 server certificate for
// names: IP addresses become IP SANs, everything else DNS SANs.
func GenerateSelfSigned(names []string, now time.Time) (Generated, error) {
	return makeLeaf(names, now, nil, nil)
}

// makeLeaf makes a server certificate for names, signed by parent with
// parentKey, or self-signed when parent is nil. It never outlives parent.
func makeLeaf(names []string, now time.Time, parent *x509.Certificate, parentKey crypto.Signer) (Generated, error) {
	key, err := newKey()
	if err != nil {
		return Generated{}, err
	}
	tmpl, err := leafTemplate(names, now)
	if err != nil {
		return Generated{}, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	} else if parent.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	return sign(tmpl, parent, key.Public(), parentKey, key)
}

// leafTemplate describes a server certificate for names.
func leafTemplate(names []string, now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"cloudxr-wss-proxy"}},
		NotBefore:             now.Add(-clockSkew),
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
	return tmpl, nil
}

// sign creates tmpl for pub, signed by parent's key, and encodes it with
// key (the new certificate's own private key).
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer, key crypto.Signer) (Generated, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
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

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return key, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	return serial, nil
}
