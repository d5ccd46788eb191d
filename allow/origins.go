// Package allow holds the allow-lists that settings name: the origins whose
// pages may open the WebSocket (ALLOWED_ORIGINS) and the runtimes that
// routing by path may dial (ROUTE_ALLOW). config parses and checks them at
// start; the proxy asks them on each request.
package allow

import (
	"fmt"
	"net/url"
	"strings"
)

// Origins is the ALLOWED_ORIGINS allow-list. Unset (nil), every response
// says "Access-Control-Allow-Origin: *", as the reference container does.
// Set, a browser page from an unlisted origin cannot open the WebSocket
// (cross-site WebSocket hijacking) and CORS answers name the one allowed
// origin, with Vary: Origin and Access-Control-Allow-Credentials.
type Origins struct {
	exact    map[string]bool
	suffixes []string // "https://*.example.com" → "https://" and ".example.com"
	schemes  []string
}

// NewOrigins parses entries like "https://app.example.com",
// "https://app.example.com:8443" and "https://*.example.com".
func NewOrigins(list []string) (*Origins, error) {
	o := &Origins{exact: map[string]bool{}}
	for _, e := range list {
		e = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(e)), "/")
		u, err := url.Parse(strings.Replace(e, "*.", "wildcard.", 1))
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%q is not an origin (scheme://host[:port])", e)
		}
		if scheme, host, ok := strings.Cut(e, "://*."); ok {
			o.schemes = append(o.schemes, scheme+"://")
			o.suffixes = append(o.suffixes, "."+host)
			continue
		}
		o.exact[e] = true
	}
	return o, nil
}

// Allows reports whether a request's Origin header is on the list.
func (o *Origins) Allows(origin string) bool {
	origin = strings.ToLower(origin)
	if o.exact[origin] {
		return true
	}
	for i, s := range o.suffixes {
		if rest, ok := strings.CutPrefix(origin, o.schemes[i]); ok && strings.HasSuffix(rest, s) && hostChars(rest) {
			return true
		}
	}
	return false
}

// hostChars: a wildcard match is only an origin's host (and port), never
// anything a browser would not send (the answer repeats a matched origin).
func hostChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
