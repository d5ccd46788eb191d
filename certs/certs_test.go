package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"
)

// issue makes a certificate for key, signed by parent (self-signed when nil).
func issue(t *testing.T, key, parentKey any, parent *x509.Certificate, cn string, ca bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, DNSNames: []string{cn},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	pub := key.(crypto.Signer).Public()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func pemBlock(typ string, b []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})
}

func TestParseKeyPairFormatsAndOrder(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey := mustEd(t)
	pkcs8 := func(k any) []byte { b, _ := x509.MarshalPKCS8PrivateKey(k); return pemBlock("PRIVATE KEY", b) }
	sec1, _ := x509.MarshalECPrivateKey(ecKey)

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := issue(t, caKey, nil, nil, "ca", true)

	cases := []struct {
		name string
		key  any
		kpem []byte
	}{
		{"RSA PKCS#1", rsaKey, pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))},
		{"RSA PKCS#8", rsaKey, pkcs8(rsaKey)},
		{"ECDSA SEC1", ecKey, pemBlock("EC PRIVATE KEY", sec1)},
		{"ECDSA PKCS#8", ecKey, pkcs8(ecKey)},
		{"Ed25519 PKCS#8", edKey, pkcs8(edKey)},
	}
	for _, tc := range cases {
		leaf := issue(t, tc.key, caKey, ca, "leaf.example", false)
		leafPEM, caPEM := pemBlock("CERTIFICATE", leaf.Raw), pemBlock("CERTIFICATE", ca.Raw)
		orders := map[string][][]byte{
			"cert chain key": {leafPEM, caPEM, tc.kpem},
			"key first":      {tc.kpem, leafPEM, caPEM},
			"ca first":       {caPEM, tc.kpem, leafPEM},
		}
		for oname, parts := range orders {
			got, err := ParseKeyPair(bytes.Join(parts, nil))
			if err != nil {
				t.Fatalf("%s, %s: %v", tc.name, oname, err)
			}
			if !bytes.Equal(got.Certificate[0], leaf.Raw) || len(got.Certificate) != 2 || !bytes.Equal(got.Certificate[1], ca.Raw) {
				t.Errorf("%s, %s: leaf not first or chain lost", tc.name, oname)
			}
			if got.Leaf.Subject.CommonName != "leaf.example" {
				t.Errorf("%s, %s: Leaf %v", tc.name, oname, got.Leaf.Subject)
			}
		}
	}
}

func mustEd(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestParseKeyPairErrors(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c1 := pemBlock("CERTIFICATE", issue(t, k1, nil, nil, "a", false).Raw)
	k2der, _ := x509.MarshalPKCS8PrivateKey(k2)
	k1der, _ := x509.MarshalPKCS8PrivateKey(k1)
	cases := map[string]struct {
		data []byte
		want error
	}{
		"no cert":  {pemBlock("PRIVATE KEY", k1der), ErrNoCertificate},
		"no key":   {c1, ErrNoKey},
		"mismatch": {append(c1, pemBlock("PRIVATE KEY", k2der)...), ErrKeyMismatch},
		"empty":    {nil, ErrNoCertificate},
	}
	for name, tc := range cases {
		if _, err := ParseKeyPair(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	enc := append(c1, pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3})...)
	if _, err := ParseKeyPair(enc); err == nil {
		t.Error("encrypted key accepted")
	}
}

func TestGenerateSelfSigned(t *testing.T) {
	names := WantedNames("gpu-box", []net.IP{net.ParseIP("192.168.1.50")}, []string{"vr.lab.example", "192.168.1.50", "LOCALHOST", "fe80::1"})
	g, err := GenerateSelfSigned(names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ParseKeyPair(append(g.CertPEM, g.KeyPEM...))
	if err != nil {
		t.Fatal(err)
	}
	c := kp.Leaf
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || c.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", c.PublicKey)
	}
	if want := []string{"localhost", "gpu-box", "vr.lab.example"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNS SANs %v, want %v", c.DNSNames, want)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1", "192.168.1.50", "fe80::1"}; !slices.Equal(ips, want) {
		t.Errorf("IP SANs %v, want %v", ips, want)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("EKU %v", c.ExtKeyUsage)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d > 826*24*time.Hour {
		t.Errorf("valid for %v: Apple refuses more than 825 days", d)
	}
	for _, host := range []string{"localhost", "gpu-box", "vr.lab.example", "192.168.1.50", "::1"} {
		if err := c.VerifyHostname(host); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "vr.lab.example"}); err != nil {
		t.Errorf("does not verify against itself: %v", err)
	}
}
