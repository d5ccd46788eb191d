package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/tunnel"
)

// Sniffing: pure functions over the bytes of an HTTP/1.x head. They never
// read from a connection, so they can be table-tested and fuzzed.

func badHead(msg string) error {
	return &refusal{status: http.StatusBadRequest, msg: msg, reason: tunnel.BadRequest}
}
func notImplemented(msg string) error {
	return &refusal{status: http.StatusNotImplemented, msg: msg, reason: tunnel.BadRequest}
}

// requestHead is what the proxy needs to know of a request.
type requestHead struct {
	method, target, proto string
	host, origin          string
	// upgrade: a WebSocket upgrade (Connection lists "upgrade" and Upgrade
	// offers "websocket" and nothing else).
	upgrade bool
	// close: the client will not send another request on this connection.
	close bool
	// hasBody: Content-Length above zero or a chunked body follows.
	hasBody bool
	// contentLength is the body's length (0 when none); chunked: the
	// body is chunked, its length unknown.
	contentLength int64
	chunked       bool
	// What authentication and native routing look at (see credential.go).
	authorization, cookie string
	native                bool // x-cloudxr-device-type: native
}

// parseRequestHead parses a complete head as found by tunnel.HeadEnd. It is strict
// where leniency allows request smuggling (RFC 9112 sections 2.2, 5, 6.3):
// no bare LF, no obs-fold, no control characters, no Content-Length next to
// Transfer-Encoding, no conflicting lengths.
func parseRequestHead(head []byte) (requestHead, error) {
	var r requestHead
	var room headLines
	lines, err := splitLines(room[:0], head)
	if err != nil {
		return r, err
	}
	if err := r.parseRequestLine(lines[0]); err != nil {
		return r, err
	}
	var f headFields
	for _, line := range lines[1:] {
		if err := f.add(&r, line); err != nil {
			return r, err
		}
	}
	switch {
	case r.proto == "HTTP/1.1" && f.hosts != 1:
		return r, badHead("an HTTP/1.1 request needs exactly one Host field")
	case f.hosts > 1:
		return r, badHead("more than one Host field")
	case f.te > 0 && f.lengths > 0:
		return r, badHead("both Content-Length and Transfer-Encoding")
	case f.te > 1:
		return r, badHead("more than one Transfer-Encoding field")
	case f.te > 0 && r.proto == "HTTP/1.0":
		// RFC 9112 section 6.1: its framing cannot be trusted.
		return r, badHead("Transfer-Encoding in an HTTP/1.0 request")
	}
	r.hasBody = f.te > 0 || f.contentLength > 0
	r.contentLength, r.chunked = f.contentLength, f.te > 0
	r.close = f.connClose || (r.proto == "HTTP/1.0" && !f.keepAlive)
	if f.upgradeField {
		switch {
		case !f.connUpgrade:
			return r, badHead("Upgrade without Connection: upgrade")
		case !f.websocket || f.otherProtocol:
			return r, notImplemented("an upgrade must offer websocket and no other protocol")
		case r.method != "GET":
			return r, badHead("a WebSocket upgrade must be a GET")
		case r.hasBody:
			return r, badHead("a WebSocket upgrade must not carry a body")
		}
		r.upgrade = true
	}
	return r, nil
}

// headFields is what the request's fields said, counted for the checks
// that need them all.
type headFields struct {
	hosts, lengths, te                int
	contentLength                     int64
	connUpgrade, connClose, keepAlive bool
	upgradeField, websocket           bool
	otherProtocol                     bool // Upgrade offers something besides websocket
}

// add takes one field line into f, and into r what the proxy keeps.
func (f *headFields) add(r *requestHead, line []byte) error {
	name, value, err := splitField(line)
	if err != nil {
		return err
	}
	switch {
	case equalFold(name, "host"):
		f.hosts++
		r.host = string(value)
	case equalFold(name, "origin"):
		r.origin = string(value)
	case equalFold(name, "authorization"):
		r.authorization = string(value)
	case equalFold(name, "cookie"):
		if r.cookie != "" {
			r.cookie += "; "
		}
		r.cookie += string(value)
	case equalFold(name, "x-cloudxr-device-type"):
		r.native = equalFold(bytes.TrimSpace(value), "native")
	case equalFold(name, "connection"):
		forEachToken(value, func(t []byte) {
			f.connUpgrade = f.connUpgrade || equalFold(t, "upgrade")
			f.connClose = f.connClose || equalFold(t, "close")
			f.keepAlive = f.keepAlive || equalFold(t, "keep-alive")
		})
	case equalFold(name, "upgrade"):
		// Upgrade is a list in order of preference, from which the server
		// picks (RFC 9110 section 7.8); a WebSocket client's must include
		// "websocket" (RFC 6455 section 4.1). Only an Upgrade that offers
		// websocket alone is forwarded: one that also offers h2c (or
		// anything else) would let the runtime switch to a protocol the
		// proxy does not speak, past the checks it makes on each request.
		// https://www.rfc-editor.org/rfc/rfc9110#section-7.8
		// https://www.rfc-editor.org/rfc/rfc6455#section-4.1
		f.upgradeField = true
		forEachToken(value, func(t []byte) {
			ws := equalFold(t, "websocket")
			f.websocket = f.websocket || ws
			f.otherProtocol = f.otherProtocol || !ws
		})
	case equalFold(name, "content-length"):
		n, err := parseContentLength(value)
		if err != nil {
			return err
		}
		if f.lengths > 0 && n != f.contentLength {
			return badHead("conflicting Content-Length fields")
		}
		f.lengths++
		f.contentLength = n
	case equalFold(name, "transfer-encoding"):
		f.te++
		if !equalFold(bytes.TrimSpace(value), "chunked") {
			return notImplemented("Transfer-Encoding other than chunked")
		}
	}
	return nil
}

func (r *requestHead) parseRequestLine(line []byte) error {
	m, rest, ok1 := bytes.Cut(line, []byte(" "))
	t, proto, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || len(m) == 0 || len(t) == 0 {
		return badHead("malformed request line")
	}
	if !isToken(m) {
		return badHead("malformed method")
	}
	for i, c := range t {
		if c <= ' ' || c >= 0x7f || c == '%' && (i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2])) {
			return badHead("malformed request target")
		}
	}
	switch string(proto) {
	case "HTTP/1.1", "HTTP/1.0":
	default:
		// Includes the HTTP/2 preface "PRI * HTTP/2.0".
		return badHead("unsupported protocol version")
	}
	r.method, r.proto = string(m), string(proto)
	switch {
	case r.method == "CONNECT":
		return notImplemented("CONNECT is not supported")
	case r.method == "TRACE" || r.method == "TRACK":
		// A request echoed back would show a script the cookies and
		// headers it cannot read itself (cross-site tracing).
		return notImplemented(r.method + " is not supported")
	case t[0] == '/':
	case len(t) == 1 && t[0] == '*' && r.method == "OPTIONS":
	default:
		// Absolute form (a request meant for a forward proxy) and the rest.
		return badHead("request target must be a path")
	}
	r.target = string(t)
	return nil
}

// responseHead is what the proxy needs to know of a backend response.
type responseHead struct {
	status int
	// contentLength is -1 when the body is chunked or runs to the close.
	contentLength int64
	chunked       bool // the body is chunked (chunked.go finds its end)
}

var errBadResponse = errors.New("malformed response head")

// parseResponseHead parses a complete backend response head.
func parseResponseHead(head []byte) (responseHead, error) {
	r := responseHead{contentLength: -1}
	var room headLines
	lines, err := splitLines(room[:0], head)
	if err != nil {
		return r, errBadResponse
	}
	sl := lines[0]
	if len(sl) < 12 || !bytes.HasPrefix(sl, []byte("HTTP/1.")) || (sl[7] != '0' && sl[7] != '1') || sl[8] != ' ' || (len(sl) > 12 && sl[12] != ' ') {
		return r, errBadResponse
	}
	code, err := strconv.Atoi(string(sl[9:12]))
	if err != nil || code < 100 || code > 599 {
		return r, errBadResponse
	}
	r.status = code
	chunked := false
	for _, line := range lines[1:] {
		name, value, err := splitField(line)
		if err != nil {
			return r, errBadResponse
		}
		switch {
		case equalFold(name, "content-length"):
			n, err := parseContentLength(value)
			if err != nil || (r.contentLength >= 0 && r.contentLength != n) {
				return r, errBadResponse
			}
			r.contentLength = n
		case equalFold(name, "transfer-encoding"):
			chunked = true
		}
	}
	if chunked {
		r.contentLength, r.chunked = -1, true
	}
	// These never have a body (RFC 9112 section 6.3).
	if code < 200 || code == 204 || code == 304 {
		r.contentLength, r.chunked = 0, false
	}
	return r, nil
}

// splitLines appends a head's lines, without their CRLF, to dst (the
// callers' room on their stacks, so a head costs no allocation), refusing
// a bare LF or CR, which parsers disagree on.
func splitLines(dst [][]byte, head []byte) ([][]byte, error) {
	body, ok := bytes.CutSuffix(head, []byte("\r\n\r\n"))
	if !ok {
		return nil, badHead("incomplete head")
	}
	for line := range bytes.SplitSeq(body, []byte("\r\n")) {
		if bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, '\r') >= 0 {
			return nil, badHead("bare LF or CR in head")
		}
		dst = append(dst, line)
	}
	return dst, nil
}

// headLines is room for a usual head's lines.
type headLines [32][]byte

// splitField splits "Name: value", trimming the value's optional whitespace.
func splitField(line []byte) (name, value []byte, err error) {
	if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		return nil, nil, badHead("obsolete line folding")
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || !isToken(name) {
		return nil, nil, badHead("malformed header field name")
	}
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, badHead("control character in header field value")
		}
	}
	return name, bytes.Trim(value, " \t"), nil
}

func parseContentLength(v []byte) (int64, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || len(v) > 18 {
		return 0, badHead("malformed Content-Length")
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, badHead("malformed Content-Length")
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// forEachToken calls f with each element of a comma-separated list.
func forEachToken(v []byte, f func([]byte)) {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		if t = bytes.Trim(t, " \t"); len(t) > 0 {
			f(t)
		}
	}
}

// isToken reports whether b is an RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c >= 0x80 || !tokenChars[c] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// equalFold compares ASCII case-insensitively without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 32
	}
	return c
}
