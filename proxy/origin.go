package proxy

import (
	"fmt"
	"net/http"
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
		if rest, ok := strings.CutPrefix(origin, o.schemes[i]); ok && strings.HasSuffix(rest, s) && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// checkOrigin refuses, when ALLOWED_ORIGINS is set, a WebSocket upgrade or
// a preflight from a page of another origin: it must not open the
// signaling socket with the user's browser (cross-site WebSocket
// hijacking). Clients that send no Origin (native apps) are not affected.
func (s *Server) checkOrigin(req requestHead) error {
	o := s.opts.AllowedOrigins
	if o == nil || req.origin == "" || o.Allows(req.origin) || (!req.upgrade && req.method != http.MethodOptions) {
		return nil
	}
	return &refusal{http.StatusForbidden, "origin " + req.origin + " is not allowed", reasonBadRequest}
}

// headerSet is the header set for one response: the names it replaces and
// its lines.
type headerSet struct {
	names   []string
	closing []string // names, and the hop-by-hop fields of a closing response
	block   []byte
}

// anyOrigin is the default set, built once.
var anyOrigin = &headerSet{names: corsNames, closing: withHopByHop(corsNames), block: corsBlock}

// corsFor returns the header set for a request from origin.
func (s *Server) corsFor(origin string) *headerSet {
	o := s.opts.AllowedOrigins
	if o == nil {
		return anyOrigin
	}
	var b []byte
	for _, f := range corsFields {
		if f.name == "Access-Control-Allow-Origin" {
			if origin == "" || !o.Allows(origin) {
				continue // no grant for a page from elsewhere
			}
			b = append(b, "Access-Control-Allow-Origin: "+origin+"\r\nAccess-Control-Allow-Credentials: true\r\n"...)
			continue
		}
		b = append(b, f.name+": "+f.value+"\r\n"...)
	}
	b = append(b, "Vary: Origin\r\n"...)
	return &headerSet{names: credentialedNames, closing: credentialedClosing, block: b}
}

var (
	credentialedNames   = append(append([]string{}, corsNames...), "Access-Control-Allow-Credentials")
	credentialedClosing = withHopByHop(credentialedNames)
)

func withHopByHop(names []string) []string { return append(append([]string{}, names...), hopByHop...) }
