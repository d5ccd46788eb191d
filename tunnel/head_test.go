package tunnel

import (
	"errors"
	"strings"
	"testing"
)

func TestReadHead(t *testing.T) {
	// Heads split at every byte boundary are found, with what follows kept.
	full := "GET / HTTP/1.1\r\nHost: h\r\n\r\nNEXT"
	for i := 1; i < len(full); i++ {
		r := &chunkReader{parts: []string{full[:i], full[i:]}}
		buf := make([]byte, 64)
		hl, n, err := readHead(r, buf, 0)
		if err != nil || string(buf[:hl]) != strings.TrimSuffix(full, "NEXT") {
			t.Fatalf("split at %d: %q %v", i, buf[:hl], err)
		}
		if hl < n && string(buf[hl:n]) != "NEXT"[:n-hl] {
			t.Fatalf("split at %d: rest %q", i, buf[hl:n])
		}
	}
	if _, _, err := readHead(strings.NewReader(strings.Repeat("a", 100)), make([]byte, 64), 0); err != ErrHeadTooLarge {
		t.Fatalf("too large: %v", err)
	}
}

type chunkReader struct{ parts []string }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, errors.New("EOF")
	}
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	if r.parts[0] == "" {
		r.parts = r.parts[1:]
	}
	return n, nil
}
