//go:build !linux

package tunnel

// Elsewhere than on Linux a Socket's reads and writes are the TCPConn's:
// the raw path's gain is measured against Linux's system call entry.

func (s *Socket) init() {}

// Read reads like net.TCPConn.Read, which it is.
func (s *Socket) Read(p []byte) (int, error) { return s.c.Read(p) }

// Write writes all of p, waiting for room under the write deadline.
func (s *Socket) Write(p []byte) (int, error) { return s.c.Write(p) }
