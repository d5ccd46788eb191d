package tunnel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// scanAll feeds b to a fresh scanner in pieces of step bytes and returns
// where the body ended (-1: not within b).
func scanAll(b []byte, step int) int {
	var c chunkedEnd
	for off := 0; off < len(b); off += step {
		piece := b[off:min(off+step, len(b))]
		if n, done := c.scan(piece); done {
			return off + n
		}
	}
	return -1
}

func TestChunkedEnd(t *testing.T) {
	for _, c := range []struct {
		name, body string
		end        int // -1: not ended
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", 15},
		{"two chunks and junk after", "3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", 28},
		{"extensions", "3;name=\"v\"\r\nabc\r\n0;last\r\n\r\nX", 27},
		{"trailers", "1\r\na\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\nmore", 38},
		{"upper-case hex", "B\r\nhello world\r\n0\r\n\r\n", 21},
		{"not ended yet", "5\r\nhel", -1},
		{"last chunk without its blank line", "0\r\n", -1},
		{"malformed size ends at once", "zz\r\n", 1},
		{"data without its CRLF", "1\r\naXY", 5},
		{"a bare LF after the size", "1\na\r\n0\r\n\r\n", 2},
		{"a size of 16 hex digits", strings.Repeat("f", 16) + "\r\n", 16},
	} {
		for _, step := range []int{1, 2, 3, 7, 1 << 20} {
			if got := scanAll([]byte(c.body), step); got != c.end {
				t.Errorf("%s (pieces of %d): end %d, want %d", c.name, step, got, c.end)
			}
		}
	}
}

// FuzzChunkedEnd: for any chunked body Go's own reader accepts, followed by
// anything, the scanner ends exactly where the body (its trailers and blank
// line included) ends, however the bytes are split; for any bytes at all,
// it never claims more than it was given and splitting does not change its
// answer.
func FuzzChunkedEnd(f *testing.F) {
	f.Add([]byte("hello"), []byte("world"), "X-A: 1", []byte("GET / HTTP/1.1\r\n\r\n"), uint8(3))
	f.Add([]byte(""), []byte("x"), "", []byte("junk"), uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, trailer string, after []byte, step uint8) {
		var body bytes.Buffer
		for _, chunk := range [][]byte{a, b} {
			if len(chunk) > 0 {
				fmt.Fprintf(&body, "%x\r\n%s\r\n", len(chunk), chunk)
			}
		}
		body.WriteString("0\r\n")
		if trailer != "" && !strings.ContainsAny(trailer, "\r\n") && strings.Contains(trailer, ":") {
			body.WriteString(trailer + "\r\n")
		}
		body.WriteString("\r\n")
		// Go agrees this is one whole chunked body.
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body.String()
		r, err := http.ReadResponse(bufio.NewReader(strings.NewReader(resp)), nil)
		if err != nil {
			return
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
			return
		}
		stream := append(body.Bytes(), after...)
		s := int(step%64) + 1
		if end := scanAll(stream, s); end != body.Len() {
			t.Fatalf("end %d, want %d (pieces of %d) in %q", end, body.Len(), s, stream)
		}
	})
}

func FuzzChunkedEndAnyBytes(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint8(2))
	f.Add([]byte("\x00\xff"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole := scanAll(in, len(in)+1)
		if whole > len(in) {
			t.Fatalf("claimed %d of %d bytes", whole, len(in))
		}
		if split := scanAll(in, int(step%16)+1); split != whole {
			t.Fatalf("whole %d, in pieces of %d: %d", whole, step%16+1, split)
		}
	})
}
