package allow

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Runtimes is the ROUTE_ALLOW list: the only runtimes routing by path may
// dial, so the proxy never becomes an open relay into the network behind
// it.
type Runtimes struct {
	nets        []*net.IPNet
	names       []string // exact host names, lower case
	suffixes    []string // from "*.example": ".example"
	defaultPort string
}

// Target errors, to tell a malformed target from one not on the list.
var (
	ErrBadTarget  = errors.New("bad target")
	ErrNotAllowed = errors.New("not on the allow-list")
)

// targetError is a Target refusal in words for the user, wrapping its kind.
type targetError struct {
	msg  string
	kind error
}

func (e *targetError) Error() string { return e.msg }
func (e *targetError) Unwrap() error { return e.kind }

// NewRuntimes parses allow-list entries: CIDRs ("10.0.0.0/8"), IP
// addresses, host names, and "*.domain" for any name under a domain.
// defaultPort is used for targets that name none.
func NewRuntimes(list []string, defaultPort int) (*Runtimes, error) {
	r := &Runtimes{defaultPort: strconv.Itoa(defaultPort)}
	if len(list) == 0 {
		return nil, fmt.Errorf("routing by path needs an allow-list")
	}
	for _, a := range list {
		a = strings.ToLower(strings.TrimSpace(a))
		switch {
		case strings.Contains(a, "/"):
			_, n, err := net.ParseCIDR(a)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR", a)
			}
			r.nets = append(r.nets, n)
		case net.ParseIP(a) != nil:
			ip := net.ParseIP(a)
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			r.nets = append(r.nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		case strings.HasPrefix(a, "*.") && len(a) > 2:
			r.suffixes = append(r.suffixes, a[1:])
		case a != "" && !strings.ContainsAny(a, " :*[]"):
			r.names = append(r.names, strings.TrimSuffix(a, "."))
		default:
			return nil, fmt.Errorf("%q is neither a CIDR, an IP address nor a host name", a)
		}
	}
	return r, nil
}

// Target checks one runtime, "host", "host:port" or "[IPv6]:port", against
// the list and returns its address in the one form sessions, health checks
// and logs use: lower-case names, canonical IPs, the default port when none
// is given. Its errors wrap ErrBadTarget or ErrNotAllowed.
func (r *Runtimes) Target(spec string) (string, error) {
	host, port := spec, r.defaultPort
	if h, p, err := net.SplitHostPort(spec); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(spec, "[") && strings.HasSuffix(spec, "]") {
		host = spec[1 : len(spec)-1]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", &targetError{fmt.Sprintf("bad port in %q", spec), ErrBadTarget}
	}
	if !r.allowed(host) {
		return "", &targetError{fmt.Sprintf("%s is not on the routing allow-list", host), ErrNotAllowed}
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else {
		host = strings.TrimSuffix(strings.ToLower(host), ".")
	}
	return net.JoinHostPort(host, port), nil
}

// CheckResolved sees each address a routed runtime's target resolved to,
// just before the connect (tunnel.Dialer's Check). A host name on the list
// may resolve anywhere except to loopback, link-local (where cloud metadata
// services answer), unspecified or multicast addresses that are not
// themselves on the list: whoever runs DNS for an allowed name must not be
// able to point the proxy back at its own host.
func (r *Runtimes) CheckResolved(ip netip.Addr) error {
	if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast() {
		return nil
	}
	for _, n := range r.nets {
		if n.Contains(net.IP(ip.AsSlice())) {
			return nil
		}
	}
	return fmt.Errorf("not dialing %s: loopback, link-local, unspecified and multicast addresses must be on ROUTE_ALLOW as addresses", ip)
}

func (r *Runtimes) allowed(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		for _, n := range r.nets {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "" || strings.ContainsAny(h, "%@/\\ ") {
		return false
	}
	for _, n := range r.names {
		if h == n {
			return true
		}
	}
	for _, s := range r.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// WithDefaultPort is the same list with another default port (native
// clients' signaling port).
func (r *Runtimes) WithDefaultPort(port int) *Runtimes {
	c := *r
	c.defaultPort = strconv.Itoa(port)
	return &c
}
