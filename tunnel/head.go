package tunnel

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// Request and response heads: where one ends in the bytes read so far.
// What a head says is the policy's to parse; the tunnel only frames it.

// MaxHeadSize bounds a request or response head.
const MaxHeadSize = 16 << 10

// ErrHeadTooLarge is a head longer than MaxHeadSize (the policy answers
// a request's with 431; a response's is a bad response).
var ErrHeadTooLarge = errors.New("head larger than 16 KiB")

// headBuf holds a pooled buffer that request and response heads are read
// into, given back as soon as a session no longer needs it.
type headBuf struct {
	b []byte
	p *[]byte // nil once given back
}

var headBufs = sync.Pool{New: func() any { b := make([]byte, MaxHeadSize); return &b }}

func getHeadBuf() headBuf {
	p := headBufs.Get().(*[]byte)
	return headBuf{b: *p, p: p}
}

// release gives the buffer back; later calls do nothing.
func (hb *headBuf) release() {
	if hb.p != nil {
		headBufs.Put(hb.p)
		hb.p, hb.b = nil, nil
	}
}

// HeadEnd returns the length of the head at the start of b, through the
// blank line that ends it, or -1 when b does not hold a whole head yet.
func HeadEnd(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// readHead reads from r into buf, whose first n bytes are already filled,
// until buf holds a whole head. It returns the head's length and how much
// of buf is filled; bytes past the head are the start of what follows.
func readHead(r io.Reader, buf []byte, n int) (headLen, filled int, err error) {
	scanned := 0
	for {
		if hl := HeadEnd(buf[max(scanned-3, 0):n]); hl >= 0 {
			return max(scanned-3, 0) + hl, n, nil
		}
		scanned = n
		if n == len(buf) {
			return 0, n, ErrHeadTooLarge
		}
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			if m > 0 {
				continue // look at what came with the error first
			}
			if errors.Is(err, io.EOF) && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return 0, n, err
		}
	}
}
