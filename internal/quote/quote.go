// Package quote shows bytes that came from outside (a request, a token, a
// program on the runtime's port) in an answer or a log line: Go-quoted in
// ASCII, so control bytes and non-ASCII are escaped, and clipped, so they
// cannot make the line large.
package quote

import "strconv"

// Clipped is s Go-quoted in ASCII, at most max bytes of it, with "..."
// after the quote when it was cut.
func Clipped(s string, max int) string {
	if len(s) > max {
		return strconv.QuoteToASCII(s[:max]) + "..."
	}
	return strconv.QuoteToASCII(s)
}
