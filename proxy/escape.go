package proxy

import (
	"strings"

	"github.com/cloudxr-wss-proxy/cloudxr-wss-proxy/internal/quote"
)

// Escaping: every byte that came from a request or a token and goes into
// one of the proxy's own answers or log words passes through one of these.
// An answer's head is made only of the proxy's field names and values that
// cannot hold CR, LF or any other control byte; its body is text/plain with
// nosniff, and values from the request in it are Go-quoted and clipped.

// maxQuoted bounds a value from the request that an answer repeats: enough
// to recognise it, never a way to make the answer (or the log) large.
const maxQuoted = 96

// quoteValue is a value from the request as an answer or log line shows
// it (internal/quote).
func quoteValue(s string) string { return quote.Clipped(s, maxQuoted) }

// fieldValue makes s safe as a header field's value: every byte outside
// printable ASCII (so CR, LF, NUL and other controls) becomes '?'. The
// proxy's own values pass unchanged; it is the last guard for the rest.
func fieldValue(s string) string {
	if printableASCII(s) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// quotedString is s as an HTTP quoted-string (RFC 9110 section 5.6.4),
// quotes included: '"' and '\' escaped, bytes outside printable ASCII made
// '?', at most 200 bytes of s.
func quotedString(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// plainText makes s safe as a text/plain body line: control bytes other
// than newline and tab become '?'.
func plainText(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = !isControl(s[i])
	}
	if clean {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if isControl(c) {
			b[i] = '?'
		}
	}
	return string(b)
}

func isControl(c byte) bool { return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f }

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
