package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// The header set every response carries, whoever wrote it: the backend's
// 101 and other responses, and the proxy's own answers. Browsers need it for
// cross-origin fetches and, in Chrome's Private Network Access, for pages on
// public origins reaching this private address.
var corsFields = []struct{ name, value string }{
	{"Access-Control-Allow-Private-Network", "true"},
	{"Access-Control-Allow-Origin", "*"},
	{"Access-Control-Allow-Headers", "*"},
	{"Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"},
	{"Access-Control-Expose-Headers", "*"},
}

// refusal is a request the proxy answers itself with an error instead of
// forwarding it: a head it will not pass on, a target the router will not
// dial, a page from an origin not allowed.
type refusal struct {
	status int
	msg    string // the answer's body, and the log's words for a bad request
	reason tunnel.End
	detail string  // the log's words after the reason, when not msg
	fields []field // further header fields of the answer
}

// field is a header field of an answer the proxy writes itself; its value
// goes through fieldValue.
type field struct{ name, value string }

func (e *refusal) Error() string { return e.msg }

// preflightMaxAge lets a browser cache a preflight answer for a day (Chrome
// caps it at two hours, Firefox at a day).
const preflightMaxAge = "86400"

var (
	// corsBlock is the header set as wire bytes, built once.
	corsBlock = func() []byte {
		var b bytes.Buffer
		for _, f := range corsFields {
			fmt.Fprintf(&b, "%s: %s\r\n", f.name, f.value)
		}
		return b.Bytes()
	}()
	corsNames = func() []string {
		n := make([]string, len(corsFields))
		for i, f := range corsFields {
			n[i] = f.name
		}
		return n
	}()
	// hopByHop are replaced when the proxy makes a forwarded exchange end
	// with the response ("Connection: close").
	hopByHop  = []string{"Connection", "Keep-Alive", "Proxy-Connection"}
	closeLine = []byte("Connection: close\r\n")
)

// rewriteHead appends to dst a copy of head (a request or response head
// ending in a blank line) without the fields named in drop, with the lines
// in add put just before the blank line. Set semantics: a field the backend
// sent too appears once, with our value, never twice (browsers reject a
// doubled Access-Control-Allow-Origin).
func rewriteHead(dst, head []byte, drop []string, add ...[]byte) []byte {
	body := head[:len(head)-2] // keep each line's CRLF, lose the blank line
	first := bytes.Index(body, []byte("\r\n")) + 2
	dst = append(dst, body[:first]...) // the request or status line
	body = body[first:]
	for len(body) > 0 {
		i := bytes.Index(body, []byte("\r\n"))
		line := body[:i+2]
		body = body[i+2:]
		name, _, _ := bytes.Cut(line, []byte(":"))
		if !dropped(name, drop) {
			dst = append(dst, line...)
		}
	}
	for _, a := range add {
		dst = append(dst, a...)
	}
	return append(dst, "\r\n"...)
}

func dropped(name []byte, drop []string) bool {
	for _, d := range drop {
		if equalFold(name, d) {
			return true
		}
	}
	return false
}

// injectResponse returns the backend's response head with the header set.
// When closing, the response also says "Connection: close", because the
// proxy ends the connection after it.
func injectResponse(dst, head []byte, closing bool, hs *headerSet) []byte {
	if closing {
		return rewriteHead(dst, head, hs.closing, hs.block, closeLine)
	}
	return rewriteHead(dst, head, hs.names, hs.block)
}

// closingRequest returns a forwarded request head that asks the backend to
// close after its response, so the proxy knows where the response ends.
func closingRequest(dst, head []byte) []byte {
	return rewriteHead(dst, head, hopByHop, closeLine)
}

// localResponse builds a complete response written by the proxy itself,
// with the header set and the further fields. Its body is text/plain with
// nosniff, so a browser never runs what it holds; body and field values are
// escaped here once more (plainText, fieldValue), whatever the caller did.
func localResponse(hs *headerSet, status int, keepAlive bool, fields []field, body string) []byte {
	body = plainText(body)
	var b bytes.Buffer
	b.Grow(256 + len(body))
	b.WriteString("HTTP/1.1 ")
	b.WriteString(strconv.Itoa(status))
	b.WriteByte(' ')
	b.WriteString(http.StatusText(status))
	b.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\n")
	if !keepAlive {
		b.Write(closeLine)
	}
	b.Write(hs.block)
	for _, f := range fields {
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(fieldValue(f.value))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.Bytes()
}

// preflight answers a CORS or Private Network Access preflight (OPTIONS).
func preflight(hs *headerSet, keepAlive bool) []byte {
	return localResponse(hs, http.StatusOK, keepAlive, []field{{"Access-Control-Max-Age", preflightMaxAge}}, "OK")
}

// plainHTTPResponse answers plain HTTP sent to the TLS port.
var plainHTTPResponse = []byte("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" +
	"This port speaks TLS: use https:// or wss:// (not http:// or ws://).\n")

// checkOrigin refuses, when ALLOWED_ORIGINS is set, a WebSocket upgrade or
// a preflight from a page of another origin: it must not open the
// signaling socket with the user's browser (cross-site WebSocket
// hijacking). Clients that send no Origin (native apps) are not affected.
func (s *Server) checkOrigin(req requestHead) error {
	o := s.opts.AllowedOrigins
	if o == nil || req.origin == "" || o.Allows(req.origin) || (!req.upgrade && req.method != http.MethodOptions) {
		return nil
	}
	return &refusal{status: http.StatusForbidden, msg: "origin " + quoteValue(req.origin) + " is not allowed", reason: tunnel.BadRequest}
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
