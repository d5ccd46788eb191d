package certs

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"time"
)

// caValidity: the root a headset trusts once should outlive the hardware.
const caValidity = 10 * 365 * 24 * time.Hour

// localDNSSuffixes are names a LAN commonly uses; the CA may sign for them
// (and subdomains) without being re-created.
var localDNSSuffixes = []string{"localhost", "local", "localdomain", "lan", "home.arpa", "internal"}

// privateRanges are the addresses the CA may sign for beside the ones known
// when it is made: loopback, RFC 1918, shared address space (RFC 6598),
// unique local IPv6.
var privateRanges = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "::1/128", "fc00::/7"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

// CA is the proxy's local certificate authority: trusted once on a
// headset, it signs every server certificate the proxy issues later.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  Generated
}

// NewCA makes a CA whose name constraints (RFC 5280 section 4.2.1.10) allow
// only local names and addresses, plus names: a stolen CA key cannot be used
// to impersonate public sites to a headset that trusts it.
// label names the machine in the CA's subject, so a headset's list of
// trusted roots says where each came from.
func NewCA(label string, names []string, now time.Time) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "cloudxr-wss-proxy local CA (" + label + ")",
			Organization: []string{"cloudxr-wss-proxy"},
		},
		NotBefore:                   now.Add(-clockSkew),
		NotAfter:                    now.Add(caValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         append([]string(nil), localDNSSuffixes...),
		PermittedIPRanges:           append([]*net.IPNet(nil), privateRanges...),
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !inRanges(ip, tmpl.PermittedIPRanges) {
				bits := 8 * len(ip.To16())
				if v4 := ip.To4(); v4 != nil {
					ip, bits = v4, 32
				}
				tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			}
			continue
		}
		d := strings.TrimPrefix(strings.ToLower(n), "*.")
		if !dnsPermitted(d, tmpl.PermittedDNSDomains) {
			tmpl.PermittedDNSDomains = append(tmpl.PermittedDNSDomains, d)
		}
	}
	g, err := sign(tmpl, tmpl, key.Public(), key, key)
	if err != nil {
		return nil, err
	}
	return ParseCA(g)
}

// ParseCA reads a CA from its PEM files.
func ParseCA(g Generated) (*CA, error) {
	kp, err := ParseKeyPair(g.PEM())
	if err != nil {
		return nil, err
	}
	if !kp.Leaf.IsCA {
		return nil, fmt.Errorf("not a CA certificate")
	}
	return &CA{Cert: kp.Leaf, Key: kp.PrivateKey.(crypto.Signer), PEM: g}, nil
}

// Permits reports whether the CA's name constraints allow name.
func (ca *CA) Permits(name string) bool {
	if ip := net.ParseIP(name); ip != nil {
		return len(ca.Cert.PermittedIPRanges) == 0 || inRanges(ip, ca.Cert.PermittedIPRanges)
	}
	d := strings.TrimPrefix(strings.ToLower(name), "*.")
	return len(ca.Cert.PermittedDNSDomains) == 0 || dnsPermitted(d, ca.Cert.PermittedDNSDomains)
}

// Issue makes a server certificate for names, signed by the CA.
func (ca *CA) Issue(names []string, now time.Time) (Generated, error) {
	return makeLeaf(names, now, ca.Cert, ca.Key)
}

func inRanges(ip net.IP, ranges []*net.IPNet) bool {
	for _, r := range ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

func dnsPermitted(d string, domains []string) bool {
	for _, p := range domains {
		if d == p || strings.HasSuffix(d, "."+p) {
			return true
		}
	}
	return false
}
