package proxy

import (
	"errors"
	"io"
	"sync"
)

// headBuf holds a pooled buffer that request and response heads are read
// into, given back as soon as a session no longer needs it.
type headBuf struct {
	b []byte
	p *[]byte // nil once given back
}

var headBufs = sync.Pool{New: func() any { b := make([]byte, maxHeadSize); return &b }}

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

// readHead reads from r into buf, whose first n bytes are already filled,
// until buf holds a whole head. It returns the head's length and how much
// of buf is filled; bytes past the head are the start of what follows.
func readHead(r io.Reader, buf []byte, n int) (headLen, filled int, err error) {
	scanned := 0
	for {
		if hl := headEnd(buf[max(scanned-3, 0):n]); hl >= 0 {
			return max(scanned-3, 0) + hl, n, nil
		}
		scanned = n
		if n == len(buf) {
			return 0, n, errHeadTooLarge
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
