package tunnel

import (
	"errors"
	"os"
)

// pumpPortable is the pump over plain reads and writes, for every system
// (the only one off Linux; on Linux, Options.portable picks it in tests):
// each read blocks the way's goroutine until bytes come, src ends or its
// read deadline passes, which the way's loop then handles as the raw pump's
// wait. The way up reads plaintext from crypto/tls, which reads the socket
// itself. The same ends, limits, framing and half-closes as the raw pump;
// what differs is the cost of a quiet way: its goroutine and its buffer stay
// while it waits, since it cannot park.
func (w *way) pumpPortable() error {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	for {
		buf := w.capped(*bp)
		var n int
		var err error
		if w.up {
			n, err = w.t.tls.Read(buf)
		} else {
			n, err = w.src.Read(buf)
		}
		if n > 0 && w.relayed(buf[:n]) {
			return nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return err // a deadline: the loop decides (idle, linger, stop)
			}
			w.readFailed(err)
			return nil
		}
	}
}
