package tunnel

// chunkedEnd finds where a chunked response body ends (RFC 9112 section
// 7.1): the last chunk (size 0), its trailer fields and the blank line.
// The way down relays a chunked response through it, so a runtime that
// ignores "Connection: close" and goes on sending cannot get bytes past
// its response to the client. It only counts: the bytes go on unchanged.
// Malformed framing ends the body where it breaks.
type chunkedEnd struct {
	state   chunkState
	left    uint64 // data bytes left in the current chunk
	digits  int    // hex digits of the size read so far
	lineLen int    // bytes of the current trailer line
}

type chunkState uint8

const (
	chSize      chunkState = iota // the chunk size's hex digits
	chExt                         // extensions after the size, to CR
	chSizeLF                      // LF after the size line
	chData                        // the chunk's data
	chDataCR                      // CR after the data
	chDataLF                      // LF after the data
	chTrailer                     // a trailer line (or the blank line), to CR
	chTrailerLF                   // LF after a trailer line
	chDone                        // the body has ended
)

// maxSizeDigits bounds a chunk size: 15 hex digits is more than any body.
const maxSizeDigits = 15

// scan takes the next bytes of the body and returns how many of them
// belong to it; done when the body ended within them.
func (c *chunkedEnd) scan(b []byte) (n int, done bool) {
	for n < len(b) {
		if c.state == chData {
			k := uint64(len(b) - n)
			if k > c.left {
				k = c.left
			}
			n += int(k)
			if c.left -= k; c.left == 0 {
				c.state = chDataCR
			}
			continue
		}
		ch := b[n]
		n++
		if !c.step(ch) {
			c.state = chDone
		}
		if c.state == chDone {
			return n, true
		}
	}
	return n, false
}

// step moves the framing state by one byte; false: malformed.
func (c *chunkedEnd) step(ch byte) bool {
	switch c.state {
	case chSize:
		if v, ok := hexValue(ch); ok {
			if c.digits == maxSizeDigits {
				return false
			}
			c.left, c.digits = c.left<<4|uint64(v), c.digits+1
			return true
		}
		if c.digits == 0 {
			return false
		}
		return c.endSize(ch)
	case chExt:
		return c.endSize(ch)
	case chSizeLF:
		if ch != '\n' {
			return false
		}
		c.digits = 0
		if c.left == 0 {
			c.state, c.lineLen = chTrailer, 0
		} else {
			c.state = chData
		}
		return true
	case chDataCR:
		c.state = chDataLF
		return ch == '\r'
	case chDataLF:
		c.state = chSize
		return ch == '\n'
	case chTrailer:
		if ch == '\r' {
			c.state = chTrailerLF
			return true
		}
		c.lineLen++
		return ch >= 0x20 || ch == '\t'
	case chTrailerLF:
		if ch != '\n' {
			return false
		}
		if c.lineLen == 0 {
			c.state = chDone // the blank line after the trailers
		} else {
			c.state, c.lineLen = chTrailer, 0
		}
		return true
	}
	return false
}

// endSize handles a byte after the size's digits: extensions up to CR.
func (c *chunkedEnd) endSize(ch byte) bool {
	switch {
	case ch == '\r':
		c.state = chSizeLF
	case ch == '\n' || (ch < 0x20 && ch != '\t'):
		return false
	default:
		c.state = chExt
	}
	return true
}

func hexValue(ch byte) (byte, bool) {
	switch {
	case '0' <= ch && ch <= '9':
		return ch - '0', true
	case 'a' <= ch && ch <= 'f':
		return ch - 'a' + 10, true
	case 'A' <= ch && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}
