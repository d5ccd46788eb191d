package proxy

import (
	"bytes"
	"net/url"
	"strings"
)

// Credentials: where a client's token comes from, in this order, and how it
// is taken out of the request before the runtime sees it. Pure functions
// over a parsed head and its bytes.

// credentialNames are the query parameter and cookie a token may be in
// (AUTH_QUERY_PARAM, AUTH_COOKIE).
type credentialNames struct{ param, cookie string }

// credential finds the client's token: "Authorization: Bearer" (native
// clients, scripts), then the query parameter (CloudXR.js's
// signalingQueryParameters), then the cookie (a same-origin web client).
func (n credentialNames) credential(req requestHead) (string, bool) {
	if scheme, tok, ok := strings.Cut(req.authorization, " "); ok && strings.EqualFold(scheme, "Bearer") {
		if tok = strings.TrimSpace(tok); tok != "" {
			return tok, true
		}
	}
	if _, query, ok := strings.Cut(req.target, "?"); ok {
		for _, pair := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(pair, "=")
			if unescape(k) == n.param && v != "" {
				return unescape(v), true
			}
		}
	}
	for _, c := range strings.Split(req.cookie, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(c), "="); ok && k == n.cookie && v != "" {
			return v, true
		}
	}
	return "", false
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// strip returns head without any credential: the Authorization field
// dropped, the query parameter cut from the target (the rest of the query
// byte for byte), the cookie cut from Cookie (the others kept; the field
// dropped when none is left).
func (n credentialNames) strip(head []byte) []byte { return n.filter(head, true) }

// stripCookieOnly returns head without the cookie named n.cookie, and nothing
// else changed (the pool cookie, see pool.go).
func (n credentialNames) stripCookieOnly(head []byte) []byte { return n.filter(head, false) }

// filter is strip, or with all false stripCookieOnly.
func (n credentialNames) filter(head []byte, all bool) []byte {
	body := head[:len(head)-2]
	eol := bytes.Index(body, []byte("\r\n"))
	out := make([]byte, 0, len(head))
	if all {
		out = append(out, n.stripTarget(body[:eol])...)
	} else {
		out = append(out, body[:eol]...)
	}
	out = append(out, "\r\n"...)
	for rest := body[eol+2:]; len(rest) > 0; {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i]
		rest = rest[i+2:]
		name, value, _ := bytes.Cut(line, []byte(":"))
		switch {
		case all && equalFold(name, "authorization"):
			continue
		case equalFold(name, "cookie"):
			kept := n.stripCookie(string(value))
			if kept == "" {
				continue
			}
			line = append(append(append([]byte(nil), name...), ": "...), kept...)
		}
		out = append(append(out, line...), "\r\n"...)
	}
	return append(out, "\r\n"...)
}

// stripTarget cuts the credential's query parameter from a request line.
func (n credentialNames) stripTarget(line []byte) []byte {
	method, rest, _ := bytes.Cut(line, []byte(" "))
	target, proto, _ := bytes.Cut(rest, []byte(" "))
	path, query, ok := bytes.Cut(target, []byte("?"))
	if !ok {
		return line
	}
	var kept [][]byte
	for _, pair := range bytes.Split(query, []byte("&")) {
		k, _, _ := bytes.Cut(pair, []byte("="))
		if unescape(string(k)) != n.param {
			kept = append(kept, pair)
		}
	}
	out := append(append([]byte(nil), method...), ' ')
	out = append(out, path...)
	if len(kept) > 0 {
		out = append(append(out, '?'), bytes.Join(kept, []byte("&"))...)
	}
	return append(append(out, ' '), proto...)
}

// stripCookie removes the credential's cookie from a Cookie field's value.
func (n credentialNames) stripCookie(value string) string {
	var kept []string
	for _, c := range strings.Split(value, ";") {
		c = strings.TrimSpace(c)
		if k, _, _ := strings.Cut(c, "="); c != "" && k != n.cookie {
			kept = append(kept, c)
		}
	}
	return strings.Join(kept, "; ")
}

// redactTarget is a request target as the log may keep it: without the
// credential's query parameter.
func (n credentialNames) redactTarget(target string) string {
	if !strings.Contains(target, "?") {
		return target
	}
	line := n.stripTarget([]byte("GET " + target + " HTTP/1.1"))
	return string(line[4 : len(line)-len(" HTTP/1.1")])
}
