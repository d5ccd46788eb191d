package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Router picks the backend from the first path segment, as CloudXR.js
// clients behind an HTTPS proxy ask for it (signalingResourcePath
// "/<server-ip>/..."): wss://proxy/10.0.3.17/sign_in?peer_id=... goes to
// 10.0.3.17:49100 as /sign_in?peer_id=.... Only targets on the allow-list
// are ever dialed: the proxy must not become an open relay into the
// network behind it.
type Router struct {
	nets        []*net.IPNet
	names       []string // exact host names, lower case
	suffixes    []string // from "*.example": ".example"
	defaultPort string
}

// NewRouter builds a router from allow-list entries: CIDRs ("10.0.0.0/8"),
// IP addresses, host names, and "*.domain" for any name under a domain.
func NewRouter(allow []string, defaultPort int) (*Router, error) {
	r := &Router{defaultPort: strconv.Itoa(defaultPort)}
	if len(allow) == 0 {
		return nil, fmt.Errorf("routing by path needs an allow-list")
	}
	for _, a := range allow {
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

// Route splits a request target into the backend address and the target
// to forward (the rest of the path, with the query, unchanged).
func (r *Router) Route(target string) (addr, rest string, err error) {
	path, query, hasQuery := strings.Cut(target, "?")
	seg, tail, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if seg == "" {
		return "", "", &refusal{http.StatusBadRequest, "the first path segment must name the CloudXR runtime (/<host>[:port]/...)", reasonRouteRefused}
	}
	if s, err := url.PathUnescape(seg); err == nil {
		seg = s // browsers may send an IPv6 literal's brackets encoded
	}
	addr, err = r.Target(seg)
	if err != nil {
		return "", "", err
	}
	rest = "/" + tail
	if hasQuery {
		rest += "?" + query
	}
	return addr, rest, nil
}

// Target checks one runtime, "host", "host:port" or "[IPv6]:port", against
// the allow-list and returns its address in the one form sessions, health
// checks and logs use: lower-case names, canonical IPs, the default port
// when none is given.
func (r *Router) Target(spec string) (string, error) {
	host, port := spec, r.defaultPort
	if h, p, err := net.SplitHostPort(spec); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(spec, "[") && strings.HasSuffix(spec, "]") {
		host = spec[1 : len(spec)-1]
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", &refusal{http.StatusBadRequest, fmt.Sprintf("bad port in %q", spec), reasonRouteRefused}
	}
	if !r.allowed(host) {
		return "", &refusal{http.StatusForbidden, fmt.Sprintf("%s is not on the routing allow-list", host), reasonRouteRefused}
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	} else {
		host = strings.TrimSuffix(strings.ToLower(host), ".")
	}
	return net.JoinHostPort(host, port), nil
}

// checkResolved is the routed dialer's Control: it sees each address a
// target resolved to, just before the connect. A host name on the
// allow-list may resolve anywhere except to loopback, link-local (where
// cloud metadata services answer), unspecified or multicast addresses that
// are not themselves on the list: whoever runs DNS for an allowed name must
// not be able to point the proxy back at its own host.
func (r *Router) checkResolved(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("not dialing %q: not an IP address", address)
	}
	if !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast() {
		return nil
	}
	for _, n := range r.nets {
		if n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("not dialing %s: loopback, link-local, unspecified and multicast addresses must be on ROUTE_ALLOW as addresses", ip)
}

func (r *Router) allowed(host string) bool {
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

// rewriteTarget returns head with the request line's target replaced.
func rewriteTarget(head []byte, target string) []byte {
	line, rest, _ := strings.Cut(string(head), "\r\n")
	method, tail, _ := strings.Cut(line, " ")
	_, proto, _ := strings.Cut(tail, " ")
	return []byte(method + " " + target + " " + proto + "\r\n" + rest)
}
