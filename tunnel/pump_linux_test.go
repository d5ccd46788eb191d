//go:build linux

package tunnel

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkReadPending compares a read through readPending (recvmsg with
// TCP_INQ's hint) with a plain read; neither may allocate.
func BenchmarkReadPending(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	peer, _ := net.Dial("tcp", ln.Addr().String())
	defer peer.Close()
	c, _ := ln.Accept()
	defer c.Close()
	rc, _ := c.(*net.TCPConn).SyscallConn()
	var fd int
	rc.Control(func(f uintptr) { fd = int(f); enableInq(fd) })
	buf := make([]byte, 32<<10)
	msg := make([]byte, 256)
	var oob inqBuf
	b.Run("recvmsg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			peer.Write(msg)
			for {
				if _, _, err := readPending(fd, buf, &oob); err != unix.EAGAIN {
					break
				}
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			peer.Write(msg)
			for {
				if _, err := unix.Read(fd, buf); err != unix.EAGAIN {
					break
				}
			}
		}
	})
}
