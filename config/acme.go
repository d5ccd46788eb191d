package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// DNS providers ACME_DNS_PROVIDER names.
const (
	DNSRFC2136    = "rfc2136"
	DNSCloudflare = "cloudflare"
	DNSRoute53    = "route53"
)

// Public ACME CAs and whether they issue certificates for IP addresses.
// Let's Encrypt does, on its short-lived profile only (six days); Google
// Trust Services and ZeroSSL's ACME endpoint do not. A CA not listed here
// (a private one, Pebble) is asked, and answers for itself.
var acmeCAsWithoutIPs = map[string]string{
	"dv.acme-v02.api.pki.goog": "Google Trust Services",
	"acme.zerossl.com":         "ZeroSSL",
}

// LetsEncrypt reports whether the ACME directory is Let's Encrypt's
// (production or staging): IP addresses then need its "shortlived" profile.
func LetsEncrypt(directory string) bool {
	u, err := url.Parse(directory)
	return err == nil && strings.HasSuffix(u.Hostname(), ".api.letsencrypt.org")
}

// validateACME checks the settings of CERT_MODE=acme. The DNS provider's
// credentials that are files or an SDK's chain (Route 53) are checked when
// the provider is made (acme.New), with the same kind of line.
func (c *Config) validateACME(bad badFunc) {
	if len(c.CertHostnames) == 0 {
		bad("CERT_HOSTNAMES", "", "CERT_MODE=acme asks the CA for exactly these names; list the public DNS names that reach this proxy")
	}
	u, err := url.Parse(c.ACMECA)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		bad("ACME_CA", c.ACMECA, "want the https:// URL of an ACME directory")
	}
	if e := c.ACMEEmail; e != "" && (strings.Count(e, "@") != 1 || strings.ContainsAny(e, " <>\"") || strings.HasPrefix(e, "@") || strings.HasSuffix(e, "@")) {
		bad("ACME_EMAIL", e, "want an address such as ops@example.com")
	}
	if c.ACMECARoots != "" {
		if b, err := os.ReadFile(c.ACMECARoots); err != nil {
			bad("ACME_CA_ROOTS", c.ACMECARoots, err.Error())
		} else if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
			bad("ACME_CA_ROOTS", c.ACMECARoots, "holds no PEM certificate")
		}
	}
	switch {
	case (c.ACMEEABKeyID == "") != (c.ACMEEABHMAC == ""):
		bad("ACME_EAB_HMAC", redacted(c.ACMEEABHMAC), "external account binding needs both ACME_EAB_KID and ACME_EAB_HMAC")
	case c.ACMEEABHMAC != "":
		if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(c.ACMEEABHMAC, "=")); err != nil {
			bad("ACME_EAB_HMAC", redacted(c.ACMEEABHMAC), "want the base64url key the CA gave")
		}
	}
	if p := c.ACMEHTTPPort; p != 0 && (p == c.ProxyPort || c.AdminAddress != "off" && strings.HasSuffix(c.AdminAddress, fmt.Sprintf(":%d", p))) {
		bad("ACME_HTTP_PORT", p, "is already PROXY_PORT or ADMIN_ADDRESS's port")
	}
	if d := c.ACMERenewCheck.D(); d < time.Second {
		bad("ACME_RENEW_INTERVAL", c.ACMERenewCheck, "want a duration of a second or more, such as 10m")
	}
	c.validateDNSProvider(bad)
	c.validateACMENames(bad)
}

// validateACMENames checks each name against what the challenges and the
// CA can do: a wildcard needs DNS-01, an IP address cannot use DNS-01 and
// not every CA issues one.
func (c *Config) validateACMENames(bad badFunc) {
	all := strings.Join(c.CertHostnames, ",")
	for _, h := range c.CertHostnames {
		ip := net.ParseIP(h) != nil
		switch {
		case strings.HasPrefix(h, "*.") && c.ACMEDNSProvider == "":
			bad("CERT_HOSTNAMES", all, fmt.Sprintf("the wildcard %s can only be validated over DNS: set ACME_DNS_PROVIDER", h))
		case ip && c.ACMEDNSProvider != "":
			bad("CERT_HOSTNAMES", all, fmt.Sprintf("%s is an IP address, which DNS-01 cannot validate: list names only, or validate over TLS-ALPN-01 or HTTP-01", h))
		case ip:
			if u, err := url.Parse(c.ACMECA); err == nil {
				if ca, ok := acmeCAsWithoutIPs[u.Hostname()]; ok {
					bad("CERT_HOSTNAMES", all, fmt.Sprintf("%s is an IP address and %s issues certificates for DNS names only", h, ca))
				}
			}
		case h == "localhost" || strings.HasSuffix(h, ".localhost") || strings.HasSuffix(h, ".local") || !strings.Contains(strings.TrimPrefix(h, "*."), "."):
			if u, err := url.Parse(c.ACMECA); err == nil && (LetsEncrypt(c.ACMECA) || acmeCAsWithoutIPs[u.Hostname()] != "") {
				bad("CERT_HOSTNAMES", all, fmt.Sprintf("%s is not a public DNS name, and a public CA issues certificates for public names only", h))
			}
		}
	}
}

// validateDNSProvider checks ACME_DNS_PROVIDER and the settings it needs.
func (c *Config) validateDNSProvider(bad badFunc) {
	switch c.ACMEDNSProvider {
	case "":
	case DNSRFC2136:
		need := func(key, value, why string) {
			if strings.TrimSpace(value) == "" {
				bad(key, "", "ACME_DNS_PROVIDER=rfc2136 needs "+why)
			}
		}
		need("RFC2136_SERVER", c.RFC2136Server, "the DNS server that takes the updates (host[:port])")
		need("RFC2136_KEY_NAME", c.RFC2136KeyName, "the TSIG key's name")
		need("RFC2136_KEY", c.RFC2136Key, "the TSIG key's secret")
		if c.RFC2136Key != "" {
			if _, err := base64.StdEncoding.DecodeString(c.RFC2136Key); err != nil {
				bad("RFC2136_KEY", redacted(c.RFC2136Key), "want the base64 secret of the TSIG key (the secret line of the key file)")
			}
		}
		switch strings.TrimSuffix(strings.ToLower(c.RFC2136KeyAlg), ".") {
		case "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512":
		default:
			bad("RFC2136_KEY_ALG", c.RFC2136KeyAlg, "want hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1")
		}
		if s := c.RFC2136Server; s != "" && !validHostPort(s) {
			bad("RFC2136_SERVER", s, "want host, host:port, an IPv6 address, or [IPv6]:port")
		}
	case DNSCloudflare:
		if strings.TrimSpace(c.CloudflareToken) == "" {
			bad("CLOUDFLARE_API_TOKEN", "", "ACME_DNS_PROVIDER=cloudflare needs an API token with Zone.DNS edit permission")
		}
	case DNSRoute53:
		// Credentials: the AWS SDK's chain, asked when the provider is made.
	default:
		bad("ACME_DNS_PROVIDER", c.ACMEDNSProvider, "want rfc2136, cloudflare or route53")
	}
	if c.ACMEDNSProvider == "" && len(c.ACMEDNSResolvers) > 0 {
		bad("ACME_DNS_RESOLVERS", strings.Join(c.ACMEDNSResolvers, ","), "is only used with ACME_DNS_PROVIDER")
	}
	for _, r := range c.ACMEDNSResolvers {
		if !validHostPort(r) {
			bad("ACME_DNS_RESOLVERS", strings.Join(c.ACMEDNSResolvers, ","), fmt.Sprintf("%q: want host, host:port, an IPv6 address, or [IPv6]:port", r))
			break
		}
	}
}

// DNSServer joins a DNS server's address as a setting gives it with port
// 53 when it names none: host, host:port, an IPv6 address bare or in
// brackets, [IPv6]:port. A bare IPv6 address never carries a port (::1:53
// is an address); an address with a port is written in brackets.
func DNSServer(s string) (string, error) {
	host, port := s, "53"
	switch {
	case strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]"):
		host = s[1 : len(s)-1]
	case strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1:
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			return "", err
		}
		host, port = h, p
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return "", fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	if strings.Contains(host, ":") || strings.HasPrefix(s, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", fmt.Errorf("%q is not an IPv6 address", host)
		}
	} else if host == "" || strings.ContainsAny(host, " /[]") {
		return "", fmt.Errorf("%q is not a host name or address", host)
	}
	return net.JoinHostPort(host, port), nil
}

// validHostPort accepts what DNSServer does.
func validHostPort(s string) bool {
	_, err := DNSServer(s)
	return err == nil
}

// redacted stands for a secret in an error line.
func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "(hidden)"
}
