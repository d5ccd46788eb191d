// Package certs loads, generates and serves the proxy's TLS certificate.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// ErrNoCertificate and ErrNoKey say which half of a key pair a file lacks.
var (
	ErrNoCertificate = errors.New("no CERTIFICATE block")
	ErrNoKey         = errors.New("no PRIVATE KEY block")
	ErrKeyMismatch   = errors.New("no certificate matches the private key")
)

// ParseKeyPair reads a certificate chain and its private key from PEM data in
// any order, as HAProxy's server.pem allows. The leaf is the certificate that
// matches the key; it is put first, the others follow in file order. Keys may
// be PKCS#1 (RSA), SEC1 (EC) or PKCS#8 (RSA, ECDSA, Ed25519).
func ParseKeyPair(data []byte) (tls.Certificate, error) {
	var (
		certs []*x509.Certificate
		key   crypto.Signer
	)
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return tls.Certificate{}, fmt.Errorf("parsing certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			if key != nil {
				return tls.Certificate{}, errors.New("more than one private key")
			}
			k, err := parseKey(block)
			if err != nil {
				return tls.Certificate{}, err
			}
			key = k
		}
		// Other blocks (EC PARAMETERS, DH PARAMETERS) are ignored, as
		// HAProxy does.
	}
	if len(certs) == 0 {
		return tls.Certificate{}, ErrNoCertificate
	}
	if key == nil {
		return tls.Certificate{}, ErrNoKey
	}
	leaf := -1
	for i, c := range certs {
		if samePublicKey(c.PublicKey, key.Public()) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return tls.Certificate{}, ErrKeyMismatch
	}
	out := tls.Certificate{PrivateKey: key, Leaf: certs[leaf]}
	out.Certificate = append(out.Certificate, certs[leaf].Raw)
	for i, c := range certs {
		if i != leaf {
			out.Certificate = append(out.Certificate, c.Raw)
		}
	}
	return out, nil
}

func parseKey(block *pem.Block) (crypto.Signer, error) {
	if block.Headers["Proc-Type"] != "" {
		return nil, errors.New("the private key is encrypted; the proxy needs it unencrypted")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("the private key is encrypted; the proxy needs it unencrypted")
	default:
		return nil, fmt.Errorf("unsupported key block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", block.Type, err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// Fingerprint is the SHA-256 of a certificate's DER bytes in the notation
// browsers and openssl show: upper-case hex pairs joined by colons.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b bytes.Buffer
	for i, v := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", v)
	}
	return b.String()
}
