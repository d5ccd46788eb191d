package allow

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/quote"
)

// Runtimes is the ROUTE_ALLOW list: the only runtimes routing by path may
// dial, so the proxy never becomes an open relay into the network behind
// it. An entry without a port allows every port of its hosts; with one
// ("10.0.3.17:49100", "*.gpu.lab:49100", "[fd00::1]:49100",
// "10.0.3.0/24:49100") only that port.
type Runtimes struct {
	nets        []netRule
	names       []nameRule // exact host names, lower case
	suffixes    []nameRule // from "*.example": ".example"
	defaultPort string
}

type netRule struct {
	n    *net.IPNet
	port string // "": any port
}

type nameRule struct{ name, port string }

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
// addresses, host names, and "*.domain" for any name under a domain, each
// with an optional ":port". defaultPort is used for targets that name none.
func NewRuntimes(list []string, defaultPort int) (*Runtimes, error) {
	r := &Runtimes{defaultPort: strconv.Itoa(defaultPort)}
	if len(list) == 0 {
		return nil, fmt.Errorf("routing by path needs an allow-list")
	}
	for _, entry := range list {
		entry = strings.ToLower(strings.TrimSpace(entry))
		a, port, err := splitEntryPort(entry)
		if err != nil {
			return nil, err
		}
		switch {
		case strings.Contains(a, "/"):
			_, n, err := net.ParseCIDR(a)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR", entry)
			}
			r.nets = append(r.nets, netRule{n, port})
		case net.ParseIP(a) != nil:
			ip := net.ParseIP(a)
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			r.nets = append(r.nets, netRule{&net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, port})
		case strings.HasPrefix(a, "*.") && len(a) > 2 && !strings.ContainsAny(a[2:], " :*[]"):
			r.suffixes = append(r.suffixes, nameRule{a[1:], port})
		case a != "" && !strings.ContainsAny(a, " :*[]"):
			r.names = append(r.names, nameRule{strings.TrimSuffix(a, "."), port})
		default:
			return nil, fmt.Errorf("%q is neither a CIDR, an IP address nor a host name", entry)
		}
	}
	return r, nil
}

// splitEntryPort cuts an entry's ":port": "[...]:port" for IPv6, else a
// single colon. A bare IPv6 address or CIDR (several colons) has none.
func splitEntryPort(entry string) (host, port string, err error) {
	switch {
	case strings.HasPrefix(entry, "["):
		h, p, ok := strings.Cut(entry[1:], "]")
		if !ok {
			return "", "", fmt.Errorf("%q: no closing ]", entry)
		}
		if p == "" {
			return h, "", nil
		}
		if !strings.HasPrefix(p, ":") {
			return "", "", fmt.Errorf("%q: want [IPv6]:port", entry)
		}
		host, port = h, p[1:]
	case strings.Count(entry, ":") == 1:
		host, port, _ = strings.Cut(entry, ":")
	default:
		return entry, "", nil
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("%q: bad port %q", entry, port)
	}
	return host, strconv.Itoa(n), nil
}

// Target checks one runtime, "host", "host:port" or "[IPv6]:port", against
// the list and returns its address in the one form sessions, health checks
// and logs use: lower-case names, canonical IPs, the default port when none
// is given. Its errors wrap ErrBadTarget or ErrNotAllowed, and quote the
// target (it comes from a request) clipped to a short length.
func (r *Runtimes) Target(spec string) (string, error) {
	host, port := spec, r.defaultPort
	if h, p, err := net.SplitHostPort(spec); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(spec, "[") && strings.HasSuffix(spec, "]") {
		host = spec[1 : len(spec)-1]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", &targetError{"bad port in " + shown(spec), ErrBadTarget}
	}
	port = strconv.Itoa(n)
	if !r.allowed(host, port) {
		return "", &targetError{shown(net.JoinHostPort(host, port)) + " is not on the routing allow-list", ErrNotAllowed}
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else {
		host = strings.TrimSuffix(strings.ToLower(host), ".")
	}
	return net.JoinHostPort(host, port), nil
}

// shown is a target as a refusal repeats it (it comes from a request).
func shown(s string) string { return quote.Clipped(s, 96) }

// CheckResolved sees each address a routed runtime's target resolved to,
// just before the connect (the backend dialer's Control). A host name on the list
// may resolve anywhere except to loopback, link-local (where cloud metadata
// services answer), unspecified or multicast addresses that are not
// themselves on the list: whoever runs DNS for an allowed name must not be
// able to point the proxy back at its own host.
func (r *Runtimes) CheckResolved(ip netip.Addr) error {
	if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast() {
		return nil
	}
	for _, n := range r.nets {
		if n.n.Contains(net.IP(ip.AsSlice())) {
			return nil
		}
	}
	return fmt.Errorf("not dialing %s: loopback, link-local, unspecified and multicast addresses must be on ROUTE_ALLOW as addresses", ip)
}

func (r *Runtimes) allowed(host, port string) bool {
	if ip := net.ParseIP(host); ip != nil {
		for _, n := range r.nets {
			if n.n.Contains(ip) && portOK(n.port, port) {
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
		if h == n.name && portOK(n.port, port) {
			return true
		}
	}
	for _, s := range r.suffixes {
		if strings.HasSuffix(h, s.name) && portOK(s.port, port) {
			return true
		}
	}
	return false
}

func portOK(rule, port string) bool { return rule == "" || rule == port }

// WithDefaultPort is the same list with another default port (native
// clients' signaling port).
func (r *Runtimes) WithDefaultPort(port int) *Runtimes {
	c := *r
	c.defaultPort = strconv.Itoa(port)
	return &c
}
