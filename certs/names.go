package certs

import (
	"crypto/x509"
	"net"
	"strings"
)

// WantedNames lists the names a generated certificate covers: loopback,
// the host name, the machine's non-loopback interface addresses (so a
// headset that dials the LAN IP is not told "certificate unknown"), and the
// names the user gave. Duplicates are dropped; the order is kept.
func WantedNames(hostname string, interfaceIPs []net.IP, extra []string) []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if hostname != "" {
		names = append(names, hostname)
	}
	for _, ip := range interfaceIPs {
		names = append(names, ip.String())
	}
	names = append(names, extra...)
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		key := normalName(n)
		if !seen[key] {
			seen[key] = true
			out = append(out, n)
		}
	}
	return out
}

// InterfaceIPs returns the machine's addresses that a client on the network
// could dial: not loopback, not link-local (those need a zone and change
// with every boot).
func InterfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipn.IP
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
			continue
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		ips = append(ips, ip)
	}
	return ips
}

func normalName(n string) string {
	if ip := net.ParseIP(n); ip != nil {
		return ip.String()
	}
	return strings.ToLower(strings.TrimSuffix(n, "."))
}

// HostName reports whether name is one a certificate could cover: an IP
// address, or a DNS name of at most 253 bytes in labels of 1 to 63
// letters, digits, '-' or '_', not starting or ending with '-'. It checks
// CERT_HOSTNAMES, and the names clients ask for (crypto/tls takes any
// bytes as a server name, up to 64 KiB: names that are not host names are
// never remembered or logged).
func HostName(name string) bool {
	if net.ParseIP(name) != nil {
		return true
	}
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Covers reports whether c is valid for name (a DNS name or an IP
// address), as a browser would check it.
func Covers(c *x509.Certificate, name string) bool {
	if c == nil {
		return false
	}
	return c.VerifyHostname(strings.Trim(name, "[]")) == nil
}

// Missing returns the names that c does not cover.
func Missing(c *x509.Certificate, names []string) []string {
	var out []string
	for _, n := range names {
		if !Covers(c, n) {
			out = append(out, n)
		}
	}
	return out
}
